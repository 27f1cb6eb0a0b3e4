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
