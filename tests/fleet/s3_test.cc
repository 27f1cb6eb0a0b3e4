// The S3 client against moto_server, read back with boto3.
#include "fleet/s3.h"

#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include "artifacts/temp_dir.h"
#include "fleet/aws_fixture.h"

namespace testlooper::fleet {
namespace {

using fixtures::moto_credentials;
using fixtures::moto_endpoint;
using fixtures::shared_moto;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

S3Client client() { return S3Client(moto_endpoint("s3"), moto_credentials()); }

// The output of `command` run by the shell.
std::string shell(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(S3Client, PutsGetsHeadsListsAndDeletes) {
  S3Client s3 = client();
  ASSERT_TRUE(s3.create_bucket("tl-objects").ok());
  ASSERT_TRUE(s3.create_bucket("tl-objects").ok()) << "an existing bucket of ours is fine";
  const std::string odd_key = "runs/a b+c/é=1&x?.json";
  const std::string body = std::string("binary\0bytes", 12) + std::string(3000, 'z');
  ASSERT_TRUE(s3.put_object("tl-objects", odd_key, body, "application/json").ok());
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(s3.put_object("tl-objects", "builds/b" + std::to_string(i), "x").ok());
  ASSERT_TRUE(s3.put_object("tl-objects", "builds/empty", "").ok());

  // boto3, a real AWS client, reads what we wrote.
  EXPECT_EQ(shared_moto().boto3("o = s3.get_object(Bucket='tl-objects', Key='" + odd_key +
                                "')\nprint(len(o['Body'].read()), o['ContentType'])"),
            "3012 application/json\n");

  auto got = s3.get_object("tl-objects", odd_key);
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(*got, body);
  auto too_long = s3.get_object("tl-objects", odd_key, 100);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("more than 100 bytes"), std::string::npos);
  auto missing = s3.get_object("tl-objects", "builds/none");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("NoSuchKey"), std::string::npos);

  auto size = s3.head_object("tl-objects", odd_key);
  ASSERT_TRUE(size.ok()) << size.error().to_string();
  EXPECT_EQ(size->value_or(0), 3012u);
  auto empty = s3.head_object("tl-objects", "builds/empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->value_or(1), 0u);
  auto absent = s3.head_object("tl-objects", "builds/none");
  ASSERT_TRUE(absent.ok()) << absent.error().to_string();
  EXPECT_FALSE(absent->has_value());

  s3.set_list_page_size(2);  // 6 keys under builds/: 3 pages through continuation tokens
  auto listed = s3.list_objects("tl-objects", "builds/");
  ASSERT_TRUE(listed.ok()) << listed.error().to_string();
  std::vector<std::string> keys;
  for (const S3Object& o : *listed) keys.push_back(o.key + ":" + std::to_string(o.size));
  EXPECT_EQ(keys, (std::vector<std::string>{"builds/b0:1", "builds/b1:1", "builds/b2:1",
                                            "builds/b3:1", "builds/b4:1", "builds/empty:0"}));
  auto runs = s3.list_objects("tl-objects", "runs/");
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->front().key, odd_key);

  ASSERT_TRUE(s3.delete_object("tl-objects", odd_key).ok());
  EXPECT_FALSE(s3.head_object("tl-objects", odd_key)->has_value());
  EXPECT_EQ(shared_moto().boto3("print(s3.list_objects_v2(Bucket='tl-objects', "
                                "Prefix='runs/')['KeyCount'])"),
            "0\n");
}

TEST(S3Client, CreatesABucketInAnotherRegion) {
  S3Client s3(
      Endpoint{.service = "s3", .region = "eu-west-1", .url = fixtures::shared_proxy().url()},
      moto_credentials());
  ASSERT_TRUE(s3.create_bucket("tl-in-eu").ok());
  ASSERT_TRUE(s3.create_bucket("tl-in-eu").ok());
  EXPECT_EQ(shared_moto().boto3("print(s3.get_bucket_location(Bucket='tl-in-eu')"
                                "['LocationConstraint'])"),
            "eu-west-1\n");
}

TEST(S3Client, ErrorsNameCodeAndMessage) {
  S3Client s3 = client();
  Status put = s3.put_object("tl-no-such-bucket", "k", "x");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().where, "S3 PutObject tl-no-such-bucket/k");
  EXPECT_NE(put.error().message.find("HTTP 404 NoSuchBucket: "), std::string::npos)
      << put.error().message;
  auto listed = s3.list_objects("tl-no-such-bucket", "");
  ASSERT_FALSE(listed.ok());
  EXPECT_NE(listed.error().message.find("NoSuchBucket"), std::string::npos);
}

TEST(S3Client, PresignedUrlIsFetchedWithoutCredentials) {
  S3Client s3 = client();
  ASSERT_TRUE(s3.create_bucket("tl-presign").ok());
  ASSERT_TRUE(s3.put_object("tl-presign", "logs/run 1.txt", "the log\n").ok());
  const std::string url = s3.presign_get("tl-presign", "logs/run 1.txt", 600);
  EXPECT_NE(url.find("X-Amz-Expires=600&"), std::string::npos) << url;
  // Plain curl: no AWS credentials in its environment, no signing of its own.
  EXPECT_EQ(shell("env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN "
                  "curl -sS --fail '" +
                  url + "'"),
            "the log\n");
  // The proxy checks presigned signatures as S3 does: a changed key or an expired URL is refused.
  std::string changed = url;
  changed.replace(changed.find("run%201"), 7, "run%202");
  EXPECT_EQ(shell("curl -s -o /dev/null -w '%{http_code}' '" + changed + "'"), "403");
  const std::string expired =
      presign_url(moto_endpoint("s3"), moto_credentials(), "GET", "/tl-presign/logs/run%201.txt",
                  "", 60, static_cast<int64_t>(std::time(nullptr)) - 3600);
  EXPECT_EQ(shell("curl -s -o /dev/null -w '%{http_code}' '" + expired + "'"), "403");
}

// The proxy in front of moto refuses what AWS would refuse, so the tests above prove our
// signatures are right (moto itself checks none).
TEST(S3Client, AWrongSignatureIsRefused) {
  S3Client wrong(moto_endpoint("s3"), Credentials{"testing", "not-the-secret", "testing"});
  Status put = wrong.put_object("tl-objects", "k", "x");
  ASSERT_FALSE(put.ok());
  EXPECT_NE(put.error().message.find("HTTP 403 SignatureDoesNotMatch"), std::string::npos)
      << put.error().message;
  EXPECT_NE(fixtures::shared_proxy().refused().find("signature mismatch"), std::string::npos);
}

}  // namespace
}  // namespace testlooper::fleet
