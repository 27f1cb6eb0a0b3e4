#include "runner/progress.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "artifacts/temp_dir.h"
#include "runner/fakes.h"

namespace testlooper::runner {
namespace {

// Collects what a ProgressDisplay writes.
class Captured {
 public:
  Captured() : file_(open_memstream(&buffer_, &size_)) {}
  ~Captured() {
    std::fclose(file_);
    std::free(buffer_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

RunResult result(Outcome outcome, const std::string& log = "") {
  RunResult r;
  r.outcome = outcome;
  r.message = outcome == Outcome::kSuccess ? "" : "stage 1: exit 2";
  r.start_timestamp = 0;
  r.end_timestamp = 0.25;
  r.log_path = log;
  return r;
}

TEST(ProgressDisplay, PlainModePrintsOneLinePerRun) {
  Captured out;
  testing::FakeClock clock;
  ProgressDisplay progress(out.file(), false, 2, clock);
  progress.started("t/linux");
  progress.finished("t/linux", 0, result(Outcome::kSuccess));
  progress.finished("t/linux", 1, result(Outcome::kFailure, "/x/log.txt"));
  progress.done();
  EXPECT_EQ(out.text(),
            "PASS t/linux #1 (0.25 s)\n"
            "FAIL t/linux #2 (0.25 s): stage 1: exit 2\n"
            "    log: /x/log.txt\n");
}

TEST(ProgressDisplay, LiveModeRedrawsOneLineAndShowsTheTailOfFailingLogs) {
  testlooper::testing::TempDir dir;
  testlooper::testing::write_file(dir / "log.txt", "line 1\nline 2\nboom\n");
  Captured out;
  testing::FakeClock clock;
  ProgressDisplay progress(out.file(), true, 4, clock);
  progress.started("t");
  clock.advance(10);
  progress.finished("t", 0, result(Outcome::kFailure, (dir / "log.txt").string()));
  const std::string text = out.text();
  EXPECT_NE(text.find("\r\x1b[K[0/4] 0 failed  1 running (t)  elapsed 0:00  eta -"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("FAIL t #1 (0.25 s): stage 1: exit 2\n    log: "), std::string::npos);
  EXPECT_NE(text.find("    | line 1\n    | line 2\n    | boom\n"), std::string::npos) << text;
  EXPECT_NE(text.find("[1/4] 1 failed  0 running  elapsed 0:10  eta 0:30"), std::string::npos)
      << text;
}

// Off a terminal (a CI log), a failing run's line is followed by its log's tail too.
TEST(ProgressDisplay, PlainModeShowsTheTailOfFailingLogsInline) {
  testlooper::testing::TempDir dir;
  testlooper::testing::write_file(dir / "log.txt", "line 1\nboom\n");
  Captured out;
  testing::FakeClock clock;
  ProgressDisplay progress(out.file(), false, 1, clock);
  progress.started("t");
  progress.finished("t", 0, result(Outcome::kFailure, (dir / "log.txt").string()));
  EXPECT_EQ(out.text(), "FAIL t #1 (0.25 s): stage 1: exit 2\n    log: " +
                            (dir / "log.txt").string() + "\n    | line 1\n    | boom\n");
}

// The live line names what runs, each object once with its count.
TEST(ProgressDisplay, LiveLineNamesTheRunningObjects) {
  Captured out;
  testing::FakeClock clock;
  ProgressDisplay progress(out.file(), true, 5, clock);
  progress.started("a/linux");
  progress.started("b/linux");
  progress.started("a/linux");
  clock.advance(1);
  progress.tick();
  EXPECT_NE(out.text().find("3 running (a/linux ×2, b/linux)"), std::string::npos) << out.text();
  progress.finished("a/linux", 0, result(Outcome::kSuccess));
  clock.advance(1);
  progress.tick();
  EXPECT_NE(out.text().find("2 running (a/linux, b/linux)"), std::string::npos) << out.text();
}

TEST(LogTail, ReturnsTheLastLines) {
  testlooper::testing::TempDir dir;
  testlooper::testing::write_file(dir / "log", "a\nb\nc\nd\n");
  EXPECT_EQ(log_tail((dir / "log").string(), 2), "c\nd");
  EXPECT_EQ(log_tail((dir / "log").string(), 10), "a\nb\nc\nd");
  EXPECT_EQ(log_tail((dir / "missing").string(), 2), "");
}

}  // namespace
}  // namespace testlooper::runner
