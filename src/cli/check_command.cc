// `testlooper check`: resolve a commit's definitions and print them.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "cli/repo_location.h"
#include "definitions/definitions.h"
#include "definitions/definitions_json.h"

namespace testlooper::cli {
namespace {

using definitions::Dependency;
using definitions::ResolvedCommit;
using definitions::ResolvedObject;

struct CheckOptions {
  std::string repo = ".";
  std::string commit = "HEAD";
  std::string repos_root;
  bool json = false;
};

std::string short_sha(const std::string& sha) { return sha.substr(0, 12); }

std::string describe(const Dependency& d) {
  if (d.kind == Dependency::Kind::kSource) {
    return fmt::format("source {}@{}{}", d.repo, short_sha(d.commit), d.path.empty() ? "" : ":" + d.path);
  }
  return fmt::format("build {}{} ({})", d.build_name, d.artifact.empty() ? "" : " artifact " + d.artifact,
                     short_sha(d.build_hash));
}

void print_object(const ResolvedObject& o) {
  fmt::print("  {}  hash {}\n", o.name, short_sha(o.hash));
  fmt::print("    environment {} ({}), project {}, configuration {}\n", o.environment.name,
             o.environment.image_kind, o.project, o.configuration);
  fmt::print("    timeout {}s, cores {}-{}, ram {} GB\n", o.timeout, o.min_cores, o.max_cores, o.min_ram_gb);
  for (const auto& [path, d] : o.dependencies) fmt::print("    {} <- {}\n", path, describe(d));
  for (const auto& s : o.stages) {
    const std::string& cmd = s.command.empty() ? s.run_tests_command : s.command;
    fmt::print("    stage {}: {}\n", s.order, cmd.substr(0, cmd.find('\n')));
  }
}

void print_human(const ResolvedCommit& c) {
  fmt::print("{} at {}: {}\n", c.repo, c.commit, c.file ? *c.file : "no definitions file");
  if (c.error) fmt::print("error: {}\n", *c.error);
  for (const auto& [name, r] : c.repos) {
    fmt::print("repo {} -> {}/{}{}{}\n", name, r.repo, r.commit, r.path ? " path " + *r.path : "",
               r.branch ? fmt::format(" pin {}{}", *r.branch, r.auto_update ? " (auto)" : "") : "");
  }
  for (const auto& [name, e] : c.environments) {
    std::string chain;
    for (const auto& i : e.inheritance) chain += (chain.empty() ? "" : " -> ") + i;
    fmt::print("environment {}: {} {} [{}]\n", name, e.platform, e.image_kind, chain);
  }
  for (const auto kind : {definitions::ObjectKind::kBuild, definitions::ObjectKind::kTest,
                          definitions::ObjectKind::kDeployment}) {
    bool header = false;
    for (const auto& o : c.objects) {
      if (o.kind != kind) continue;
      if (!header) fmt::print("{}s:\n", to_string(kind));
      header = true;
      print_object(o);
    }
  }
  for (const auto& [set, names] : c.test_sets) fmt::print("test set {}: {} objects\n", set, names.size());
  std::string triggered;
  for (const auto& t : c.triggered_test_sets) triggered += " " + t;
  fmt::print("triggered test sets:{}\n", triggered.empty() ? " none" : triggered);
}

int run_check(const CheckOptions& options) {
  auto location = locate_repo(options.repo, options.commit, options.repos_root);
  if (!location.ok()) {
    std::cerr << "testlooper check: " << location.error().to_string() << "\n";
    return 2;
  }
  auto reader = make_reader(*location);
  auto resolved = definitions::resolve_commit(reader, location->name, location->commit);
  if (!resolved.ok()) {
    std::cerr << "testlooper check: " << resolved.error().to_string() << "\n";
    return 2;
  }
  if (options.json) {
    std::cout << definitions::commit_to_json(*resolved) << "\n";
  } else {
    print_human(*resolved);
  }
  if (resolved->error) {
    if (options.json) std::cerr << *resolved->error << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

void add_check_command(CLI::App& app, Action& action) {
  auto options = std::make_shared<CheckOptions>();
  CLI::App* cmd = app.add_subcommand("check", "Resolve a commit's test definitions and print them");
  cmd->add_option("--repo", options->repo, "The git repo (default: .)");
  cmd->add_option("--commit", options->commit, "The commit (default: HEAD)");
  cmd->add_option("--repos-root", options->repos_root,
                  "Where referenced repos are found by name (default: the repo's parent folder)");
  cmd->add_flag("--json", options->json, "Print one JSON object");
  cmd->callback([options, &action] { action = [options] { return run_check(*options); }; });
}

}  // namespace testlooper::cli
