// The S3 client against moto_server, read back with boto3.
#include "fleet/s3.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <ctime>
#include <fstream>
#include <random>
#include <thread>

#include "artifacts/temp_dir.h"
#include "fleet/aws_fixture.h"
#include "server/server_fixture.h"  // fixtures::eventually

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

// Writes `mib` MiB of one random 1 MiB block repeated, then `tail` more bytes, to `path`.
void write_big_file(const std::string& path, int mib, size_t tail) {
  std::mt19937_64 random(42);
  std::string block(1 << 20, '\0');
  for (char& c : block) c = static_cast<char>(random());
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < mib; ++i) out.write(block.data(), static_cast<std::streamsize>(block.size()));
  out.write(block.data(), static_cast<std::streamsize>(tail));
}

std::string sha256_of(const std::string& path) {
  return shell("sha256sum '" + path + "' | cut -d' ' -f1");
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
constexpr bool kSanitized = __has_feature(address_sanitizer) || __has_feature(thread_sanitizer);
#else
constexpr bool kSanitized = false;
#endif

// The peak resident memory of this process in MiB.
long peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
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

TEST(S3Client, AListingThatDoesNotEndIsAnError) {
  S3Client s3 = client();
  fixtures::shared_proxy().set_faults("endless_list=1");
  auto listed = s3.list_objects("tl-endless", "");
  fixtures::shared_proxy().set_faults("");
  ASSERT_FALSE(listed.ok());
  EXPECT_NE(listed.error().message.find("does not end"), std::string::npos)
      << listed.error().message;
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

TEST(S3Client, LargeFileGoesMultipartAndRoundTripsStreamed) {
  TempDir dir;
  const std::string path = (dir / "build.tar").string(), back = (dir / "back/build.tar").string();
  write_big_file(path, 200, 12345);  // 200 MiB + 12345 bytes: 13 parts of 16 MiB
  S3Client s3 = client();
  ASSERT_TRUE(s3.create_bucket("tl-big").ok());
  Status put = s3.put_file("tl-big", "builds/big build.tar", path);
  ASSERT_TRUE(put.ok()) << put.error().to_string();
  // The ETag of a multipart object ends with -<number of parts>.
  EXPECT_EQ(shared_moto().boto3("h = s3.head_object(Bucket='tl-big', Key='builds/big build.tar')"
                                "\nprint(h['ContentLength'], h['ETag'].strip('\"').split('-')[1])"),
            std::to_string((200 << 20) + 12345) + " 13\n");

  auto size = s3.head_object("tl-big", "builds/big build.tar");
  ASSERT_TRUE(size.ok()) << size.error().to_string();
  EXPECT_EQ(size->value_or(0), (200u << 20) + 12345);

  std::filesystem::create_directories(dir / "back");
  ASSERT_TRUE(s3.get_file("tl-big", "builds/big build.tar", back).ok());
  EXPECT_EQ(sha256_of(back), sha256_of(path));
  EXPECT_FALSE(std::filesystem::exists(back + ".part"));
  // Neither way was the file held in memory whole (a sanitizer's own memory would blur this).
  if (!kSanitized) {
    EXPECT_LT(peak_rss_mib(), 150);
  }

  // A small file is one PUT.
  write_big_file(path, 1, 7);
  ASSERT_TRUE(s3.put_file("tl-big", "builds/small", path).ok());
  EXPECT_EQ(shared_moto().boto3("print('-' in s3.head_object(Bucket='tl-big', "
                                "Key='builds/small')['ETag'])"),
            "False\n");
  ASSERT_TRUE(s3.get_file("tl-big", "builds/small", back).ok());
  EXPECT_EQ(sha256_of(back), sha256_of(path));
}

TEST(S3Client, FailedMultipartLeavesNoPartsBehind) {
  TempDir dir;
  const std::string path = (dir / "build.tar").string();
  write_big_file(path, 40, 1);  // 3 parts
  S3Client s3 = client();
  ASSERT_TRUE(s3.create_bucket("tl-failing").ok());
  fixtures::shared_proxy().set_faults("fail_part=2");
  Status put = s3.put_file("tl-failing", "builds/b.tar", path);
  fixtures::shared_proxy().set_faults("");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().where, "S3 UploadPart 2 tl-failing/builds/b.tar");
  EXPECT_NE(put.error().message.find("HTTP 500 InternalError"), std::string::npos);
  EXPECT_EQ(shared_moto().boto3("print(len(s3.list_multipart_uploads(Bucket='tl-failing')"
                                ".get('Uploads', [])), s3.list_objects_v2(Bucket='tl-failing')"
                                "['KeyCount'])"),
            "0 0\n");

  Status no_bucket = s3.put_file("tl-no-such-bucket", "builds/b.tar", path);
  ASSERT_FALSE(no_bucket.ok());
  EXPECT_NE(no_bucket.error().message.find("NoSuchBucket"), std::string::npos);
  Status no_file = s3.put_file("tl-failing", "builds/b.tar", (dir / "none").string());
  ASSERT_FALSE(no_file.ok());
}

TEST(S3Client, FailedDownloadLeavesNoFile) {
  TempDir dir;
  S3Client s3 = client();
  ASSERT_TRUE(s3.create_bucket("tl-down").ok());
  ASSERT_TRUE(s3.put_object("tl-down", "empty", "").ok());
  ASSERT_TRUE(s3.get_file("tl-down", "empty", (dir / "empty").string()).ok());
  EXPECT_EQ(std::filesystem::file_size(dir / "empty"), 0u);
  std::filesystem::remove(dir / "empty");
  const std::string path = (dir / "x").string();
  Status missing = s3.get_file("tl-down", "none", path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("NoSuchKey"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(S3Client, AStopFlagEndsACall) {
  TempDir dir;
  S3Client s3 = client();
  ASSERT_TRUE(s3.create_bucket("tl-stop").ok());
  ASSERT_TRUE(s3.put_object("tl-stop", "held/log", "x").ok());
  std::atomic<bool> stop{false};
  s3.set_stop(&stop);
  fixtures::shared_proxy().set_faults("hang=held");  // the proxy never answers
  Status got;
  std::thread call([&] { got = s3.get_file("tl-stop", "held/log", (dir / "log").string()); });
  const bool held = fixtures::eventually([] { return fixtures::shared_proxy().hanging() == 1; });
  stop = true;
  call.join();
  fixtures::shared_proxy().set_faults("");
  ASSERT_TRUE(held);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message, "stopped");
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
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
