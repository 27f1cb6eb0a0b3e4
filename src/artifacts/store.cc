// Store: the on-disk layout described in artifacts.h, with temp-then-rename writes.
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <system_error>

#include "artifacts/artifacts.h"
#include "core/ids.h"

namespace testlooper::artifacts {
namespace {

constexpr char kUnnamed[] = "@";

constexpr char kHexDigits[] = "0123456789ABCDEF";

}  // namespace

std::string artifact_file_stem(const std::string& name) {
  if (name.empty()) return kUnnamed;
  std::string out;
  for (const unsigned char c : name) {
    if (isalnum(c) || c == '-' || c == '_' || (c == '.' && !out.empty())) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHexDigits[c >> 4];
      out += kHexDigits[c & 15];
    }
  }
  return out;
}

std::optional<std::string> artifact_name_of_stem(std::string_view stem) {
  if (stem == kUnnamed) return "";
  std::string name;
  for (size_t i = 0; i < stem.size(); ++i) {
    if (stem[i] != '%') {
      name += stem[i];
      continue;
    }
    if (i + 2 >= stem.size()) return std::nullopt;
    const char* hi = std::strchr(kHexDigits, stem[i + 1]);
    const char* lo = std::strchr(kHexDigits, stem[i + 2]);
    if (stem[i + 1] == '\0' || stem[i + 2] == '\0' || !hi || !lo) return std::nullopt;
    name += static_cast<char>((hi - kHexDigits) * 16 + (lo - kHexDigits));
    i += 2;
  }
  // Only what artifact_file_stem() writes: every other spelling of a name is refused.
  if (artifact_file_stem(name) != stem) return std::nullopt;
  return name;
}

namespace {

const char* extension(Format format) {
  switch (format) {
    case Format::kTar:
      return ".tar";
    case Format::kZip:
      return ".zip";
    case Format::kFiles:
      return ".files";
  }
  return ".tar";
}

std::optional<Format> format_of(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".tar") return Format::kTar;
  if (ext == ".zip") return Format::kZip;
  if (ext == ".files") return Format::kFiles;
  return std::nullopt;
}

std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(rng() % 1000000007);
}

// rename(2) that never replaces: returns false (and leaves both) when `to` already exists.
Result<bool> rename_no_replace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno == EEXIST || errno == ENOTEMPTY) return false;
  return Error{to.string(), std::string("cannot rename into place: ") + strerror(errno)};
}

Status fsync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{path.string(), "cannot open to sync"};
  const int r = ::fsync(fd);
  ::close(fd);
  if (r != 0) return Error{path.string(), std::string("fsync failed: ") + strerror(errno)};
  return {};
}

}  // namespace

Store::Store(fs::path root) : root_(std::move(root)) {}

