#include "runner/inputs.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

namespace testlooper::runner {
namespace {

namespace fs = std::filesystem;
using definitions::Dependency;
using nlohmann::json;

// Where a dependency goes; refuses relpaths that would leave $TEST_INPUTS.
Result<fs::path> destination(const fs::path& inputs, const std::string& relpath) {
  const fs::path rel = fs::path(relpath).lexically_normal();
  if (rel.is_absolute() || rel.empty() || *rel.begin() == "..") {
    return Error{relpath, "dependency path must stay inside $TEST_INPUTS"};
  }
  return rel == "." ? inputs : inputs / rel;
}

// The directory each artifact of a finished build was packed from, read from complete.json.
// complete.json may have come from another machine, so every field is checked: entries of the
// wrong type are skipped, and a directory that would leave $TEST_INPUTS is an error.
Result<std::map<std::string, std::string>> artifact_directories(const artifacts::Store& store,
                                                                const std::string& build_hash) {
  std::map<std::string, std::string> directories;
  std::ifstream in(store.root() / "builds" / build_hash / "complete.json");
  const json summary = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!summary.is_object() || !summary.contains("artifacts") || !summary["artifacts"].is_array()) {
    return directories;
  }
  for (const json& artifact : summary["artifacts"]) {
    if (!artifact.is_object() || !artifact.contains("name") || !artifact["name"].is_string()) {
      continue;
    }
    const json directory = artifact.contains("directory") ? artifact["directory"] : json("");
    const fs::path rel = fs::path(directory.is_string() ? directory.get<std::string>() : "");
    if (rel.is_absolute() || std::find(rel.begin(), rel.end(), "..") != rel.end()) {
      return Error{build_hash, "complete.json puts an artifact outside $TEST_INPUTS"};
    }
    directories[artifact["name"].get<std::string>()] = rel.string();
  }
  return directories;
}

Status stage_whole_build(const Dependency& dep, const fs::path& dest,
                         const artifacts::Store& store) {
  if (auto unnamed = store.find_build_artifact(dep.build_hash, "")) {
    return artifacts::unpack(unnamed->path, unnamed->format, dest);
  }
  const Result<std::vector<artifacts::StoredArtifact>> stored =
      store.build_artifacts(dep.build_hash);
  if (!stored.ok()) return Error{dep.build_name, stored.error().message};
  if (stored->empty()) return Error{dep.build_name, "the build published no artifacts"};
  const Result<std::map<std::string, std::string>> directories =
      artifact_directories(store, dep.build_hash);
  if (!directories.ok()) return Error{dep.build_name, directories.error().message};
  for (const artifacts::StoredArtifact& artifact : *stored) {
    const auto it = directories->find(artifact.name);
    const fs::path into = it == directories->end() || it->second.empty() ? dest : dest / it->second;
    TL_RETURN_IF_ERROR(artifacts::unpack(artifact.path, artifact.format, into));
  }
  return {};
}

Status stage_build(const Dependency& dep, const fs::path& dest, const artifacts::Store& store) {
  if (dep.artifact.empty()) return stage_whole_build(dep, dest, store);
  const std::optional<artifacts::StoredArtifact> artifact =
      store.find_build_artifact(dep.build_hash, dep.artifact);
  if (!artifact) {
    return Error{dep.build_name, "artifact '" + dep.artifact + "' is not in the store"};
  }
  return artifacts::unpack(artifact->path, artifact->format, dest);
}

}  // namespace

Status stage_inputs(const definitions::ResolvedObject& object, const fs::path& inputs,
                    const artifacts::Store& store, SourceExporter& sources) {
  for (const auto& [relpath, dep] : object.dependencies) {
    Result<fs::path> dest = destination(inputs, relpath);
    if (!dest.ok()) return dest.error();
    Status staged = dep.kind == Dependency::Kind::kSource
                        ? sources.export_tree(dep.repo, dep.commit, dep.path, *dest)
                        : stage_build(dep, *dest, store);
    if (!staged.ok()) {
      return Error{relpath, "cannot stage dependency: " + staged.error().to_string()};
    }
  }
  return {};
}

std::string build_summary_json(const definitions::ResolvedObject& build,
                               const std::vector<std::string>& published) {
  json artifacts = json::array();
  for (const definitions::Stage& stage : build.stages) {
    for (const definitions::Artifact& artifact : stage.artifacts) {
      if (std::find(published.begin(), published.end(), artifact.name) == published.end()) {
        continue;
      }
      artifacts.push_back({{"name", artifact.name},
                           {"directory", artifact.directory},
                           {"format", artifact.format}});
    }
  }
  return json{{"name", build.full_name}, {"hash", build.hash}, {"artifacts", artifacts}}.dump(2);
}

}  // namespace testlooper::runner
