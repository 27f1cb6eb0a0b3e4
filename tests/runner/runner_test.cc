#include "runner/runner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "artifacts/temp_dir.h"
#include "runner/fakes.h"

namespace testlooper::runner {
namespace {

using definitions::Artifact;
using definitions::Dependency;
using definitions::ObjectKind;
using definitions::ResolvedObject;
using definitions::Stage;
using environments::Command;
using testing::exits;
using testing::FakeOutcome;
using testlooper::testing::read_file;
using testlooper::testing::TempDir;
using testlooper::testing::write_file;

Stage stage(const std::string& command, const std::string& cleanup = "", bool always_run = false) {
  Stage s;
  s.command = command;
  s.cleanup = cleanup;
  s.always_run = always_run;
  return s;
}

ResolvedObject object(ObjectKind kind, std::vector<Stage> stages) {
  ResolvedObject o;
  o.name = kind == ObjectKind::kBuild ? "build/linux" : "test/linux";
  o.full_name = "repo/abc/" + o.name;
  o.kind = kind;
  o.hash = kind == ObjectKind::kBuild ? "buildhash" : "testhash";
  o.environment.name = "linux";
  o.environment.image_kind = "host";
  o.stages = std::move(stages);
  o.timeout = 100;
  return o;
}

class RunnerTest : public ::testing::Test {
 protected:
  // Runs `o` once; `behaviour` plays every command.
  RunResult run(const ResolvedObject& o, testing::FakeBehaviour behaviour,
                Cancellation* cancellation = nullptr, int64_t max_log_bytes = kDefaultMaxLogBytes) {
    launcher_ = std::make_shared<testing::FakeLauncher>(std::move(behaviour), clock_);
    RunnerContext context{
        &store_, &exporter_,
        [this](const definitions::Environment&) -> Result<std::shared_ptr<environments::Launcher>> {
          if (!launcher_error_.empty()) return Error{"env", launcher_error_};
          return std::shared_ptr<environments::Launcher>(launcher_);
        },
        &clock_};
    Runner runner(context);
    RunRequest request{&o, "run" + std::to_string(next_id_++), 2, 4, cancellation};
    request.max_log_bytes = max_log_bytes;
    return runner.run(request, [this](const std::string& hash, const std::string& artifact) {
      published_.push_back(hash + "/" + artifact + "@" +
                           std::to_string(launcher_->commands.size()));
    });
  }

  std::vector<std::string> scripts() const {
    std::vector<std::string> out;
    for (const Command& c : launcher_->commands) out.push_back(c.script);
    return out;
  }

