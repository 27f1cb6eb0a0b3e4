// The worker's log pump (worker/log_pump.h): what a server receives of a run's log, whole and
// once, however the log grows and wherever it ends up.
#include "worker/log_pump.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "artifacts/temp_dir.h"

namespace testlooper::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

// What the server would have received.
class Received {
 public:
  LogPump::Send send() {
    return [this](const std::string& text) {
      const json m = json::parse(text);
      std::lock_guard<std::mutex> lock(mutex_);
      EXPECT_EQ(m.at("type"), "log");
      EXPECT_EQ(m.at("run_id"), "run-1");
      data_.push_back(m.at("data").get<std::string>());
    };
  }
  std::vector<std::string> messages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return data_;
  }
  std::string all() const {
    std::string text;
    for (const auto& d : messages()) text += d;
    return text;
  }
  // Until `n` messages arrived (the pump's thread sends them), at most a minute.
  bool wait_for(size_t n) const {
    for (int i = 0; i < 6000 && messages().size() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return messages().size() >= n;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> data_;
};

void append(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::app | std::ios::binary) << text;
}

TEST(LogPump, AShortRunsWholeLogGoesInOneMessageAtItsEnd) {
  TempDir dir;
  Received received;
  LogPump pump(received.send(), std::chrono::hours(1));
  {
    LogPump::Follower follower(pump, "run-1");
    follower.follow(dir / "log.txt");
    append(dir / "log.txt", "[testlooper] running\n");
    append(dir / "log.txt", "ok\n");
    follower.finish(dir / "log.txt");
  }
  EXPECT_EQ(received.messages(), std::vector<std::string>({"[testlooper] running\nok\n"}));
}

// For a result to carry (a server that reads a result's "log"): the rest of a log, when at most
// `keep` bytes, is returned unsent; a longer rest is sent as before, and nothing is returned.
TEST(LogPump, TheRestOfALogUpToKeepBytesIsReturnedUnsent) {
  TempDir dir;
  Received received;
  LogPump pump(received.send(), std::chrono::hours(1));
  {
    LogPump::Follower follower(pump, "run-1");
    follower.follow(dir / "a.txt");
    append(dir / "a.txt", "caf\xC3\xA9\n");
    EXPECT_EQ(follower.finish(dir / "a.txt", 8), "caf\xC3\xA9\n");
  }
  EXPECT_TRUE(received.messages().empty());
  {
    LogPump::Follower follower(pump, "run-1");
    follower.follow(dir / "b.txt");
    append(dir / "b.txt", "123456789\n");
    EXPECT_EQ(follower.finish(dir / "b.txt", 8), "");
  }
  EXPECT_EQ(received.messages(), std::vector<std::string>({"123456789\n"}));
  {
    LogPump::Follower follower(pump, "run-1");
    follower.follow(dir / "c.txt");
    EXPECT_EQ(follower.finish(dir / "c.txt", kResultLog), "");  // never written
  }
  EXPECT_EQ(received.messages().size(), 1u);
}

// What was sent while the log grew is not returned again: sent and returned make the log, once.
TEST(LogPump, TheRestReturnedStartsWhereWhatWasSentEnds) {
  TempDir dir;
  Received received;
  LogPump pump(received.send(), std::chrono::milliseconds(5));
  LogPump::Follower follower(pump, "run-1");
  follower.follow(dir / "log.txt");
  append(dir / "log.txt", "first\n");
  ASSERT_TRUE(received.wait_for(1));
  append(dir / "log.txt", "second\n");
  const std::string rest = follower.finish(dir / "log.txt", kResultLog);
  EXPECT_EQ(received.all() + rest, "first\nsecond\n");
}

TEST(LogPump, AGrowingLogIsSentWhileItGrowsThenItsRestFromWhereItNowLives) {
  TempDir dir;
  Received received;
  LogPump pump(received.send(), std::chrono::milliseconds(5));
  LogPump::Follower follower(pump, "run-1");
  fs::create_directories(dir / "tmp");
  follower.follow(dir / "tmp" / "log.txt");
  append(dir / "tmp" / "log.txt", "first\n");
  ASSERT_TRUE(received.wait_for(1));
  EXPECT_EQ(received.messages()[0], "first\n");
  append(dir / "tmp" / "log.txt", "second\n");
  ASSERT_TRUE(received.wait_for(2));
  // The run's record moved into place; the log goes on from there.
  fs::rename(dir / "tmp", dir / "record");
  append(dir / "record" / "log.txt", "last\n");
  follower.finish(dir / "record" / "log.txt");
  EXPECT_EQ(received.all(), "first\nsecond\nlast\n");
}

TEST(LogPump, ACharacterWrittenInTwoPartsIsNeverSplitBetweenMessages) {
  TempDir dir;
  Received received;
  LogPump pump(received.send(), std::chrono::milliseconds(5));
  LogPump::Follower follower(pump, "run-1");
  follower.follow(dir / "log.txt");
  append(dir / "log.txt", "caf\xC3");  // é's first byte
  ASSERT_TRUE(received.wait_for(1));
  EXPECT_EQ(received.messages()[0], "caf");
  append(dir / "log.txt", "\xA9\n");
  follower.finish(dir / "log.txt");
  EXPECT_EQ(received.all(), "caf\xC3\xA9\n");
}

TEST(LogPump, ALargeLogGoesInChunksOfAtMostKLogChunkAndWhole) {
  TempDir dir;
  Received received;
  LogPump pump(received.send(), std::chrono::hours(1));
  std::string text;
  for (size_t i = 0; text.size() < 2 * kLogChunk + kLogChunk / 2; ++i) {
    text += "line " + std::to_string(i) + " \xE2\x82\xAC\n";  // a 3-byte character on each
  }
  append(dir / "log.txt", text);
  LogPump::Follower follower(pump, "run-1");
  follower.follow(dir / "log.txt");
  follower.finish(dir / "log.txt");
  const auto messages = received.messages();
  ASSERT_EQ(messages.size(), 3u);
  for (const auto& m : messages) EXPECT_LE(m.size(), kLogChunk);
  EXPECT_EQ(received.all(), text);
}

TEST(LogPump, ARunWhoseLogNeverOpenedSendsNothing) {
  TempDir dir;
  Received received;
  LogPump pump(received.send(), std::chrono::milliseconds(5));
  {
    LogPump::Follower follower(pump, "run-1");
    follower.finish(dir / "no-such-log.txt");
  }
  { LogPump::Follower unfinished(pump, "run-1"); }
  EXPECT_TRUE(received.messages().empty());
}

}  // namespace
}  // namespace testlooper::worker
