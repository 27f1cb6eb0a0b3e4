// The worker's checks of what the server sends (worker/jobs.h): a message it reads only when
// every field it uses has the type it reads it as, so that nothing a server (or whoever speaks
// as one) sends throws in the worker.
#include "worker/jobs.h"

#include <gtest/gtest.h>

namespace testlooper::worker {
namespace {

using nlohmann::json;

TEST(Jobs, AServerMessageHasATypeAndARunIdOfItsGrammar) {
  EXPECT_TRUE(is_server_message(json{{"type", "ack"}, {"run_id", "0123456789abcdef"}}));
  EXPECT_FALSE(is_server_message(json::array({1, 2})));
  EXPECT_FALSE(is_server_message(json{{"type", 5}, {"run_id", "0123456789abcdef"}}));
  EXPECT_FALSE(is_server_message(json{{"type", "job"}}));
  EXPECT_FALSE(is_server_message(json{{"type", "job"}, {"run_id", "../../etc"}}));
  EXPECT_FALSE(is_server_message(json{{"type", "job"}, {"run_id", 7}}));
}

TEST(Jobs, AJobsFieldsHaveTheTypesTheWorkerReadsThemAs) {
  const json job = {{"type", "job"},       {"run_id", "0123456789abcdef"}, {"cores", 2},
                    {"ram_gb", 0},         {"max_log_bytes", 1 << 20},     {"log_in_result", true},
                    {"upload_token", "t"}, {"object", json::object()}};
  EXPECT_TRUE(is_job(job));
  EXPECT_TRUE(is_job(json{{"type", "job"}, {"run_id", "0123456789abcdef"}}));  // all optional
  const std::vector<std::pair<std::string, json>> wrong = {
      {"cores", "2"},       {"cores", 1.5},           {"ram_gb", json::array()},
      {"max_log_bytes", 0}, {"max_log_bytes", -1},    {"max_log_bytes", int64_t{1} << 51},
      {"log_in_result", 1}, {"log_in_result", "yes"}, {"upload_token", 5},
      {"repos_dir", false}, {"artifacts_dir", 1},     {"object", "{}"},
      {"s3", "bucket"}};
  for (const auto& [key, value] : wrong) {
    json bad = job;
    bad[key] = value;
    EXPECT_FALSE(is_job(bad)) << bad.dump();
  }
}

// What the worker uses of a job or deployment: defaults for what is left out, numbers held to
// their ranges, the shared disk only when both directories are named.
TEST(Jobs, AJobIsReadWithDefaultsAndNumbersInTheirRanges) {
  const Job empty = read_job(json{{"type", "job"}, {"run_id", "0123456789abcdef"}});
  EXPECT_EQ(empty.run_id, "0123456789abcdef");
  EXPECT_EQ(empty.cores, 1);
  EXPECT_EQ(empty.ram_gb, 0);
  EXPECT_EQ(empty.max_log_bytes, kDefaultMaxLogBytes);
  EXPECT_FALSE(empty.log_in_result);
  EXPECT_FALSE(empty.repos_dir || empty.artifacts_dir || empty.s3);
  EXPECT_EQ(empty.object, json::object());
  EXPECT_EQ(empty.max_seconds, 86400);
  EXPECT_FALSE(empty.debug);

  const json big = {{"type", "deploy"},          {"run_id", "0123456789abcdef"},
                    {"cores", int64_t{1} << 40}, {"ram_gb", -5},
                    {"max_seconds", 1e300},      {"debug", true},
                    {"repos_dir", "/r"},         {"artifacts_dir", "/a"},
                    {"log_in_result", true},     {"s3", {{"bucket", "b"}}}};
  ASSERT_TRUE(is_job(big));
  const Job j = read_job(big);
  EXPECT_EQ(j.cores, 1 << 16);
  EXPECT_EQ(j.ram_gb, 0);
  EXPECT_EQ(j.max_seconds, 1e7);
  EXPECT_TRUE(j.debug);
  EXPECT_TRUE(j.log_in_result);
  EXPECT_EQ(j.repos_dir.value_or(""), "/r");
  EXPECT_EQ(j.artifacts_dir.value_or(""), "/a");
  ASSERT_TRUE(j.s3.has_value());
  EXPECT_EQ(s3_options(*j.s3)->bucket, "b");
  EXPECT_EQ(read_job(json{{"run_id", "0123456789abcdef"}, {"max_seconds", "long"}}).max_seconds,
            86400);
  EXPECT_EQ(read_job(json{{"run_id", "0123456789abcdef"}, {"max_seconds", 0}}).max_seconds, 1);
}

// Acks ride in a job; only run ids are taken (each names a line of the worker's journal).
TEST(Jobs, AJobsAcksAreTheRunIdsInIt) {
  EXPECT_EQ(job_acks(json{{"acks", {"0123456789abcdef", "../x", 5, "fedcba9876543210"}}}),
            (std::vector<std::string>{"0123456789abcdef", "fedcba9876543210"}));
  EXPECT_TRUE(job_acks(json{{"acks", "0123456789abcdef"}}).empty());
  EXPECT_TRUE(job_acks(json::object()).empty());
}

TEST(Jobs, AJobsS3NamesABucketAndNothingElseOfTheWrongType) {
  auto ok = s3_options(json{{"bucket", "b"}, {"region", "eu-west-1"}, {"key_prefix", "p/"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->bucket, "b");
  EXPECT_TRUE(ok->enabled);
  EXPECT_FALSE(s3_options(json::object()).ok());
  EXPECT_FALSE(s3_options(json{{"bucket", ""}}).ok());
  EXPECT_FALSE(s3_options(json{{"bucket", 5}}).ok());
  EXPECT_FALSE(s3_options(json{{"bucket", std::string(256, 'b')}}).ok());
  EXPECT_FALSE(s3_options(json{{"bucket", "b"}, {"endpoint_url", json::array()}}).ok());
}

}  // namespace
}  // namespace testlooper::worker
