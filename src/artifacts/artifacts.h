// The artifacts module: packing a directory's selected files into an artifact (Tar, Zip or a
// plain copy of the files), unpacking it into a dependency directory, and the local
// content-addressed store that keeps build outputs by build hash and run records by run id.
//
// Store layout under its root (default ~/.cache/testlooper):
//   builds/<build hash>/<artifact>.<tar|zip|files>   one per published artifact
//   builds/<build hash>/complete.json                 present once every stage succeeded
//   runs/<run id>/{log.txt,test_result.json,artifacts/,test_logs/}
//   tmp/                                              writes in progress
//   work/                                             per-run working directories
// Every write goes to tmp/ first and is renamed into place, so a crash never leaves a partial
// artifact or record under a final name. An identity hash names one content: publishing an
// artifact that is already stored keeps the stored one.
//
// Thread-safety: a Store is immutable after construction; its methods may be called from many
// threads and many processes at once (the filesystem's atomic renames arbitrate).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace testlooper::artifacts {

namespace fs = std::filesystem;

// How an artifact's files are kept: a tar archive, a zip archive, or the files themselves.
enum class Format { kTar, kZip, kFiles };

// "Tar" | "Zip" | "Files" (FORMAT.md §7) to a Format; an Error names the unknown word.
Result<Format> parse_format(std::string_view word);

// Which files under a directory make up an artifact. Patterns are globs (core/glob.h) over paths
// relative to the directory; an empty include list selects every file. Excludes win.
struct Selection {
  std::vector<std::string> include_patterns;
  std::vector<std::string> exclude_patterns;
};

// Writes the selected files (and symlinks, kept as links) of `source_dir` to `dest`: an archive
// file for Tar/Zip, a new directory for Files. A missing `source_dir` packs nothing (an empty
// artifact). Errors name the file that could not be read or written.
Status pack(const fs::path& source_dir, const Selection& selection, Format format,
            const fs::path& dest);

// True when `source_dir` holds no file that `selection` selects (a missing dir holds none).
bool selects_nothing(const fs::path& source_dir, const Selection& selection);

// What unpack() accepts. The defaults suit staging a build's artifacts; uploads of
// archives are held to tighter ones (transfer.h).
inline constexpr uint64_t kMaxUnpackedBytes = uint64_t{32} << 30;  // 32 GiB
inline constexpr uint64_t kMaxUnpackedEntries = 1'000'000;
struct UnpackOptions {
  // Which symlinks are kept: none (run records), relative ones that stay inside the destination
  // (build artifacts), or any (source trees: git content, as `git checkout` would make it). No
  // entry is ever written through a link, whatever its target.
  enum class Symlinks { kNone, kInside, kAny };
  Symlinks symlinks = Symlinks::kInside;
  uint64_t max_bytes = kMaxUnpackedBytes;
  uint64_t max_entries = kMaxUnpackedEntries;
};

// Extracts what pack() wrote at `packed` into `dest_dir` (created). Only regular files,
// directories and symlinks (as `options.symlinks` allows) are accepted: hard links, devices, fifos,
// absolute or ".." names, entries through a symlink and entries over an existing link, directory
// or device are errors (see confined_dir.h), and so is going over the byte or entry budget; an
// existing regular file of the same name is replaced (unlinked, then created anew). Permission bits
// are kept without setuid/setgid/sticky. On error, what was already extracted stays: callers unpack
// into a directory of their own (tmp/ or a run's inputs) and drop it.
Status unpack(const fs::path& packed, Format format, const fs::path& dest_dir,
              const UnpackOptions& options = {});

// The stem of the file that keeps artifact `name` in a build directory: [A-Za-z0-9_-] and '.'
// (not first) kept, every other byte as %XX (uppercase hex); the unnamed artifact is "@".
std::string artifact_file_stem(const std::string& name);

