// Shared by the `testlooper run` end-to-end tests: a temp dir holding a git repo "app" and a
// private artifact store, and a way to run the real binary and read its JSON report.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "git/git_fixture.h"

namespace testlooper::cli::testing {

struct RunOutput {
  int status = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

class RunFixture : public ::testing::Test {
 protected:
  RunFixture() : app_(dir_.path() + "/app") {}

  // Commits `yaml` as app/testlooper.yml (plus `files`), returns the sha.
  std::string commit(const std::string& yaml,
                     const std::vector<std::pair<std::string, std::string>>& files = {}) {
    app_.write("testlooper.yml", yaml);
    for (const auto& [path, content] : files) app_.write(path, content);
    return app_.commit("definitions");
  }

  // Runs `testlooper run --repo app --store store <args>`.
  RunOutput run(const std::string& args) const {
    const std::string err_file = dir_.path() + "/stderr.txt";
    const std::string command =
        std::string(TL_BINARY) + " run --repo " + fixtures::shell_quote(app_.path()) + " --store " +
        fixtures::shell_quote(store()) + " " + args + " 2>" + fixtures::shell_quote(err_file);
    RunOutput result;
    FILE* p = popen(command.c_str(), "r");
    std::array<char, 4096> buf{};
    for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) result.out.append(buf.data(), n);
    const int status = pclose(p);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream err(err_file);
    result.err.assign(std::istreambuf_iterator<char>(err), {});
    return result;
  }

  // Runs with --json and returns the parsed report; fails the test on unparsable output.
  nlohmann::json run_json(const std::string& args, int expected_status) const {
    const RunOutput o = run("--json " + args);
    EXPECT_EQ(o.status, expected_status) << o.err << o.out;
    const nlohmann::json report = nlohmann::json::parse(o.out, nullptr, false);
    EXPECT_FALSE(report.is_discarded()) << o.out << o.err;
    return report;
  }

  std::string store() const { return dir_.path() + "/store"; }
  std::string path(const std::string& rel) const { return dir_.path() + "/" + rel; }

  fixtures::TempDir dir_;
  fixtures::GitFixtureRepo app_;
};

// The report's entry for object `name`.
inline const nlohmann::json& object_named(const nlohmann::json& report, const std::string& name) {
  for (const nlohmann::json& o : report["objects"]) {
    if (o["name"] == name) return o;
  }
  static const nlohmann::json kMissing;
  ADD_FAILURE() << "no object " << name << " in " << report.dump(2);
  return kMissing;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A `test_result.json` of a run in the report, parsed.
inline nlohmann::json test_result_of(const nlohmann::json& run_detail) {
  const std::string log = run_detail["log"];
  return nlohmann::json::parse(read_text(log.substr(0, log.rfind('/')) + "/test_result.json"));
}

}  // namespace testlooper::cli::testing