  TempDir dir_;
  artifacts::Store store_{dir_ / "store"};
  testing::FakeClock clock_;
  testing::FakeExporter exporter_;
  std::shared_ptr<testing::FakeLauncher> launcher_;
  std::string launcher_error_;
  std::vector<std::string> published_;
  int next_id_ = 0;
};

FakeOutcome ok(const Command&) { return exits(0); }

TEST_F(RunnerTest, RunsStagesInOrderWithTheRunVariables) {
  const ResolvedObject o = object(ObjectKind::kTest, {stage("first"), stage("second")});
  const RunResult result = run(o, ok);
  EXPECT_EQ(result.outcome, Outcome::kSuccess);
  EXPECT_EQ(scripts(), (std::vector<std::string>{"first", "second"}));
  const Command& c = launcher_->commands[0];
  EXPECT_EQ(c.working_dir, c.env.at("TEST_INPUTS"));
  EXPECT_EQ(c.env.at("TEST_CORES_AVAILABLE"), "2");
  EXPECT_EQ(c.env.at("TEST_RAM_GB_AVAILABLE"), "4");
  EXPECT_EQ(c.env.at("TEST_LOOPER_TEST_ID"), "run0");
  EXPECT_EQ(c.run_id, "run0");
  EXPECT_EQ(c.mounts.size(), 2u);
  EXPECT_DOUBLE_EQ(result.seconds(), 2);
  EXPECT_EQ(result.record_dir, store_.run_dir("run0"));
  EXPECT_TRUE(std::filesystem::is_empty(store_.work_root() / "0/inputs"));
}

// Issue 16: the log shows a multi-line command whole (its lines indented under the first), and a
// very long one up to 40 lines, then how many more.
TEST_F(RunnerTest, TheLogShowsMultiLineCommandsWhole) {
  std::string long_script;
  for (int i = 1; i <= 45; ++i) long_script += "echo " + std::to_string(i) + "\n";
  const ResolvedObject o =
      object(ObjectKind::kTest, {stage("make all\nmake check\n"), stage(long_script)});
  const RunResult result = run(o, ok);
  std::ifstream in(result.log_path);
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("[testlooper] stage 1: make all\n[testlooper]          make check\n"
                     "[testlooper] stage 1: exit 0"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("[testlooper] stage 2: echo 1\n"), std::string::npos) << log;
  EXPECT_NE(log.find("[testlooper]          echo 40\n[testlooper]          (+5 lines)\n"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("echo 41"), std::string::npos) << log;
}

// Issue 11: a command writing far more than the run's max_log_bytes fills the log up to the cap;
// the rest is counted, the last line says so, and the exit code still decides the run.
TEST_F(RunnerTest, OutputPastMaxLogBytesIsCountedNotKeptAndTheLogSaysWhereItWasCut) {
  constexpr size_t kWritten = 300'000;
  const ResolvedObject o = object(ObjectKind::kTest, {stage("chatty")});
  const RunResult result = run(
      o,
      [](const Command& c) {
        const std::string block(1000, 'x');
        for (size_t done = 0; done < kWritten; done += block.size()) {
          EXPECT_EQ(::write(c.log_fd, block.data(), block.size()), 1000);
        }
        return exits(3);
      },
      nullptr, 4096);
  EXPECT_EQ(result.outcome, Outcome::kFailure);
  EXPECT_EQ(result.exit_code, 3);
  std::ifstream in(result.log_path, std::ios::binary);
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command's output: the one run of 'x' (the runner's lines say "exit 3" too).
  const size_t first = log.find("xxx");
  ASSERT_NE(first, std::string::npos) << log;
  const size_t kept = log.find_first_not_of('x', first) - first;
  EXPECT_GT(kept, 0u);
  const std::string last = log_cut_line(4096, static_cast<int64_t>(kWritten - kept)) + "\n";
  ASSERT_GE(log.size(), last.size());
  EXPECT_EQ(log.substr(log.size() - last.size()), last) << log.substr(0, 400);
  EXPECT_EQ(last, "[testlooper: log cut at 4096 bytes; " + std::to_string(kWritten - kept) +
                      " bytes not kept]\n");
  EXPECT_LE(log.size(), 4096 + 200u);  // the runner's own last lines may follow the cut
}

TEST_F(RunnerTest, AfterAFailureOnlyCleanupAndAlwaysRunStagesRun) {
  const ResolvedObject o =
      object(ObjectKind::kTest, {stage("s1", "c1"), stage("s2", "c2"), stage("s3", "", true)});
  const RunResult result = run(o, [](const Command& c) { return exits(c.script == "s1" ? 3 : 0); });
  EXPECT_EQ(result.outcome, Outcome::kFailure);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.message, "stage 1: exit 3");
  EXPECT_EQ(scripts(), (std::vector<std::string>{"s1", "c1", "s3"}));
}

TEST_F(RunnerTest, AFailingCleanupFailsItsStage) {
  const ResolvedObject o = object(ObjectKind::kTest, {stage("s1", "c1"), stage("s2")});
  const RunResult result = run(o, [](const Command& c) { return exits(c.script == "c1" ? 1 : 0); });
  EXPECT_EQ(result.outcome, Outcome::kFailure);
  EXPECT_EQ(result.message, "stage 1 cleanup: exit 1");
  EXPECT_EQ(scripts(), (std::vector<std::string>{"s1", "c1"}));
}

TEST_F(RunnerTest, TimeoutFailsTheRunAndCleanupStillRuns) {
  ResolvedObject o =
      object(ObjectKind::kTest, {stage("slow", "cleanup"), stage("after", "", true)});
  o.timeout = 10;
  const RunResult result =
      run(o, [](const Command& c) { return exits(0, c.script == "slow" ? 50 : 1); });
  EXPECT_EQ(result.outcome, Outcome::kFailure);
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_EQ(result.message, "stage 1: timed out after 10 s");
  EXPECT_EQ(scripts(), (std::vector<std::string>{"slow", "cleanup", "after"}));
}

TEST_F(RunnerTest, ReplacesBracedRuntimeVariablesTextually) {
  const ResolvedObject o =
      object(ObjectKind::kTest, {stage("ls ${TEST_OUTPUT_DIR}/x $TEST_OUTPUT_DIR")});
  run(o, ok);
  const Command& c = launcher_->commands[0];
  EXPECT_EQ(c.script, "ls " + c.env.at("TEST_OUTPUT_DIR") + "/x $TEST_OUTPUT_DIR");
}

TEST_F(RunnerTest, PublishesBuildArtifactsAtTheEndOfTheirStage) {
  Stage first = stage("make first");
  first.artifacts = {Artifact{"first", "a", {}, {}, "Tar"}};
  Stage second = stage("make second");
  second.artifacts = {Artifact{"second", "b", {"*.so"}, {}, "Zip"}};
  const ResolvedObject o = object(ObjectKind::kBuild, {first, second});
  const RunResult result = run(o, [](const Command& c) {
    const std::filesystem::path out = c.env.at("TEST_BUILD_OUTPUT_DIR");
    write_file(out / (c.script == "make first" ? "a/one.txt" : "b/two.so"), c.script);
    write_file(out / "b/skipped.txt", "not included");
    return exits(0);
  });
  ASSERT_EQ(result.outcome, Outcome::kSuccess) << result.message;
  // "first" is in the store after one command, before the second stage starts.
  EXPECT_EQ(published_, (std::vector<std::string>{"buildhash/first@1", "buildhash/second@2"}));
  EXPECT_EQ(result.artifacts, (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE(store_.is_build_complete("buildhash"));
  const auto second_artifact = store_.find_build_artifact("buildhash", "second");
  ASSERT_TRUE(second_artifact.has_value());
  ASSERT_TRUE(artifacts::unpack(second_artifact->path, second_artifact->format, dir_ / "x").ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "x/two.so"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x/skipped.txt"));
}

TEST_F(RunnerTest, AFailedBuildPublishesNothingAfterTheFailureAndIsNotComplete) {
  Stage first = stage("ok");
  first.artifacts = {Artifact{"first", "", {}, {}, "Tar"}};
  Stage second = stage("bad");
  second.artifacts = {Artifact{"second", "", {}, {}, "Tar"}};
  const ResolvedObject o = object(ObjectKind::kBuild, {first, second});
  const RunResult result = run(o, [](const Command& c) { return exits(c.script == "bad"); });
  EXPECT_EQ(result.outcome, Outcome::kFailure);
  EXPECT_EQ(published_, (std::vector<std::string>{"buildhash/first@1"}));
  EXPECT_FALSE(store_.is_build_complete("buildhash"));
}

TEST_F(RunnerTest, ReadsIndividualTestsAfterEachStageIntoTheRecord) {
  const ResolvedObject o = object(ObjectKind::kTest, {stage("one"), stage("two")});
  const RunResult result = run(o, [](const Command& c) {
    const std::filesystem::path out = c.env.at("TEST_OUTPUT_DIR");
    write_file(out / "testSummary.json",
               c.script == "one" ? R"({"a": true})" : R"([{"testName": "b", "success": false}])");
    return exits(0);
  });
  // Every command exited 0, but case b failed: so did the run (issue 16).
  ASSERT_EQ(result.outcome, Outcome::kFailure);
  EXPECT_EQ(result.message, "1 of 2 test cases failed: b");
  EXPECT_EQ(result.exit_code, 0);
  ASSERT_EQ(result.tests.size(), 2u);
  EXPECT_EQ(result.tests[1].name, "b");
  const nlohmann::json record =
      nlohmann::json::parse(read_file(result.record_dir / "test_result.json"));
  EXPECT_EQ(record["success"], false);
  EXPECT_EQ(record["individualTests"].size(), 2u);
  EXPECT_EQ(record["individualTests"][0]["testName"], "a");
  EXPECT_DOUBLE_EQ(record["end_timestamp"].get<double>() - record["start_timestamp"].get<double>(),
                   2);
  EXPECT_NE(read_file(result.log_path).find("[testlooper] stage 2: two"), std::string::npos);
}

TEST_F(RunnerTest, ListsTestsThenRunsThem) {
  Stage s;
  s.list_tests_command = "list";
  s.run_tests_command = "run";
  const ResolvedObject o = object(ObjectKind::kTest, {s});
  std::string to_run;
  const RunResult result = run(o, [&](const Command& c) {
    if (c.script == "list") {
      write_file(c.env.at("TEST_LOOPER_TEST_LIST_OUTPUT"), "t1\nt2\n");
    } else {
      to_run = read_file(c.env.at("TEST_LOOPER_TESTS_TO_RUN"));
      write_file(std::filesystem::path(c.env.at("TEST_OUTPUT_DIR")) / "testSummary.json",
                 R"({"t1": true, "t2": true})");
    }
    return exits(0);
  });
  EXPECT_EQ(result.outcome, Outcome::kSuccess);
  EXPECT_EQ(to_run, "t1\nt2\n");
  EXPECT_EQ(result.tests.size(), 2u);
}

TEST_F(RunnerTest, StagesSourceAndBuildDependencies) {
  write_file(dir_ / "built/bin/tool", "tool");
  ASSERT_TRUE(
      store_.put_build_artifact("h1", "bin", dir_ / "built/bin", {}, artifacts::Format::kTar).ok());
  ASSERT_TRUE(
      store_.put_build_artifact("h2", "lib", dir_ / "built/bin", {}, artifacts::Format::kFiles)
          .ok());
  ASSERT_TRUE(
      store_
          .mark_build_complete(
              "h2",
              R"({"artifacts": [{"name": "lib", "directory": "out/lib", "format": "Files"}]})")
          .ok());
  ResolvedObject o = object(ObjectKind::kTest, {stage("check")});
  o.dependencies["src"] = Dependency{Dependency::Kind::kSource, "repo", "abc", "sub", "", "", ""};
  o.dependencies["tools"] =
      Dependency{Dependency::Kind::kBuild, "", "", "", "repo/abc/b1", "h1", "bin"};
  o.dependencies["whole"] =
      Dependency{Dependency::Kind::kBuild, "", "", "", "repo/abc/b2", "h2", ""};
  std::filesystem::path inputs;
  const RunResult result = run(o, [&](const Command& c) {
    inputs = c.env.at("TEST_INPUTS");
    EXPECT_EQ(read_file(inputs / "src/.git_commit"), "repo abc sub");
    EXPECT_EQ(read_file(inputs / "tools/tool"), "tool");
    EXPECT_EQ(read_file(inputs / "whole/out/lib/tool"), "tool");
    return exits(0);
  });
  EXPECT_EQ(result.outcome, Outcome::kSuccess) << result.message;
}

TEST_F(RunnerTest, MissingArtifactOrEnvironmentIsAnInfrastructureError) {
  ResolvedObject o = object(ObjectKind::kTest, {stage("never")});
  o.dependencies["x"] =
      Dependency{Dependency::Kind::kBuild, "", "", "", "repo/abc/b", "nohash", "a"};
  RunResult result = run(o, ok);
  EXPECT_EQ(result.outcome, Outcome::kInfraError);
  EXPECT_NE(result.message.find("not in the store"), std::string::npos);
  EXPECT_TRUE(launcher_->commands.empty());
  EXPECT_TRUE(std::filesystem::exists(result.record_dir / "test_result.json"));
  launcher_error_ = "AMI environments are not runnable locally";
  o.dependencies.clear();
  result = run(o, ok);
  EXPECT_EQ(result.outcome, Outcome::kInfraError);
  EXPECT_NE(read_file(result.log_path).find("INFRASTRUCTURE ERROR"), std::string::npos);
}

// Issue 17: a test with neither command nor stages (the original accepted it) needs no
// environment and starts no process; it succeeds, with a record like any run.
TEST_F(RunnerTest, ATestWithoutStagesRunsNothingAndSucceeds) {
  const ResolvedObject o = object(ObjectKind::kTest, {});
  launcher_error_ = "the environment must not be needed";
  const RunResult result = run(o, ok);
  EXPECT_EQ(result.outcome, Outcome::kSuccess) << result.message;
  EXPECT_TRUE(launcher_->commands.empty());
  EXPECT_TRUE(std::filesystem::exists(result.record_dir / "test_result.json"));
  EXPECT_NE(read_file(result.log_path).find("nothing to run"), std::string::npos);
}

TEST_F(RunnerTest, NotEnoughDiskIsAnInfrastructureError) {
  ResolvedObject o = object(ObjectKind::kTest, {stage("never")});
  o.min_disk_gb = 1 << 30;
  const RunResult result = run(o, ok);
  EXPECT_EQ(result.outcome, Outcome::kInfraError);
  EXPECT_NE(result.message.find("min_disk_gb"), std::string::npos) << result.message;
  EXPECT_TRUE(launcher_->commands.empty());
}

TEST_F(RunnerTest, BuildsLeaveNoIndividualResults) {
  const ResolvedObject o = object(ObjectKind::kBuild, {stage("b")});
  const RunResult result = run(o, [](const Command& c) {
    write_file(std::filesystem::path(c.env.at("TEST_BUILD_OUTPUT_DIR")) / "testSummary.json",
               R"({"a": true})");
    return exits(0);
  });
  EXPECT_EQ(result.outcome, Outcome::kSuccess);
  EXPECT_TRUE(result.tests.empty());
}

TEST_F(RunnerTest, KeepsTestArtifactsInTheRecord) {
  Stage s = stage("produce");
  s.artifacts = {Artifact{"", "", {}, {}, "Files"}};
  const ResolvedObject o = object(ObjectKind::kTest, {s});
  const RunResult result = run(o, [](const Command& c) {
    write_file(std::filesystem::path(c.env.at("TEST_OUTPUT_DIR")) / "report.txt", "r");
    return exits(0);
  });
  EXPECT_EQ(read_file(result.record_dir / "artifacts/output/report.txt"), "r");
  EXPECT_TRUE(published_.empty());
}

TEST_F(RunnerTest, ACancelledRunIsNeitherSuccessNorFailure) {
  Cancellation cancellation;
  cancellation.cancel();
  const RunResult result = run(object(ObjectKind::kTest, {stage("x")}), ok, &cancellation);
  EXPECT_EQ(result.outcome, Outcome::kCancelled);
  EXPECT_TRUE(launcher_->commands.empty());
}

}  // namespace
}  // namespace testlooper::runner
