#include "cli/no_deps.h"

#include <map>
#include <nlohmann/json.hpp>
#include <optional>

namespace testlooper::cli {
namespace {

using definitions::Dependency;
using definitions::ObjectKind;
using definitions::ResolvedObject;

// Where a build was made: "repo/<commit id>/name" split, the commit id reduced to the commit a
// working tree's id ("<sha>+dirty:<hash>") is on top of.
struct Origin {
  std::string repo;
  std::string commit;  // the commit id as in the full name
  std::string base;    // the commit it is, or is on top of
  bool operator==(const Origin& o) const { return repo == o.repo && base == o.base; }
};

std::optional<Origin> origin_of(const std::string& full_name, const std::string& name) {
  const std::string suffix = "/" + name;
  if (full_name.size() <= suffix.size() ||
      full_name.compare(full_name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string prefix = full_name.substr(0, full_name.size() - suffix.size());
  const size_t slash = prefix.rfind('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  Origin o{prefix.substr(0, slash), prefix.substr(slash + 1), ""};
  o.base = o.commit.substr(0, o.commit.find('+'));
  return o;
}

// The full name a stored build's complete.json gives, or "" when it gives none.
std::string stored_name(const std::string& summary_json) {
  const nlohmann::json summary = nlohmann::json::parse(summary_json, nullptr, false);
  if (!summary.is_object() || !summary.contains("name") || !summary["name"].is_string()) return "";
  return summary["name"].get<std::string>();
}

// A stored build standing for a needed one.
struct Taken {
  std::string hash;
  std::string full_name;
};

class Planner {
 public:
  Planner(const definitions::ResolvedCommit& commit, const artifacts::Store& store)
      : store_(store) {
    for (const auto* list : {&commit.objects, &commit.external_builds}) {
      for (const ResolvedObject& o : *list) {
        if (o.kind == ObjectKind::kBuild) builds_.emplace(o.hash, &o);
      }
    }
  }

  // The test with each build dependency pointing at the build taken for it.
  Result<ResolvedObject> rewrite(const ResolvedObject& test) {
    ResolvedObject out = test;
    bool changed = false;
    for (auto& [relpath, dependency] : out.dependencies) {
      if (dependency.kind != Dependency::Kind::kBuild) continue;
      auto taken = take(dependency, test);
      TL_RETURN_IF_ERROR(taken);
      changed = changed || taken->hash != dependency.build_hash;
      dependency.build_hash = taken->hash;
      dependency.build_name = taken->full_name;
    }
    if (changed) out.hash = definitions::identity_hash(out);
    return out;
  }

  // The builds taken, as objects carrying the stored build's hash and full name.
  std::vector<ResolvedObject> taken_builds() const {
    std::vector<ResolvedObject> out;
    for (const auto& [hash, chosen] : taken_) {
      ResolvedObject build = *chosen.needed;
      build.hash = chosen.taken.hash;
      build.full_name = chosen.taken.full_name;
      out.push_back(std::move(build));
    }
    return out;
  }

  std::vector<std::string> notes() const {
    std::vector<std::string> out;
    for (const auto& [hash, chosen] : taken_) {
      const Taken& taken = chosen.taken;
      if (taken.hash == chosen.needed->hash) continue;
      const std::optional<Origin> origin = origin_of(taken.full_name, chosen.needed->name);
      out.push_back("--no-deps: " + chosen.needed->name + " is taken from the store as made from " +
                    (origin ? origin->commit.substr(0, 12) +
                                  (origin->commit != origin->base ? " (a working tree)" : "")
                            : taken.full_name) +
                    ", not rebuilt for what changed since");
    }
    return out;
  }

 private:
  // A build taken, and the build it stands for.
  struct Chosen {
    const ResolvedObject* needed;
    Taken taken;
  };

  Result<Taken> take(const Dependency& dependency, const ResolvedObject& test) {
    const auto needed = builds_.find(dependency.build_hash);
    if (needed == builds_.end()) {
      return Error{"--no-deps",
                   "build " + dependency.build_name + " is not among the resolved builds"};
    }
    const ResolvedObject& build = *needed->second;
    std::optional<Taken> found;
    if (store_.is_build_complete(build.hash) && has_artifact(build.hash, dependency.artifact)) {
      found = Taken{build.hash, build.full_name};
    }
    if (!found) found = same_build_of_same_commit(build, dependency.artifact);
    if (!found) return missing(build, test);
    taken_.emplace(found->hash, Chosen{&build, *found});
    return *found;
  }

  std::optional<Taken> same_build_of_same_commit(const ResolvedObject& build,
                                                 const std::string& artifact) {
    const std::optional<Origin> wanted = origin_of(build.full_name, build.name);
    if (!wanted) return std::nullopt;
    if (!complete_) complete_ = store_.complete_builds();
    for (const artifacts::Store::CompleteBuild& stored : *complete_) {
      const std::string name = stored_name(stored.summary_json);
      const std::optional<Origin> origin = origin_of(name, build.name);
      if (origin && *origin == *wanted && has_artifact(stored.hash, artifact)) {
        return Taken{stored.hash, name};
      }
    }
    return std::nullopt;
  }

  bool has_artifact(const std::string& hash, const std::string& artifact) const {
    return artifact.empty() || store_.find_build_artifact(hash, artifact).has_value();
  }

  Error missing(const ResolvedObject& build, const ResolvedObject& test) const {
    const bool own =
        build.full_name.rfind(test.full_name.substr(0, test.full_name.size() - test.name.size()),
                              0) == 0;
    return Error{"--no-deps", "build " + build.name + " (needed by " + test.name +
                                  ") is not in the store " + store_.root().string() +
                                  "; build it first with `testlooper run " +
                                  (own ? "'" + build.name + "'" : "'" + test.name + "'") +
                                  "` (without --no-deps)"};
  }

  const artifacts::Store& store_;
  std::map<std::string, const ResolvedObject*> builds_;  // by hash
  std::map<std::string, Chosen> taken_;                  // by the stored build's hash
  std::optional<std::vector<artifacts::Store::CompleteBuild>> complete_;
};

}  // namespace

Result<NoDepsRun> plan_no_deps(const definitions::ResolvedCommit& commit,
                               const std::vector<std::string>& names,
                               const artifacts::Store& store) {
  Planner planner(commit, store);
  NoDepsRun run;
  for (const std::string& name : names) {
    const ResolvedObject* object = commit.find(name);
    if (object == nullptr || object->kind != ObjectKind::kTest) continue;
    auto test = planner.rewrite(*object);
    TL_RETURN_IF_ERROR(test);
    run.objects.push_back(std::move(test.value()));
  }
  if (run.objects.empty()) return Error{"--no-deps", "runs tests only, and no test is chosen"};
  for (ResolvedObject& build : planner.taken_builds()) run.objects.push_back(std::move(build));
  run.notes = planner.notes();
  return run;
}

}  // namespace testlooper::cli
