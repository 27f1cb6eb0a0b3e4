#include "git/repository_impl.h"

#include <git2/sys/repository.h>

namespace testlooper::git::internal {

void init_libgit2() {
  static const int kInitialised = git_libgit2_init();
  (void)kInitialised;
}

Result<RepositoryHandle> open_repository(const std::string& path, const std::string& what) {
  init_libgit2();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) {
    return git_error_at(path, what);
  }
  RepositoryHandle repo(raw);
  OwnedBuf objects;
  if (git_repository_item_path(&objects.buf, repo.get(), GIT_REPOSITORY_ITEM_OBJECTS) != 0) {
    return git_error_at(path, what);
  }
  git_odb* odb = nullptr;
  // One that cannot be opened now is an empty one: the repository and its references are still
  // there, its objects are not found (as libgit2's own lazy open would answer, without the leak).
  if (git_odb_open(&odb, objects.buf.ptr) != 0 && git_odb_new(&odb) != 0) {
    return git_error_at(path, what);
  }
  OdbHandle owned(odb);
  if (git_repository_set_odb(repo.get(), odb) != 0) return git_error_at(path, what);
  return repo;
}

Error git_error_at(const std::string& where, const std::string& what) {
  const git_error* last = git_error_last();
  if (last == nullptr || last->message == nullptr || last->message[0] == '\0') {
    return Error{where, what};
  }
  return Error{where, what + ": " + last->message};
}

std::string to_hex(const git_oid& oid) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof(hex), &oid);
  return std::string(hex, GIT_OID_HEXSZ);
}

Result<CommitHandle> lookup_commit(git_repository* repo, const std::string& where,
                                   const std::string& rev) {
  if (rev.empty()) return Error{where, "no commit '' (empty revision)"};
  git_object* raw = nullptr;
  if (git_revparse_single(&raw, repo, rev.c_str()) != 0) {
    return git_error_at(where, "no commit '" + rev + "'");
  }
  ObjectHandle object(raw);
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, object.get(), GIT_OBJECT_COMMIT) != 0) {
    return git_error_at(where, "'" + rev + "' does not name a commit");
  }
  // A peeled commit object is a git_commit; git_commit_free is git_object_free.
  return CommitHandle(reinterpret_cast<git_commit*>(peeled));
}

Result<CommitHandle> lookup_commit(git_repository* repo, const std::string& where,
                                   const git_oid& id) {
  git_commit* raw = nullptr;
  if (git_commit_lookup(&raw, repo, &id) != 0) {
    return git_error_at(where, "no commit '" + to_hex(id) + "'");
  }
  return CommitHandle(raw);
}

Result<TreeHandle> commit_tree(const git_commit* commit, const std::string& where) {
  git_tree* raw = nullptr;
  if (git_commit_tree(&raw, commit) != 0) {
    return git_error_at(where, "cannot read the tree of commit " + to_hex(*git_commit_id(commit)));
  }
  return TreeHandle(raw);
}

Result<TreeEntryHandle> entry_at(const git_tree* tree, const std::string& path,
                                 const std::string& where) {
  const std::string clean = trim_slashes(path);
  if (clean.empty()) return TreeEntryHandle();
  git_tree_entry* raw = nullptr;
  int code = git_tree_entry_bypath(&raw, tree, clean.c_str());
  if (code == GIT_ENOTFOUND) return TreeEntryHandle();
  if (code != 0) return git_error_at(where, "cannot look up '" + path + "'");
  return TreeEntryHandle(raw);
}

std::string trim_slashes(const std::string& path) {
  const size_t begin = path.find_first_not_of('/');
  if (begin == std::string::npos) return std::string();
  return path.substr(begin, path.find_last_not_of('/') + 1 - begin);
}

std::string memo_key(const git_oid& commit, const std::string& path) {
  std::string key(reinterpret_cast<const char*>(commit.id), GIT_OID_RAWSZ);
  key += path;
  return key;
}

}  // namespace testlooper::git::internal
