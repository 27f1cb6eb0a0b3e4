// Loading a commit's namespace: root file, macros, repos and includes.
#include "definitions/loader.h"

#include <fmt/format.h>

#include "definitions/macros.h"

namespace testlooper::definitions {
namespace {

constexpr int kMaxIncludes = 128;
const std::vector<std::string> kRootKeys = {"looper_version", "repos",     "includes",
                                            "environments",   "builds",    "tests",
                                            "deployments",    "test_sets", "triggers"};
const std::vector<std::string> kIncludedKeys = {
    "looper_version", "repos", "includes", "environments", "builds", "tests", "deployments"};

bool is_sha(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A stable text form of a node, to recognise identical includes.
std::string canonical(const Node& n) {
  switch (n.kind) {
    case Node::Kind::kNull:
      return "~";
    case Node::Kind::kScalar:
      return fmt::format("s{}:{}", n.text.size(), n.text);
    case Node::Kind::kList: {
      std::string out = "[";
      for (const auto& i : n.items) out += canonical(i) + ",";
      return out + "]";
    }
    case Node::Kind::kMap: {
      std::map<std::string, std::string> sorted;
      for (const auto& [k, v] : n.entries) sorted[k.text] = canonical(v);
      std::string out = "{";
      for (const auto& [k, v] : sorted) out += fmt::format("s{}:{}={},", k.size(), k, v);
      return out + "}";
    }
  }
  return "";
}

void check_version(const Node& doc, bool root) {
  const Node* version = doc.find("looper_version");
  if (version == nullptr) {
    if (root) fail_at(doc, "missing 'looper_version: 5'");
    return;
  }
  const long long v = as_int(*version, "looper_version");
  if (root && v != 5) {
    fail_at(*version, fmt::format("looper_version {} is not supported here because the root file "
                                  "must say looper_version 5 (files it includes may say 4)",
                                  v));
  }
  if (!root && v != 4 && v != 5) {
    fail_at(*version, fmt::format("looper_version of an included file must be 4 or 5, not {}", v));
  }
}

void add_definitions(std::map<std::string, Definition>& into, const Node* section,
                     const std::string& what, const std::string& repo, const std::string& commit) {
  if (section == nullptr) return;
  for (auto& [key, value] : section_entries(*section, what)) {
    if (key.text.empty()) fail_at(key, fmt::format("a name in '{}' may not be empty", what));
    if (into.count(key.text) != 0) {
      fail_at(key, fmt::format("'{}' is already defined in '{}' (at {})", key.text, what,
                               into.at(key.text).key.mark.to_string()));
    }
    into.emplace(key.text, Definition{key, value, repo, commit});
  }
}

}  // namespace

// Joins a relative include path onto a directory, resolving '.' and '..'.
std::string join_path(const Node& at, const std::string& dir, const std::string& rel) {
  std::vector<std::string> parts;
  auto push = [&](const std::string& p) {
    size_t start = 0;
    while (start <= p.size()) {
      size_t end = p.find('/', start);
      if (end == std::string::npos) end = p.size();
      const std::string seg = p.substr(start, end - start);
      if (seg == "..") {
        if (parts.empty()) fail_at(at, fmt::format("include path '{}' leaves the repository", rel));
        parts.pop_back();
      } else if (!seg.empty() && seg != ".") {
        parts.push_back(seg);
      }
      start = end + 1;
    }
  };
  push(dir);
  push(rel);
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

bool CommitDefinitions::has_head_pin() const {
  for (const auto& [name, entry] : repos) {
    if (entry.reference.commit == "HEAD") return true;
  }
  return false;
}

// Where an include points.
struct Loader::FileRef {
  std::string repo;
  std::string commit;
  std::string path;
};

// Walks the include tree of one commit, counting and deduplicating includes.
class Loader::IncludeWalker {
 public:
  IncludeWalker(Loader& loader, CommitDefinitions& defs) : loader_(loader), defs_(defs) {}

  void merge_file(const Node& doc, const FileRef& file, bool root) {
    check_keys(doc, root ? kRootKeys : kIncludedKeys,
               root ? "the definitions file" : "an included file");
    check_version(doc, root);
    // Auto pins may live in any file of this repo (the server edits them there), not in a file
    // of another repo.
    if (const Node* repos = doc.find("repos")) {
      loader_.parse_repos(defs_, *repos, !root && file.repo != defs_.repo);
    }
    add_definitions(defs_.environments, doc.find("environments"), "environments", file.repo,
                    file.commit);
    add_definitions(defs_.builds, doc.find("builds"), "builds", file.repo, file.commit);
    add_definitions(defs_.tests, doc.find("tests"), "tests", file.repo, file.commit);
    add_definitions(defs_.deployments, doc.find("deployments"), "deployments", file.repo,
                    file.commit);
    if (const Node* includes = doc.find("includes")) walk(*includes, file);
  }

 private:
  void walk(const Node& includes, const FileRef& from) {
    if (includes.is_null()) return;
    if (!includes.is_list())
      fail_at(includes, "'includes' must be a list of paths or {path, variables}");
    for (const auto& item : includes.items) include_one(item, from);
  }

  void include_one(const Node& item, const FileRef& from) {
    Node variables = Node::map(item.mark);
    std::string path;
    if (item.is_map()) {
      check_keys(item, {"path", "variables"}, "an include");
      const Node* p = item.find("path");
      if (p == nullptr) fail_at(item, "an include needs a 'path'");
      path = as_string(*p, "an include's path");
      if (const Node* v = item.find("variables")) {
        if (!v->is_map()) fail_at(*v, "an include's 'variables' must be a map");
        variables = *v;
      }
    } else {
      path = as_string(item, "an include");
    }
    const FileRef target = resolve(item, from, path);
    const std::string key =
        target.repo + "\n" + target.commit + "\n" + target.path + "\n" + canonical(variables);
    if (!seen_.insert(key).second) return;
    if (++count_ > kMaxIncludes) {
      fail_at(item, fmt::format("more than {} includes (is a file including itself through "
                                "variables?)",
                                kMaxIncludes));
    }
    const Node raw = loader_.read_document(target.repo, target.commit, target.path, &item);
    MacroScope scope;
    for (const auto& [k, v] : variables.entries) scope.variables.emplace(k.text, v);
    merge_file(expand_document(raw, scope), target, false);
  }

  FileRef resolve(const Node& at, const FileRef& from, const std::string& path) const {
    if (path.rfind("./", 0) == 0 || path.rfind("../", 0) == 0) {
      return {from.repo, from.commit, join_path(at, dir_of(from.path), path)};
    }
    if (path.rfind('/', 0) == 0) return {from.repo, from.commit, join_path(at, "", path)};
    const size_t slash = path.find('/');
    const std::string ref = path.substr(0, slash);
    auto it = defs_.repos.find(ref);
    if (slash == std::string::npos || it == defs_.repos.end()) {
      fail_at(at, fmt::format("include path '{}' must start with './', '../', '/' or the name of "
                              "a repo reference",
                              path));
    }
    const RepoReference& r = it->second.reference;
    if (r.commit == "HEAD")
      fail_at(at, fmt::format("repo '{}' is a HEAD pin: nothing to include", ref));
    return {r.repo, r.commit, join_path(at, r.path.value_or(""), path.substr(slash + 1))};
  }

  Loader& loader_;
  CommitDefinitions& defs_;
  std::set<std::string> seen_;
  int count_ = 0;
};

Loader::Loader(SourceReader& reader, std::string primary_repo)
    : reader_(reader), primary_repo_(std::move(primary_repo)) {}

std::string Loader::display_path(const std::string& repo, const std::string& path) const {
  return repo == primary_repo_ ? path : repo + "/" + path;
}

const CommitDefinitions& Loader::load(const std::string& repo, const std::string& commit,
                                      const Node* at) {
  const auto key = std::make_pair(repo, commit);
  if (auto it = cache_.find(key); it != cache_.end()) return *it->second;
  if (!loading_.insert(key).second) {
    const std::string message =
        fmt::format("repos of {}/{} refer back to themselves", repo, commit);
    if (at != nullptr) fail_at(*at, message);
    throw DefinitionError(Mark{display_path(repo, "")}, message);
  }
  auto defs = std::make_shared<CommitDefinitions>();
  defs->repo = repo;
  defs->commit = commit;
  try {
    load_uncached(*defs);
  } catch (const ReadError& e) {
    loading_.erase(key);
    failed_[key] = defs;
    if (at != nullptr) fail_at(*at, e.error().to_string());
    throw;
  } catch (...) {
    loading_.erase(key);
    failed_[key] = defs;
    throw;
  }
  loading_.erase(key);
  return *cache_.emplace(key, std::move(defs)).first->second;
}

std::map<std::string, RepoReference> Loader::repos_read(const std::string& repo,
                                                        const std::string& commit) const {
  const auto key = std::make_pair(repo, commit);
  const CommitDefinitions* defs = nullptr;
  if (auto it = cache_.find(key); it != cache_.end()) defs = it->second.get();
  if (auto it = failed_.find(key); defs == nullptr && it != failed_.end()) defs = it->second.get();
  std::map<std::string, RepoReference> out;
  if (defs == nullptr) return out;
  for (const auto& [name, entry] : defs->repos) out.emplace(name, entry.reference);
  return out;
}

void Loader::load_uncached(CommitDefinitions& defs) {
  const std::string& repo = defs.repo;
  const std::string& commit = defs.commit;
  auto files = reader_.list_files(repo, commit);
  if (!files.ok()) throw ReadError(files.error());
  defs.file = find_definitions_file(*files);
  if (!defs.file) return;
  const Node raw = read_document(repo, commit, *defs.file, nullptr);
  if (!raw.is_map()) fail_at(raw, "the definitions file must be a map with 'looper_version: 5'");
  const Node doc = expand_document(raw, MacroScope{});
  IncludeWalker(*this, defs).merge_file(doc, FileRef{repo, commit, *defs.file}, true);
  if (const Node* sets = doc.find("test_sets")) defs.test_sets = *sets;
  if (const Node* triggers = doc.find("triggers")) defs.triggers = *triggers;
}

Node Loader::read_document(const std::string& repo, const std::string& commit,
                           const std::string& path, const Node* at) {
  auto content = value_or_fail(reader_.read_file(repo, commit, path), at);
  if (!content.has_value()) {
    if (at != nullptr) fail_at(*at, fmt::format("included file '{}' does not exist", path));
    throw ReadError(Error{display_path(repo, path), "file vanished while reading"});
  }
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  return parse_document(*content, display_path(repo, path), json);
}

void Loader::parse_repos(CommitDefinitions& defs, const Node& section, bool foreign) {
  for (const auto& [key, value] : section_entries(section, "repos")) {
    if (key.text == "HEAD" || key.text == "source" || key.text == "data") {
      fail_at(key, fmt::format("'{}' is a reserved name and cannot name a repo", key.text));
    }
    if (key.text.empty() || key.text.find('/') != std::string::npos) {
      fail_at(key,
              fmt::format("repo reference name '{}' may not be empty or contain '/'", key.text));
    }
    if (defs.repos.count(key.text) != 0) {
      fail_at(key, fmt::format("repo '{}' is already defined (at {})", key.text,
                               defs.repos.at(key.text).key.mark.to_string()));
    }
    RepoReference ref = parse_repo_value(defs, key, value, foreign);
    defs.repos.emplace(key.text, RepoEntry{key, std::move(ref)});
  }
}

RepoReference parse_reference_string(const Node& at) {
  const std::string text = as_string(at, "a repo reference");
  const size_t slash = text.rfind('/');
  RepoReference ref;
  if (slash != std::string::npos) {
    ref.repo = text.substr(0, slash);
    ref.commit = text.substr(slash + 1);
  }
  if (ref.repo.empty() || (!is_sha(ref.commit) && ref.commit != "HEAD")) {
    fail_at(at, fmt::format("repo reference '{}' must be '<repo>/<40-hex sha>' or '<repo>/HEAD'",
                            text));
  }
  return ref;
}

RepoReference Loader::parse_repo_value(CommitDefinitions& defs, const Node& key, const Node& value,
                                       bool foreign) {
  // `HEAD` alone: this commit of this repo (the commit whose definitions are being loaded).
  auto is_this_commit = [](const Node& n) { return n.is_scalar() && n.text == "HEAD"; };
  if (is_this_commit(value)) return RepoReference{defs.repo, defs.commit, {}, {}, false};
  if (value.is_scalar()) return parse_reference_string(value);
  check_keys(value, {"reference", "path", "branch", "auto", "import"}, "a repo reference");
  if (value.find("import") != nullptr) {
    if (value.entries.size() != 1) fail_at(value, "'import' stands alone in a repo reference");
    return resolve_import(defs, *value.find("import"));
  }
  const Node* reference = value.find("reference");
  if (reference == nullptr) fail_at(value, fmt::format("repo '{}' needs a 'reference'", key.text));
  if (is_this_commit(*reference)) {
    for (const char* pin_key : {"branch", "auto"}) {
      if (const Node* k = value.find(pin_key)) {
        fail_at(*k, fmt::format("'{}' is not supported with 'reference: HEAD' because HEAD is this "
                                "commit, which no pin can move",
                                pin_key));
      }
    }
  }
  RepoReference ref = is_this_commit(*reference)
                          ? RepoReference{defs.repo, defs.commit, {}, {}, false}
                          : parse_reference_string(*reference);
  if (const Node* path = value.find("path")) {
    std::string p = as_string(*path, "a repo slice's path");
    while (!p.empty() && p.back() == '/') p.pop_back();
    while (!p.empty() && p.front() == '/') p.erase(0, 1);
    if (!p.empty()) ref.path = p;
  }
  if (const Node* branch = value.find("branch")) ref.branch = as_string(*branch, "a pin's branch");
  if (const Node* a = value.find("auto")) ref.auto_update = as_bool(*a, "a pin's 'auto'");
  if (ref.auto_update && !ref.branch) fail_at(*value.find("auto"), "'auto: true' needs a 'branch'");
  if (ref.auto_update && foreign)
    fail_at(*value.find("auto"), "files included from another repo may not define auto pins");
  return ref;
}

RepoReference Loader::resolve_import(CommitDefinitions& defs, const Node& value) {
  const std::string text = as_string(value, "an import");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('/', start);
    if (end == std::string::npos) end = text.size();
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (parts.size() < 2)
    fail_at(value, fmt::format("import '{}' must be '<refname>/<child ref>'", text));
  auto it = defs.repos.find(parts[0]);
  if (it == defs.repos.end())
    fail_at(value,
            fmt::format("import '{}': no repo named '{}' is defined before it", text, parts[0]));
  RepoReference current = it->second.reference;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (current.commit == "HEAD")
      fail_at(value, fmt::format("import '{}' goes through a HEAD pin", text));
    const CommitDefinitions& other = load(current.repo, current.commit, &value);
    auto child = other.repos.find(parts[i]);
    if (child == other.repos.end()) {
      fail_at(value, fmt::format("import '{}': {}/{} defines no repo '{}'", text, current.repo,
                                 current.commit, parts[i]));
    }
    current = child->second.reference;
  }
  current.branch.reset();
  current.auto_update = false;
  return current;
}

}  // namespace testlooper::definitions