// The artifact name that file stem `stem` stands for, or nullopt when artifact_file_stem() of no
// name is `stem` (a bad escape, a byte it would have escaped, lowercase hex...).
std::optional<std::string> artifact_name_of_stem(std::string_view stem);

// An artifact held by the store.
struct StoredArtifact {
  std::string name;  // "" = the unnamed artifact
  Format format = Format::kTar;
  fs::path path;  // the archive file, or the directory for Files
};

// The local artifact store. See the header comment for layout and guarantees.
class Store {
 public:
  // A store rooted at `root` (created lazily by the writes).
  explicit Store(fs::path root);

  // $TESTLOOPER_STORE, else $XDG_CACHE_HOME/testlooper, else ~/.cache/testlooper.
  static fs::path default_root();

  const fs::path& root() const { return root_; }

  // Packs the selection of `source_dir` as artifact `name` of build `build_hash` and publishes
  // it atomically. When the artifact is already stored the stored one is kept.
  Status put_build_artifact(const std::string& build_hash, const std::string& name,
                            const fs::path& source_dir, const Selection& selection,
                            Format format) const;

  // The stored artifact `name` of `build_hash`, or nullopt when it was never published.
  std::optional<StoredArtifact> find_build_artifact(const std::string& build_hash,
                                                    const std::string& name) const;

  // Every artifact stored for `build_hash`, sorted by name. Error when a stored artifact file is
  // not named as artifact_file_stem() names them (never an exception).
  Result<std::vector<StoredArtifact>> build_artifacts(const std::string& build_hash) const;

  // Records that every stage of `build_hash` succeeded and all its artifacts are stored; later
  // runs reuse the build instead of running it. `summary_json` is kept as complete.json.
  Status mark_build_complete(const std::string& build_hash, const std::string& summary_json) const;

  // True once mark_build_complete() succeeded for `build_hash` (by any process).
  bool is_build_complete(const std::string& build_hash) const;

  // A complete build: its hash, the summary given to mark_build_complete(), and when.
  struct CompleteBuild {
    std::string hash;
    std::string summary_json;
    fs::file_time_type completed;
  };
  // Every complete build in the store, newest first (directories not named by a hash and
  // unreadable summaries are skipped).
  std::vector<CompleteBuild> complete_builds() const;

  // A fresh directory under tmp/ for writes in progress. The caller fills it and then either
  // commit_run()s it or removes it.
  Result<fs::path> make_temp_dir(std::string_view label) const;

  // Moves a filled run-record directory (from make_temp_dir) to runs/<run_id> atomically and
  // returns the final path. Error when a record with that id already exists.
  Result<fs::path> commit_run(const fs::path& temp_dir, const std::string& run_id) const;

  // runs/<run_id> (whether or not it exists).
  fs::path run_dir(const std::string& run_id) const;

  // work/: where runs keep their inputs, output and scratch directories.
  fs::path work_root() const { return root_ / "work"; }

 private:
  fs::path build_dir(const std::string& build_hash) const;

  fs::path root_;
};

// Creates `dir` (and its parents) and asks its file system to place the directories made in it
// as it places top-level ones (ext2/3/4's "top of directory hierarchy" attribute, `chattr +T`):
// the Orlov allocator then puts them in lightly used block groups instead of beside `dir`. On
// ext4 without a journal every new inode's search skips the inodes deleted in the last minutes of
// its group, one buffer lookup each, so a store made under a churned directory (/tmp after a
// build) paid up to 0.5 ms of kernel time per file (issue 18: 430 vs 1,005 runs/s through serve).
// Best effort: false when the attribute could not be set (another file system, not the owner).
bool spread_new_directories(const fs::path& dir);

// Writes `contents` to `path` atomically (a temporary sibling, then rename), creating parent
// directories. With `durable` the data is fsync'ed before the rename, so it also survives a power
// loss; that costs about 10 ms per file, too much for per-run records at thousands of runs.
Status write_file_atomically(const fs::path& path, std::string_view contents, bool durable = true);

}  // namespace testlooper::artifacts
