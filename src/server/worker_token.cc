#include "server/worker_token.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/token.h"

namespace testlooper::server {
namespace {

// Writes a new token to `path`; false (errno set) when the file exists already.
Result<bool> create_token_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    return Error{path, std::string("cannot create the worker token: ") + std::strerror(errno)};
  }
  const std::string text = random_hex(32) + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written) {
    ::unlink(path.c_str());
    return Error{path, "cannot write the worker token"};
  }
  return true;
}

}  // namespace

Result<std::string> load_or_create_worker_token(const std::string& path) {
  Result<bool> created = create_token_file(path);
  if (!created.ok()) return created.error();
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error{path, "the worker token must be a regular file"};
  }
  if ((st.st_mode & 077) != 0 || st.st_uid != ::geteuid()) {
    return Error{path,
                 "the worker token must be owned by this user and not readable or writable "
                 "by others (chmod 600)"};
  }
  return read_token_file(path);
}

std::string bearer_token(const std::map<std::string, std::string>& headers) {
  auto it = headers.find("authorization");
  if (it == headers.end()) return "";
  const std::string prefix = "Bearer ";
  if (it->second.compare(0, prefix.size(), prefix) != 0) return "";
  return it->second.substr(prefix.size());
}

}  // namespace testlooper::server
