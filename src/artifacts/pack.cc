// pack()/unpack(): libarchive for Tar and Zip, plain copies for Files.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <system_error>

#include "artifacts/artifacts.h"
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
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
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

Status extract_archive(const fs::path& packed, const fs::path& dest_dir) {
  ArchivePtr in(archive_read_new(), archive_read_free);
  ArchivePtr out(archive_write_disk_new(), archive_write_free);
  archive_read_support_format_tar(in.get());
  archive_read_support_format_zip(in.get());
  archive_write_disk_set_options(
      out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                     ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_UNLINK);
  if (archive_read_open_filename(in.get(), packed.c_str(), 1 << 16) != ARCHIVE_OK) {
    return archive_error(packed, in.get());
  }
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK) {
    const std::string name = archive_entry_pathname(entry);
    if (name.empty() || name[0] == '/') return Error{packed.string(), "absolute entry " + name};
    // Entries are re-rooted under dest_dir here (so no absolute-path guard from libarchive).
    archive_entry_copy_pathname(entry, (dest_dir / name).c_str());
    if (const char* link = archive_entry_hardlink(entry)) {
      archive_entry_copy_hardlink(entry, (dest_dir / link).c_str());
    }
    if (archive_write_header(out.get(), entry) != ARCHIVE_OK) {
      return archive_error(dest_dir / name, out.get());
    }
    if (archive_entry_size(entry) > 0) {
      const void* block;
      size_t size;
      la_int64_t offset;
      while ((r = archive_read_data_block(in.get(), &block, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(out.get(), block, size, offset) != ARCHIVE_OK) {
          return archive_error(dest_dir / name, out.get());
        }
      }
      if (r != ARCHIVE_EOF) return archive_error(packed, in.get());
    }
    if (archive_write_finish_entry(out.get()) != ARCHIVE_OK) {
      return archive_error(dest_dir / name, out.get());
    }
  }
  if (r != ARCHIVE_EOF) return archive_error(packed, in.get());
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

Status unpack(const fs::path& packed, Format format, const fs::path& dest_dir) {
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return Error{dest_dir.string(), "cannot create directory: " + ec.message()};
  if (format != Format::kFiles) return extract_archive(packed, fs::absolute(dest_dir));
  fs::copy(packed, dest_dir,
           fs::copy_options::recursive | fs::copy_options::copy_symlinks |
               fs::copy_options::overwrite_existing,
           ec);
  if (ec)
    return Error{packed.string(), "cannot copy into " + dest_dir.string() + ": " + ec.message()};
  return {};
}

}  // namespace testlooper::artifacts