fs::path Store::default_root() {
  if (const char* env = std::getenv("TESTLOOPER_STORE"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return fs::path(xdg) / "testlooper";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/tmp") / ".cache" / "testlooper";
}

fs::path Store::build_dir(const std::string& build_hash) const {
  return root_ / "builds" / build_hash;
}

Result<fs::path> Store::make_temp_dir(std::string_view label) const {
  const fs::path dir = root_ / "tmp" / (std::string(label) + "-" + unique_suffix());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{dir.string(), "cannot create directory: " + ec.message()};
  return dir;
}

Status Store::put_build_artifact(const std::string& build_hash, const std::string& name,
                                 const fs::path& source_dir, const Selection& selection,
                                 Format format) const {
  const fs::path final_path =
      build_dir(build_hash) / (artifact_file_stem(name) + extension(format));
  if (fs::exists(final_path)) return {};
  Result<fs::path> temp_dir = make_temp_dir("artifact");
  if (!temp_dir.ok()) return temp_dir.error();
  const fs::path temp = *temp_dir / final_path.filename();
  Status status = pack(source_dir, selection, format, temp);
  if (status.ok() && format != Format::kFiles) status = fsync_path(temp);
  std::error_code ec;
  if (status.ok()) {
    fs::create_directories(final_path.parent_path(), ec);
    if (ec) status = Error{final_path.parent_path().string(), "cannot create: " + ec.message()};
  }
  if (status.ok()) {
    Result<bool> renamed = rename_no_replace(temp, final_path);
    if (!renamed.ok()) status = renamed.error();
  }
  fs::remove_all(*temp_dir, ec);
  return status;
}

std::optional<StoredArtifact> Store::find_build_artifact(const std::string& build_hash,
                                                         const std::string& name) const {
  for (const Format format : {Format::kTar, Format::kZip, Format::kFiles}) {
    fs::path path = build_dir(build_hash) / (artifact_file_stem(name) + extension(format));
    std::error_code ec;
    if (fs::exists(path, ec)) return StoredArtifact{name, format, std::move(path)};
  }
  return std::nullopt;
}

Result<std::vector<StoredArtifact>> Store::build_artifacts(const std::string& build_hash) const {
  std::vector<StoredArtifact> found;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(build_dir(build_hash), ec)) {
    const std::optional<Format> format = format_of(entry.path());
    if (!format) continue;
    std::optional<std::string> name = artifact_name_of_stem(entry.path().stem().string());
    if (!name) {
      return Error{build_hash, "stored artifact file '" + entry.path().filename().string() +
                                   "' is not named as the store names artifacts"};
    }
    found.push_back({std::move(*name), *format, entry.path()});
  }
  std::sort(found.begin(), found.end(),
            [](const StoredArtifact& a, const StoredArtifact& b) { return a.name < b.name; });
  return found;
}

Status Store::mark_build_complete(const std::string& build_hash,
                                  const std::string& summary_json) const {
  return write_file_atomically(build_dir(build_hash) / "complete.json", summary_json);
}

bool Store::is_build_complete(const std::string& build_hash) const {
  std::error_code ec;
  return fs::exists(build_dir(build_hash) / "complete.json", ec);
}

std::vector<Store::CompleteBuild> Store::complete_builds() const {
  std::vector<CompleteBuild> found;
  std::error_code ec;
  for (fs::directory_iterator it(root_ / "builds", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string hash = it->path().filename().string();
    if (!is_identity_hash(hash)) continue;
    const fs::path summary = it->path() / "complete.json";
    std::error_code time_error;
    const fs::file_time_type completed = fs::last_write_time(summary, time_error);
    if (time_error) continue;
    std::ifstream in(summary, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) continue;
    found.push_back({hash, std::move(text), completed});
  }
  std::sort(found.begin(), found.end(), [](const CompleteBuild& a, const CompleteBuild& b) {
    return a.completed != b.completed ? a.completed > b.completed : a.hash < b.hash;
  });
  return found;
}

Result<fs::path> Store::commit_run(const fs::path& temp_dir, const std::string& run_id) const {
  const fs::path final_path = run_dir(run_id);
  std::error_code ec;
  fs::create_directories(final_path.parent_path(), ec);
  if (ec) return Error{final_path.parent_path().string(), "cannot create: " + ec.message()};
  Result<bool> renamed = rename_no_replace(temp_dir, final_path);
  if (!renamed.ok()) return renamed.error();
  if (!*renamed) return Error{final_path.string(), "a run record with this id already exists"};
  return final_path;
}

fs::path Store::run_dir(const std::string& run_id) const { return root_ / "runs" / run_id; }

bool spread_new_directories(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return false;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool set = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (set && !(flags & FS_TOPDIR_FL)) {
    flags |= FS_TOPDIR_FL;
    set = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  ::close(fd);
  return set;
}

Status write_file_atomically(const fs::path& path, std::string_view contents, bool durable) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return Error{path.parent_path().string(), "cannot create: " + ec.message()};
  const fs::path temp = path.string() + ".tmp-" + unique_suffix();
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Error{temp.string(), std::string("cannot create: ") + strerror(errno)};
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool ok = done == contents.size() && (!durable || ::fsync(fd) == 0);
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    fs::remove(temp, ec);
    return Error{path.string(), std::string("cannot write: ") + strerror(errno)};
  }
  return {};
}

}  // namespace testlooper::artifacts
