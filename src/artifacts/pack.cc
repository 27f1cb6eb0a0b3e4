// pack()/unpack(): libarchive for Tar and Zip, plain copies for Files. Unpacking reads archives
// with libarchive's read side only and writes every entry through ConfinedDir (confined_dir.h),
// rather than archive_write_disk: that one follows existing symlinks in parent directories unless
// told not to, writes hard links, devices and fifos, and replaces existing entries, and its guards
// are path-based checks racing the filesystem; ours are *at() calls on opened directories.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <system_error>

#include "artifacts/artifacts.h"
#include "artifacts/confined_dir.h"
#include "core/glob.h"

namespace testlooper::artifacts {
namespace {

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;
using EntryPtr = std::unique_ptr<archive_entry, void (*)(archive_entry*)>;

Error archive_error(const fs::path& where, archive* a) {
  const char* text = archive_error_string(a);
  return Error{where.string(), text ? text : "archive error"};
}

bool selected(const Selection& selection, const std::string& rel) {
  for (const std::string& pattern : selection.exclude_patterns) {
    if (glob_match(pattern, rel)) return false;
  }
  if (selection.include_patterns.empty()) return true;
  for (const std::string& pattern : selection.include_patterns) {
    if (glob_match(pattern, rel)) return true;
  }
  return false;
}

// Every selected file or symlink under `source_dir`, as paths relative to it, sorted so that
// archives of the same files are byte-identical.
Result<std::vector<std::string>> selected_files(const fs::path& source_dir,
                                                const Selection& selection) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(source_dir, ec)) return files;
  fs::recursive_directory_iterator it(source_dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::file_status status = it->symlink_status();
    if (fs::is_directory(status)) continue;
    if (!fs::is_regular_file(status) && !fs::is_symlink(status)) continue;
    std::string rel = it->path().lexically_relative(source_dir).generic_string();
    if (selected(selection, rel)) files.push_back(std::move(rel));
  }
  if (ec) return Error{source_dir.string(), "cannot list: " + ec.message()};
  std::sort(files.begin(), files.end());
  return files;
}

Status copy_file_data(archive* out, const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error{file.string(), "cannot open for reading"};
  char buffer[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) {
    if (archive_write_data(out, buffer, static_cast<size_t>(n)) < 0) {
      ::close(fd);
      return archive_error(file, out);
    }
  }
  ::close(fd);
  if (n < 0) return Error{file.string(), "read failed"};
  return {};
}

Status add_entry(archive* out, archive* disk, const fs::path& source_dir, const std::string& rel) {
  const fs::path file = source_dir / rel;
  EntryPtr entry(archive_entry_new(), archive_entry_free);
  archive_entry_copy_sourcepath(entry.get(), file.c_str());
  if (archive_read_disk_entry_from_file(disk, entry.get(), -1, nullptr) != ARCHIVE_OK) {
    return archive_error(file, disk);
  }
  archive_entry_copy_pathname(entry.get(), rel.c_str());
  if (archive_write_header(out, entry.get()) != ARCHIVE_OK) return archive_error(file, out);
  if (archive_entry_filetype(entry.get()) == AE_IFREG && archive_entry_size(entry.get()) > 0) {
    TL_RETURN_IF_ERROR(copy_file_data(out, file));
  }
  return {};
}

Status pack_archive(const fs::path& source_dir, const std::vector<std::string>& files,
                    Format format, const fs::path& dest) {
  ArchivePtr out(archive_write_new(), archive_write_free);
  ArchivePtr disk(archive_read_disk_new(), archive_read_free);
  archive_read_disk_set_standard_lookup(disk.get());
  archive_read_disk_set_symlink_physical(disk.get());
  const int set = format == Format::kZip ? archive_write_set_format_zip(out.get())
                                         : archive_write_set_format_pax_restricted(out.get());
  if (set != ARCHIVE_OK) return archive_error(dest, out.get());
  if (archive_write_open_filename(out.get(), dest.c_str()) != ARCHIVE_OK) {
    return archive_error(dest, out.get());
  }
  for (const std::string& rel : files) {
    TL_RETURN_IF_ERROR(add_entry(out.get(), disk.get(), source_dir, rel));
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) return archive_error(dest, out.get());
  return {};
}

Status copy_files(const fs::path& source_dir, const std::vector<std::string>& files,
                  const fs::path& dest) {
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) return Error{dest.string(), "cannot create directory: " + ec.message()};
  for (const std::string& rel : files) {
    const fs::path to = dest / rel;
    fs::create_directories(to.parent_path(), ec);
    fs::copy(source_dir / rel, to,
             fs::copy_options::copy_symlinks | fs::copy_options::overwrite_existing, ec);
    if (ec) return Error{(source_dir / rel).string(), "cannot copy: " + ec.message()};
  }
  return {};
}

// Writes `size` bytes of `data` to `file`, charging `dest`'s byte budget first.
Status write_charged(const Fd& file, const char* data, size_t size, std::string_view name,
                     ConfinedDir& dest) {
  TL_RETURN_IF_ERROR(dest.charge(size));
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(file.get(), data + done, size - done);
    if (n <= 0) return Error{"", "archive entry '" + std::string(name) + "': write failed"};
    done += static_cast<size_t>(n);
  }
  return {};
}

