// Repository: opening, revisions, commits, trees and branches. History questions live in
// last_commit_touching.cc, the `git log` text in log_entry.cc, exporting in export_tree.cc.
#include <iconv.h>
#include <strings.h>

#include <algorithm>
#include <cctype>

#include "git/git.h"
#include "git/repository_impl.h"

namespace testlooper::git {
namespace {

using internal::commit_tree;
using internal::entry_at;
using internal::git_error_at;
using internal::lookup_commit;
using internal::to_hex;

// The first line of `message`, trailing whitespace removed.
std::string first_line(const std::string& message) {
  std::string line = message.substr(0, message.find('\n'));
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

// `text`, written in `encoding`, as UTF-8, as `git log` shows it. A commit names the encoding of
// its message and signatures when it is not UTF-8 (the "encoding" header git writes from
// i18n.commitEncoding: old repos' ISO-8859-1, for one). Unchanged when none is named, when iconv
// does not know it, or when `text` is not in it (the JSON writers replace what is not UTF-8).
std::string to_utf8(const std::string& text, const char* encoding) {
  if (encoding == nullptr || text.empty() || strcasecmp(encoding, "UTF-8") == 0 ||
      strcasecmp(encoding, "UTF8") == 0) {
    return text;
  }
  iconv_t cd = iconv_open("UTF-8", encoding);
  if (cd == reinterpret_cast<iconv_t>(-1)) return text;
  // A byte of any encoding is at most 3 bytes of UTF-8 (4 for a character of 2 or more bytes).
  std::string out(text.size() * 3 + 4, '\0');
  char* in = const_cast<char*>(text.data());  // iconv's signature; it does not write there
  size_t in_left = text.size();
  char* at = out.data();
  size_t out_left = out.size();
  const bool ok = iconv(cd, &in, &in_left, &at, &out_left) != static_cast<size_t>(-1) &&
                  iconv(cd, nullptr, nullptr, &at, &out_left) != static_cast<size_t>(-1);
  iconv_close(cd);
  if (!ok) return text;
  out.resize(out.size() - out_left);
  return out;
}

// git_tree_walk callback collecting blob paths into a std::vector<std::string>.
int collect_blob(const char* root, const git_tree_entry* entry, void* payload) {
  if (git_tree_entry_type(entry) == GIT_OBJECT_BLOB) {
    auto* paths = static_cast<std::vector<std::string>*>(payload);
    paths->push_back(std::string(root) + git_tree_entry_name(entry));
  }
  return 0;
}

}  // namespace

Repository::Repository(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Repository::Repository(Repository&& other) noexcept = default;
Repository& Repository::operator=(Repository&& other) noexcept = default;
Repository::~Repository() = default;

Result<Repository> Repository::open(const std::string& path) {
  auto repo = internal::open_repository(path, "cannot open git repository");
  TL_RETURN_IF_ERROR(repo);
  auto impl = std::make_unique<Impl>();
  impl->repo = std::move(*repo);
  impl->path = path;
  return Repository(std::move(impl));
}

Result<std::string> Repository::resolve(const std::string& rev) const {
  auto commit = lookup_commit(impl_->repo.get(), impl_->path, rev);
  TL_RETURN_IF_ERROR(commit);
  return to_hex(*git_commit_id(commit->get()));
}

Result<CommitInfo> Repository::commit(const std::string& sha) const {
  auto commit = lookup_commit(impl_->repo.get(), impl_->path, sha);
  TL_RETURN_IF_ERROR(commit);
  const git_commit* c = commit->get();
  CommitInfo info;
  info.sha = to_hex(*git_commit_id(c));
  for (unsigned i = 0; i < git_commit_parentcount(c); ++i) {
    info.parents.push_back(to_hex(*git_commit_parent_id(c, i)));
  }
  const char* encoding = git_commit_message_encoding(c);
  const git_signature* author = git_commit_author(c);
  info.author_name = to_utf8(author->name, encoding);
  info.author_email = author->email;
  info.author_time = author->when.time;
  const char* message = git_commit_message(c);
  info.message = message != nullptr ? to_utf8(message, encoding) : "";
  info.subject = first_line(info.message);
  return info;
}

Result<std::vector<std::string>> Repository::list_files(const std::string& sha) const {
  auto commit = lookup_commit(impl_->repo.get(), impl_->path, sha);
  TL_RETURN_IF_ERROR(commit);
  auto tree = commit_tree(commit->get(), impl_->path);
  TL_RETURN_IF_ERROR(tree);
  std::vector<std::string> paths;
  if (git_tree_walk(tree->get(), GIT_TREEWALK_PRE, collect_blob, &paths) != 0) {
    return git_error_at(impl_->path, "cannot walk the tree of " + sha);
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

Result<std::optional<std::string>> Repository::read_file(const std::string& sha,
                                                         const std::string& path) const {
  auto commit = lookup_commit(impl_->repo.get(), impl_->path, sha);
  TL_RETURN_IF_ERROR(commit);
  auto tree = commit_tree(commit->get(), impl_->path);
  TL_RETURN_IF_ERROR(tree);
  auto entry = entry_at(tree->get(), path, impl_->path);
  TL_RETURN_IF_ERROR(entry);
  if (*entry == nullptr || git_tree_entry_type(entry->get()) != GIT_OBJECT_BLOB) {
    return std::optional<std::string>();
  }
  git_blob* raw = nullptr;
  if (git_blob_lookup(&raw, impl_->repo.get(), git_tree_entry_id(entry->get())) != 0) {
    return git_error_at(impl_->path, "cannot read '" + path + "' at " + sha);
  }
  internal::BlobHandle blob(raw);
  const char* content = static_cast<const char*>(git_blob_rawcontent(blob.get()));
  return std::optional<std::string>(
      std::string(content, static_cast<size_t>(git_blob_rawsize(blob.get()))));
}

Result<std::optional<std::vector<std::string>>> Repository::changed_paths(
    const std::string& sha) const {
  auto commit = lookup_commit(impl_->repo.get(), impl_->path, sha);
  TL_RETURN_IF_ERROR(commit);
  if (git_commit_parentcount(commit->get()) == 0) {
    return std::optional<std::vector<std::string>>();
  }
  auto parent =
      lookup_commit(impl_->repo.get(), impl_->path, *git_commit_parent_id(commit->get(), 0));
  TL_RETURN_IF_ERROR(parent);
  auto old_tree = commit_tree(parent->get(), impl_->path);
  TL_RETURN_IF_ERROR(old_tree);
  auto new_tree = commit_tree(commit->get(), impl_->path);
  TL_RETURN_IF_ERROR(new_tree);
  auto paths =
      internal::changed_between(impl_->repo.get(), old_tree->get(), new_tree->get(), impl_->path);
  TL_RETURN_IF_ERROR(paths);
  std::sort(paths->begin(), paths->end());
  paths->erase(std::unique(paths->begin(), paths->end()), paths->end());
  return std::optional<std::vector<std::string>>(std::move(paths.value()));
}

Result<std::vector<BranchHead>> Repository::branches() const {
  git_branch_iterator* raw_iterator = nullptr;
  if (git_branch_iterator_new(&raw_iterator, impl_->repo.get(), GIT_BRANCH_LOCAL) != 0) {
    return git_error_at(impl_->path, "cannot list branches");
  }
  internal::BranchIteratorHandle iterator(raw_iterator);
  std::vector<BranchHead> heads;
  git_reference* raw_ref = nullptr;
  git_branch_t type;
  int code;
  while ((code = git_branch_next(&raw_ref, &type, iterator.get())) == 0) {
    internal::ReferenceHandle ref(raw_ref);
    const char* name = nullptr;
    git_object* target = nullptr;
    if (git_branch_name(&name, ref.get()) != 0 ||
        git_reference_peel(&target, ref.get(), GIT_OBJECT_COMMIT) != 0) {
      return git_error_at(impl_->path,
                          std::string("cannot read branch ") + git_reference_name(ref.get()));
    }
    internal::ObjectHandle commit(target);
    heads.push_back(BranchHead{name, to_hex(*git_object_id(commit.get()))});
  }
  if (code != GIT_ITEROVER) return git_error_at(impl_->path, "cannot list branches");
  std::sort(heads.begin(), heads.end(),
            [](const BranchHead& a, const BranchHead& b) { return a.name < b.name; });
  return heads;
}

Result<std::vector<std::string>> Repository::first_parent_history(const std::string& sha,
                                                                  size_t limit) const {
  std::vector<std::string> history;
  if (limit == 0) return history;
  auto commit = lookup_commit(impl_->repo.get(), impl_->path, sha);
  TL_RETURN_IF_ERROR(commit);
  internal::CommitHandle current = std::move(commit.value());
  while (true) {
    history.push_back(to_hex(*git_commit_id(current.get())));
    if (history.size() >= limit || git_commit_parentcount(current.get()) == 0) break;
    auto parent =
        lookup_commit(impl_->repo.get(), impl_->path, *git_commit_parent_id(current.get(), 0));
    TL_RETURN_IF_ERROR(parent);
    current = std::move(parent.value());
  }
  return history;
}

}  // namespace testlooper::git
