// Definitions benchmarks (figures in bench/README.md):
//  - BM_Resolve10kObjects: one file whose foreach generates 10,000 builds and tests, in memory.
//  - BM_ResolveAllCommits5k: every commit of a generated 5,000-commit git repo, one reader.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "definitions/definitions.h"
#include "git/git.h"
#include "git/git_source_reader.h"
#include "memory_source_reader.h"

namespace testlooper::definitions {
namespace {

std::string ten_thousand_objects() {
  std::string yaml =
      "looper_version: 5\n"
      "environments:\n"
      "  linux: {platform: linux, image: {dockerfile_contents: 'FROM debian:12'},\n"
      "          variables: {FLAGS: '-O2 ${EXTRA}', EXTRA: '-g'}}\n"
      "builds:\n"
      "  foreach: {n: [";
  for (int i = 0; i < 100; ++i) yaml += (i ? ", " : "") + std::to_string(i);
  yaml += "]}\n  repeat: {'build${n}/linux': {command: 'make ${FLAGS} part${n}'}}\n"
          "tests:\n  foreach: {n: [";
  for (int i = 0; i < 100; ++i) yaml += (i ? ", " : "") + std::to_string(i);
  yaml += "], m: [";
  for (int i = 0; i < 99; ++i) yaml += (i ? ", " : "") + std::to_string(i);
  yaml += "]}\n  repeat:\n    'test${n}_${m}/linux':\n"
          "      command: 'run ${m} ${FLAGS}'\n"
          "      dependencies: {bin: 'build${n}/linux', src: HEAD}\n";
  return yaml;
}

void BM_Resolve10kObjects(benchmark::State& state) {
  MemorySourceReader reader;
  const std::string sha(40, '1');
  reader.add_commit("main", sha, {{"testlooper.yml", ten_thousand_objects()}});
  for (auto _ : state) {
    auto resolved = resolve_commit(reader, "main", sha);
    if (!resolved.ok() || resolved->error || resolved->objects.size() != 10'000) {
      state.SkipWithError(resolved.ok() ? resolved->error.value_or("wrong count").c_str() : "read");
      return;
    }
    benchmark::DoNotOptimize(resolved->objects.back().hash);
  }
}
BENCHMARK(BM_Resolve10kObjects)->Unit(benchmark::kMillisecond)->Iterations(3);

// A repo of `commits` first-parent commits made with git fast-import: each changes one of 50
// source files; the definitions give 20 tests, each depending on a slice of src/.
std::string make_history_repo(int commits) {
  const std::string dir = std::filesystem::temp_directory_path() / "testlooper-bench-5k-v2";
  if (std::filesystem::exists(dir + "/.done")) return dir;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::system(("git init -q -b main " + dir).c_str());
  FILE* in = popen(("git -C " + dir + " fast-import --quiet").c_str(), "w");
  std::string defs = "looper_version: 5\nenvironments: {linux: {platform: linux, image: {host: true}}}\n"
                     "builds: {lib/linux: {command: make, dependencies: {src: HEAD/source/src/d0}}}\n"
                     "tests:\n  foreach: {n: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]}\n"
                     "  repeat: {'t${n}/linux': {command: 'test ${n}', dependencies: "
                     "{lib: lib/linux, src: 'HEAD/source/src/d${n}'}}}\n";
  for (int i = 0; i < commits; ++i) {
    const std::string content = "version " + std::to_string(i) + "\n";
    const std::string msg = "commit " + std::to_string(i) + "\n";
    fprintf(in, "commit refs/heads/main\nmark :%d\ncommitter B <b@b> %d +0000\ndata %zu\n%s", i + 1,
            1600000000 + i, msg.size(), msg.c_str());
    if (i > 0) fprintf(in, "from :%d\n", i);
    if (i == 0) {
      fprintf(in, "M 100644 inline testlooper.yml\ndata %zu\n%s\n", defs.size(), defs.c_str());
      for (int d = 0; d < 50; ++d) fprintf(in, "M 100644 inline src/d%d/f.c\ndata 0\n\n", d);
    }
    fprintf(in, "M 100644 inline src/d%d/f.c\ndata %zu\n%s\n", i % 50, content.size(), content.c_str());
  }
  pclose(in);
  std::system(("touch " + dir + "/.done").c_str());
  return dir;
}

void BM_ResolveAllCommits5k(benchmark::State& state) {
  const std::string dir = make_history_repo(5000);
  auto repo = git::Repository::open(dir);
  auto head = repo->resolve("main");
  auto history = repo->first_parent_history(*head, 100000);
  for (auto _ : state) {
    git::GitSourceReader reader([&](const std::string&) { return std::optional<std::string>(dir); });
    size_t objects = 0;
    for (const auto& sha : *history) {
      auto resolved = resolve_commit(reader, "main", sha);
      if (!resolved.ok() || resolved->error) {
        state.SkipWithError("resolution failed");
        return;
      }
      objects += resolved->objects.size();
    }
    state.counters["commits"] = static_cast<double>(history->size());
    state.counters["objects"] = static_cast<double>(objects);
  }
}
BENCHMARK(BM_ResolveAllCommits5k)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace testlooper::definitions

BENCHMARK_MAIN();