// Copies the data of the current entry of `in` into `file`, charging `dest`'s byte budget.
Status copy_entry_data(archive* in, const Fd& file, std::string_view name, ConfinedDir& dest) {
  char buffer[1 << 16];
  la_ssize_t n;
  while ((n = archive_read_data(in, buffer, sizeof buffer)) > 0) {
    TL_RETURN_IF_ERROR(write_charged(file, buffer, static_cast<size_t>(n), name, dest));
  }
  if (n < 0) return archive_error("", in);
  return {};
}

// One entry of an archive: only regular files, directories and (confined) symlinks.
Status extract_entry(archive* in, archive_entry* entry, ConfinedDir& dest) {
  const char* raw = archive_entry_pathname(entry);
  const std::string name = raw ? raw : "";
  if (archive_entry_hardlink(entry) != nullptr) {
    return Error{"", "archive entry '" + name + "': hard links are not accepted"};
  }
  const mode_t mode = archive_entry_perm(entry);
  switch (archive_entry_filetype(entry)) {
    case AE_IFDIR:
      return dest.add_directory(name, mode);
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(entry);
      return dest.add_symlink(name, target ? target : "");
    }
    case AE_IFREG: {
      // A declared size over the budget is refused before anything is written.
      if (archive_entry_size_is_set(entry)) {
        TL_RETURN_IF_ERROR(dest.fits(static_cast<uint64_t>(archive_entry_size(entry))));
      }
      Result<Fd> file = dest.create_file(name);
      if (!file.ok()) return file.error();
      TL_RETURN_IF_ERROR(copy_entry_data(in, *file, name, dest));
      return ConfinedDir::finish_file(
          *file, name, mode, archive_entry_mtime_is_set(entry) ? archive_entry_mtime(entry) : 0);
    }
    default:
      return Error{
          "", "archive entry '" + name + "': only files, directories and symlinks are accepted"};
  }
}

Status extract_archive(const fs::path& packed, ConfinedDir& dest) {
  ArchivePtr in(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(in.get());
  archive_read_support_format_zip(in.get());
  if (archive_read_open_filename(in.get(), packed.c_str(), 1 << 16) != ARCHIVE_OK) {
    return archive_error(packed, in.get());
  }
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK) {
    TL_RETURN_IF_ERROR(extract_entry(in.get(), entry, dest));
  }
  if (r != ARCHIVE_EOF) return archive_error(packed, in.get());
  return {};
}

// Copies a regular file of a Files artifact into `dest`.
Status copy_stored_file(const fs::path& from, const std::string& rel, ConfinedDir& dest) {
  Fd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!in.valid() || ::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error{rel, "not a regular file of the artifact"};
  }
  Result<Fd> out = dest.create_file(rel);
  if (!out.ok()) return out.error();
  char buffer[1 << 16];
  ssize_t n;
  while ((n = ::read(in.get(), buffer, sizeof buffer)) > 0) {
    TL_RETURN_IF_ERROR(write_charged(*out, buffer, static_cast<size_t>(n), rel, dest));
  }
  if (n < 0) return Error{rel, "read failed"};
  return ConfinedDir::finish_file(*out, rel, st.st_mode, st.st_mtim.tv_sec);
}

// A Files artifact (a directory of the store) copied entry by entry under the same rules as an
// archive's entries; the artifact directory itself must be a real directory.
Status copy_stored_tree(const fs::path& packed, ConfinedDir& dest) {
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(packed, ec))) {
    return Error{packed.string(), "a Files artifact must be a directory (not a link)"};
  }
  fs::recursive_directory_iterator it(packed, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::file_status status = it->symlink_status(ec);
    if (ec) break;
    const std::string rel = it->path().lexically_relative(packed).generic_string();
    if (fs::is_directory(status)) {
      TL_RETURN_IF_ERROR(dest.add_directory(rel, static_cast<mode_t>(status.permissions())));
    } else if (fs::is_symlink(status)) {
      const fs::path target = fs::read_symlink(it->path(), ec);
      if (ec) break;
      TL_RETURN_IF_ERROR(dest.add_symlink(rel, target.string()));
    } else if (fs::is_regular_file(status)) {
      TL_RETURN_IF_ERROR(copy_stored_file(it->path(), rel, dest));
    } else {
      return Error{rel, "only files, directories and symlinks are accepted"};
    }
  }
  if (ec) return Error{packed.string(), "cannot list: " + ec.message()};
  return {};
}

}  // namespace

Result<Format> parse_format(std::string_view word) {
  if (word == "Tar") return Format::kTar;
  if (word == "Zip") return Format::kZip;
  if (word == "Files") return Format::kFiles;
  return Error{"", "unknown artifact format '" + std::string(word) + "' (Tar, Zip or Files)"};
}

Status pack(const fs::path& source_dir, const Selection& selection, Format format,
            const fs::path& dest) {
  Result<std::vector<std::string>> files = selected_files(source_dir, selection);
  if (!files.ok()) return files.error();
  if (format == Format::kFiles) return copy_files(source_dir, *files, dest);
  return pack_archive(source_dir, *files, format, dest);
}

bool selects_nothing(const fs::path& source_dir, const Selection& selection) {
  Result<std::vector<std::string>> files = selected_files(source_dir, selection);
  return files.ok() && files->empty();
}

Status unpack(const fs::path& packed, Format format, const fs::path& dest_dir,
              const UnpackOptions& options) {
  Result<ConfinedDir> dest = ConfinedDir::open(dest_dir, options);
  if (!dest.ok()) return dest.error();
  if (format == Format::kFiles) return copy_stored_tree(packed, *dest);
  return extract_archive(packed, *dest);
}

}  // namespace testlooper::artifacts
