// Crafted archives for tests: a tar (or zip) written entry by entry with libarchive, holding
// exactly what an attacker would put in it (hard links, devices, "..", links out...).
// Link the test with libarchive (PkgConfig::LIBARCHIVE).
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace testlooper::testing {

struct CraftedEntry {
  enum class Kind { kFile, kDirectory, kSymlink, kHardLink, kCharDevice, kFifo };
  Kind kind = Kind::kFile;
  std::string name;
  std::string data;  // a file's content
  std::string link;  // a symlink's target or a hard link's source
  mode_t mode = 0644;
};

inline CraftedEntry file_entry(std::string name, std::string data) {
  return {CraftedEntry::Kind::kFile, std::move(name), std::move(data), ""};
}
inline CraftedEntry dir_entry(std::string name) {
  return {CraftedEntry::Kind::kDirectory, std::move(name), "", "", 0755};
}
inline CraftedEntry symlink_entry(std::string name, std::string target) {
  return {CraftedEntry::Kind::kSymlink, std::move(name), "", std::move(target)};
}
// A hard-link entry that also carries data (what a writer through the link would write).
inline CraftedEntry hardlink_entry(std::string name, std::string source, std::string data) {
  return {CraftedEntry::Kind::kHardLink, std::move(name), std::move(data), std::move(source)};
}

// Writes `entries` as a pax tar (or a zip when `zip`) at `path`; throws on a libarchive error.
inline void write_crafted_archive(const std::filesystem::path& path,
                                  const std::vector<CraftedEntry>& entries, bool zip = false) {
  archive* out = archive_write_new();
  zip ? archive_write_set_format_zip(out) : archive_write_set_format_pax_restricted(out);
  if (archive_write_open_filename(out, path.c_str()) != ARCHIVE_OK) {
    throw std::runtime_error(archive_error_string(out));
  }
  for (const CraftedEntry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_perm(entry, e.mode);
    using Kind = CraftedEntry::Kind;
    switch (e.kind) {
      case Kind::kFile:
      case Kind::kHardLink:
        archive_entry_set_filetype(entry, AE_IFREG);
        break;
      case Kind::kDirectory:
        archive_entry_set_filetype(entry, AE_IFDIR);
        break;
      case Kind::kSymlink:
        archive_entry_set_filetype(entry, AE_IFLNK);
        archive_entry_set_symlink(entry, e.link.c_str());
        break;
      case Kind::kCharDevice:
        archive_entry_set_filetype(entry, AE_IFCHR);
        archive_entry_set_rdev(entry, makedev(1, 3));
        break;
      case Kind::kFifo:
        archive_entry_set_filetype(entry, AE_IFIFO);
        break;
    }
    if (e.kind == Kind::kHardLink) archive_entry_set_hardlink(entry, e.link.c_str());
    archive_entry_set_size(entry, static_cast<int64_t>(e.data.size()));
    if (archive_write_header(out, entry) != ARCHIVE_OK) {
      throw std::runtime_error(archive_error_string(out));
    }
    if (!e.data.empty()) archive_write_data(out, e.data.data(), e.data.size());
    archive_entry_free(entry);
  }
  archive_write_close(out);
  archive_write_free(out);
}

// A tar whose one entry, file `name`, states `size` bytes in its header (base-256, as tar
// writes sizes over 8 GiB) but holds none: a few hundred bytes that claim a huge file.
inline std::string tar_with_stated_size(const std::string& name, uint64_t size) {
  std::string header(512, '\0');
  header.replace(0, name.size(), name);
  header.replace(100, 7, "0000644");
  header[124] = static_cast<char>(0x80);
  for (int i = 0; i < 8; ++i) header[135 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
  header.replace(136, 11, "00000000000");
  header[156] = '0';
  header.replace(257, 6, std::string("ustar\0", 6));
  header.replace(263, 2, "00");
  header.replace(148, 8, "        ");
  unsigned sum = 0;
  for (const char c : header) sum += static_cast<unsigned char>(c);
  char field[8];
  snprintf(field, sizeof field, "%06o", sum);
  header.replace(148, 7, std::string(field, 6) + '\0');
  return header + std::string(1024, '\0');
}

}  // namespace testlooper::testing
