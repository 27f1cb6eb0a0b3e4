// Fakes for the runner's seams: a clock that only moves when told, and a launcher whose
// "commands" are C++ functions that may touch the run's files and take fake time.
#pragma once

#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "runner/runner.h"

namespace testlooper::runner::testing {

class FakeClock : public Clock {
 public:
  double now_seconds() override { return 1'700'000'000.0 + elapsed_; }
  std::chrono::steady_clock::time_point steady_now() override {
    return std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(elapsed_)));
  }
  void advance(double seconds) { elapsed_ += seconds; }

 private:
  double elapsed_ = 0;
};

// What a fake command does: its effect on files, its exit, and how long it "takes".
struct FakeOutcome {
  environments::Exit exit;
  double seconds = 1;
};
using FakeBehaviour = std::function<FakeOutcome(const environments::Command&)>;

class FakeProcess : public environments::Process {
 public:
  FakeProcess(FakeOutcome outcome, FakeClock& clock) : outcome_(outcome), clock_(clock) {}
  Result<environments::Exit> wait_until(std::chrono::steady_clock::time_point deadline) override {
    const auto end = clock_.steady_now() + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::duration<double>(outcome_.seconds));
    if (end > deadline) {
      clock_.advance(std::chrono::duration<double>(deadline - clock_.steady_now()).count());
      return environments::Exit{environments::Exit::Kind::kTimedOut, -1};
    }
    clock_.advance(outcome_.seconds);
    return outcome_.exit;
  }
  void kill() override {}

 private:
  FakeOutcome outcome_;
  FakeClock& clock_;
};

class FakeLauncher : public environments::Launcher {
 public:
  FakeLauncher(FakeBehaviour behaviour, FakeClock& clock)
      : behaviour_(std::move(behaviour)), clock_(clock) {}

  Result<std::unique_ptr<environments::Process>> start(
      const environments::Command& command) override {
    {
      std::lock_guard lock(mutex_);
      commands.push_back(command);
    }
    return std::unique_ptr<environments::Process>(
        std::make_unique<FakeProcess>(behaviour_(command), clock_));
  }
  std::string describe() const override { return "fake"; }

  std::vector<environments::Command> commands;  // every command started, in order

 private:
  std::mutex mutex_;
  FakeBehaviour behaviour_;
  FakeClock& clock_;
};

// A SourceExporter writing one file per export: dest/.git_commit = "repo commit path".
class FakeExporter : public SourceExporter {
 public:
  Status export_tree(const std::string& repo, const std::string& commit, const std::string& path,
                     const std::filesystem::path& dest) override {
    std::filesystem::create_directories(dest);
    std::ofstream(dest / ".git_commit") << repo << " " << commit << " " << path;
    return {};
  }
};

inline FakeOutcome exits(int code, double seconds = 1) {
  return {{environments::Exit::Kind::kExited, code}, seconds};
}

}  // namespace testlooper::runner::testing
