// unique_abbrev: abbreviated object ids as git 2.x prints them (`%h`, the "Merge:" line).
//
// libgit2 1.5's git_object_short_id starts from a fixed 7 characters, but git with the default
// core.abbrev=auto starts from ceil((msb(n) + 1) / 2) characters (at least 7), where n is the
// number of objects in the repository's pack indexes (loose objects are not counted), then
// lengthens the prefix until it is unique. We do the same. Approximation: a multi-pack-index is
// not read, so objects present in several packs are counted once per pack.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "git/repository_impl.h"

namespace testlooper::git::internal {
namespace {

constexpr int kFallbackAbbrev = 7;
constexpr int kMinimumAbbrev = 4;

// The object count in the pack index `idx` (version 1 or 2); 0 when unreadable.
uint64_t pack_index_count(const std::filesystem::path& idx) {
  std::ifstream in(idx, std::ios::binary);
  unsigned char header[8] = {};
  if (!in.read(reinterpret_cast<char*>(header), sizeof(header))) return 0;
  const bool version2 = std::memcmp(header, "\377tOc", 4) == 0;
  // The last of the 256 big-endian fanout entries is the number of objects.
  in.seekg(version2 ? 8 + 255 * 4 : 255 * 4);
  unsigned char last[4] = {};
  if (!in.read(reinterpret_cast<char*>(last), sizeof(last))) return 0;
  return (uint64_t{last[0]} << 24) | (uint64_t{last[1]} << 16) | (uint64_t{last[2]} << 8) |
         uint64_t{last[3]};
}

// Objects in the pack indexes under `objects_dir`/pack whose pack file exists.
uint64_t packed_object_count(const std::filesystem::path& objects_dir) {
  uint64_t count = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(objects_dir / "pack", error)) {
    std::filesystem::path idx = entry.path();
    if (idx.extension() != ".idx") continue;
    if (!std::filesystem::exists(std::filesystem::path(idx).replace_extension(".pack"), error)) {
      continue;
    }
    count += pack_index_count(idx);
  }
  return count;
}

// git's approximate object count: packed objects of the repository and its alternates.
uint64_t approximate_object_count(git_repository* repo) {
  const std::filesystem::path objects =
      std::filesystem::path(git_repository_commondir(repo)) / "objects";
  uint64_t count = packed_object_count(objects);
  std::ifstream alternates(objects / "info" / "alternates");
  for (std::string line; std::getline(alternates, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::filesystem::path alternate(line);
    count += packed_object_count(alternate.is_absolute() ? alternate : objects / alternate);
  }
  return count;
}

// The abbreviation length git starts from: core.abbrev when numeric, 40 when false, otherwise
// (absent or "auto") derived from the object count.
int starting_length(git_repository* repo) {
  git_config* raw = nullptr;
  std::string value;
  if (git_repository_config_snapshot(&raw, repo) == 0) {
    ConfigHandle config(raw);
    OwnedBuf buf;
    if (git_config_get_string_buf(&buf.buf, config.get(), "core.abbrev") == 0) value = buf.buf.ptr;
  }
  if (!value.empty() && value != "auto") {
    int is_true = 0;
    if (git_config_parse_bool(&is_true, value.c_str()) == 0 && !is_true) return GIT_OID_HEXSZ;
    char* end = nullptr;
    const long length = std::strtol(value.c_str(), &end, 10);
    if (*end == '\0' && length >= kMinimumAbbrev && length <= GIT_OID_HEXSZ) {
      return static_cast<int>(length);
    }
  }
  uint64_t count = approximate_object_count(repo);
  int msb = 0;
  while (count >>= 1) ++msb;
  return std::max(kFallbackAbbrev, (msb + 2) / 2);
}

}  // namespace

Result<std::string> unique_abbrev(git_repository* repo, const git_oid& id,
                                  const std::string& where) {
  const std::string hex = to_hex(id);
  git_odb* raw = nullptr;
  if (git_repository_odb(&raw, repo) != 0) return git_error_at(where, "cannot open object store");
  OdbHandle odb(raw);
  for (int length = starting_length(repo); length < GIT_OID_HEXSZ; ++length) {
    git_oid prefix, found;
    if (git_oid_fromstrn(&prefix, hex.c_str(), static_cast<size_t>(length)) != 0) break;
    if (git_odb_exists_prefix(&found, odb.get(), &prefix, static_cast<size_t>(length)) !=
        GIT_EAMBIGUOUS) {
      return hex.substr(0, static_cast<size_t>(length));
    }
  }
  return hex;
}

}  // namespace testlooper::git::internal
