// The worker's journal of results its server has not acknowledged (worker/pending_results.h):
// what a worker started again gives in its hello, and that the journal does not grow forever.
#include "worker/pending_results.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "artifacts/temp_dir.h"

namespace testlooper::worker {
namespace {

using nlohmann::json;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

std::string result(const std::string& run_id, const std::string& outcome = "success") {
  return json{{"type", "result"}, {"run_id", run_id}, {"outcome", outcome}, {"log", "a\nb"}}.dump();
}

std::vector<std::string> run_ids(const std::vector<std::string>& results) {
  std::vector<std::string> ids;
  for (const auto& r : results) ids.push_back(json::parse(r).at("run_id").get<std::string>());
  return ids;
}

TEST(PendingResults, WhatWasNotAcknowledgedSurvivesARestartInOrder) {
  TempDir dir;
  const std::string path = (dir / "pending.jsonl").string();
  {
    PendingResults pending(path, "");
    pending.add("r1", result("r1"));
    pending.add("r2", result("r2"));
    pending.add("r3", result("r3", "failure"));
    pending.acknowledge("r2");
    pending.acknowledge("never-sent");
    EXPECT_EQ(run_ids(pending.all()), (std::vector<std::string>{"r1", "r3"}));
  }
  PendingResults again(path, "");
  const auto all = again.all();
  ASSERT_EQ(run_ids(all), (std::vector<std::string>{"r1", "r3"}));
  EXPECT_EQ(all[1], result("r3", "failure"));  // whole, newlines in strings kept escaped
  again.acknowledge("r1");
  again.acknowledge("r3");
  EXPECT_TRUE(again.all().empty());
  EXPECT_TRUE(PendingResults(path, "").all().empty());
}

TEST(PendingResults, ALineCutShortByACrashIsSkipped) {
  TempDir dir;
  const std::string path = (dir / "pending.jsonl").string();
  write_file(path, result("r1") + "\n" + json{{"ack", "r0"}}.dump() + "\n" +
                       result("r2").substr(0, 20));
  PendingResults pending(path, "");
  EXPECT_EQ(run_ids(pending.all()), (std::vector<std::string>{"r1"}));
  pending.add("r4", result("r4"));
  // The cut line is gone from the journal: what follows it is read whole.
  EXPECT_EQ(run_ids(PendingResults(path, "").all()), (std::vector<std::string>{"r1", "r4"}));
}

TEST(PendingResults, AnOlderWorkersFilePerResultIsFoldedIn) {
  TempDir dir;
  write_file(dir / "pending" / "r7.json", result("r7"));
  write_file(dir / "pending" / "r8.json.tmp-1-2", "{\"run_id\": \"half");
  PendingResults pending((dir / "pending.jsonl").string(), (dir / "pending").string());
  EXPECT_EQ(run_ids(pending.all()), (std::vector<std::string>{"r7"}));
  EXPECT_FALSE(std::filesystem::exists(dir / "pending"));
  EXPECT_EQ(run_ids(PendingResults((dir / "pending.jsonl").string(), "").all()),
            (std::vector<std::string>{"r7"}));
}

TEST(PendingResults, TheJournalIsEmptiedInPlaceOnceNothingIsPending) {
  TempDir dir;
  const std::string path = (dir / "pending.jsonl").string();
  PendingResults pending(path, "");
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  const std::string big(4096, 'x');
  int64_t written = 0;
  for (int i = 0; written < PendingResults::kTruncateBytes + 8192; ++i) {
    const std::string id = "r" + std::to_string(i);
    const std::string r = json{{"run_id", id}, {"outcome", "success"}, {"pad", big}}.dump();
    pending.add(id, r);
    pending.acknowledge(id);
    written += std::ssize(r);
  }
  EXPECT_LT(std::filesystem::file_size(path), static_cast<uintmax_t>(PendingResults::kTruncateBytes));
  struct stat after {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // the same file: no inode made per run
  EXPECT_TRUE(pending.all().empty());
}

TEST(PendingResults, AJournalPastItsBoundWithResultsPendingIsRewrittenWithThemOnly) {
  TempDir dir;
  const std::string path = (dir / "pending.jsonl").string();
  PendingResults pending(path, "");
  pending.add("kept", result("kept"));  // never acknowledged: the journal is never empty
  const std::string big(64 * 1024, 'x');
  for (int64_t i = 0, written = 0; written < PendingResults::kRewriteBytes + (1 << 20); ++i) {
    const std::string id = "r" + std::to_string(i);
    const std::string r = json{{"run_id", id}, {"pad", big}}.dump();
    pending.add(id, r);
    pending.acknowledge(id);
    written += std::ssize(r);
  }
  EXPECT_LT(std::filesystem::file_size(path), static_cast<uintmax_t>(PendingResults::kRewriteBytes));
  EXPECT_EQ(run_ids(PendingResults(path, "").all()), (std::vector<std::string>{"kept"}));
}

}  // namespace
}  // namespace testlooper::worker
