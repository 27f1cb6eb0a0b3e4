#include "core/token.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace testlooper {

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  // The kernel's CSPRNG, one system call: OpenSSL 3's RAND_bytes (its DRBG fetched by name under
  // locks on every call) cost several times that, and a new run takes two of these.
  size_t filled = 0;
  while (filled < raw.size()) {
    const ssize_t n = ::getrandom(raw.data() + filled, raw.size() - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    filled += static_cast<size_t>(n);
  }
  if (filled < raw.size() && RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) abort();
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes);
  for (const unsigned char b : raw) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::string new_api_token() { return "tl_" + random_hex(32); }

bool same_secret(std::string_view expected, std::string_view given) {
  if (expected.size() != given.size() || expected.empty()) return false;
  return CRYPTO_memcmp(expected.data(), given.data(), expected.size()) == 0;
}

bool is_token_text(std::string_view text) {
  if (text.size() < 32 || text.size() > 1024) return false;
  for (const char c : text) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

Result<std::string> read_token_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return Error{path, std::string("cannot open the token file: ") + std::strerror(errno)};
  struct stat st {};
  std::string text;
  bool readable = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= 4096;
  if (readable) {
    text.resize(static_cast<size_t>(st.st_size));
    readable = ::read(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  }
  ::close(fd);
  if (!readable) return Error{path, "the token file must be a regular file of at most 4 KiB"};
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (!is_token_text(text)) {
    return Error{path, "the token file must hold one token of 32 to 1024 visible characters"};
  }
  return text;
}

}  // namespace testlooper
