// AWS calls: credentials, signing, errors, and the XML parsers on canned answers (no network).
#include "fleet/aws.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>

#include "artifacts/temp_dir.h"
#include "fleet/aws_fixture.h"
#include "fleet/ec2.h"
#include "fleet/s3.h"

namespace testlooper::fleet {
namespace {

using fixtures::ScopedEnv;
using testing::TempDir;
using testing::write_file;

TEST(Credentials, FromTheEnvironment) {
  ScopedEnv id("AWS_ACCESS_KEY_ID", "AKIDENV"), secret("AWS_SECRET_ACCESS_KEY", "secret/env+");
  ScopedEnv token("AWS_SESSION_TOKEN", "tok"), file("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
  auto credentials = load_credentials();
  ASSERT_TRUE(credentials.ok()) << credentials.error().to_string();
  EXPECT_EQ(credentials->access_key_id, "AKIDENV");
  EXPECT_EQ(credentials->secret_access_key, "secret/env+");
  EXPECT_EQ(credentials->session_token, "tok");

  ScopedEnv no_secret("AWS_SECRET_ACCESS_KEY", std::nullopt);
  auto half = load_credentials();
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().message.find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
}

TEST(Credentials, FromAFileWithAProfile) {
  TempDir dir;
  write_file(dir / "credentials",
             "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\n"
             "aws_secret_access_key = s1\n\n[ci]\n; another comment\n"
             "aws_access_key_id=AKIDCI\naws_secret_access_key = s2/x=\naws_session_token = t2\n");
  ScopedEnv id("AWS_ACCESS_KEY_ID", std::nullopt), secret("AWS_SECRET_ACCESS_KEY", std::nullopt);
  ScopedEnv token("AWS_SESSION_TOKEN", std::nullopt);
  ScopedEnv file("AWS_SHARED_CREDENTIALS_FILE", (dir / "credentials").string());
  {
    ScopedEnv profile("AWS_PROFILE", std::nullopt);
    auto credentials = load_credentials();
    ASSERT_TRUE(credentials.ok()) << credentials.error().to_string();
    EXPECT_EQ(credentials->access_key_id, "AKIDDEFAULT");
    EXPECT_EQ(credentials->secret_access_key, "s1");
    EXPECT_EQ(credentials->session_token, "");
  }
  ScopedEnv profile("AWS_PROFILE", "ci");
  auto credentials = load_credentials();
  ASSERT_TRUE(credentials.ok()) << credentials.error().to_string();
  EXPECT_EQ(credentials->access_key_id, "AKIDCI");
  EXPECT_EQ(credentials->secret_access_key, "s2/x=");
  EXPECT_EQ(credentials->session_token, "t2");

  // ~/.aws/credentials when no file is named.
  ScopedEnv no_file("AWS_SHARED_CREDENTIALS_FILE", std::nullopt);
  ScopedEnv home("HOME", dir.path().string());
  write_file(dir / ".aws/credentials",
             "[ci]\naws_access_key_id=AKIDHOME\naws_secret_access_key=s\n");
  auto from_home = load_credentials();
  ASSERT_TRUE(from_home.ok()) << from_home.error().to_string();
  EXPECT_EQ(from_home->access_key_id, "AKIDHOME");
}

TEST(Credentials, ErrorsNameTheFileAndLine) {
  TempDir dir;
  ScopedEnv id("AWS_ACCESS_KEY_ID", std::nullopt), secret("AWS_SECRET_ACCESS_KEY", std::nullopt);
  const std::string path = (dir / "credentials").string();
  ScopedEnv file("AWS_SHARED_CREDENTIALS_FILE", path);
  ScopedEnv profile("AWS_PROFILE", "ci");

  write_file(path, "[ci]\naws_access_key_id = A\nthis line is wrong\n");
  auto malformed = load_credentials();
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.error().where, path + ":3");

  write_file(path, "[ci\n");
  ASSERT_FALSE(load_credentials().ok());
  EXPECT_EQ(load_credentials().error().where, path + ":1");

  write_file(path, "[default]\naws_access_key_id = A\naws_secret_access_key = B\n");
  auto no_profile = load_credentials();
  ASSERT_FALSE(no_profile.ok());
  EXPECT_EQ(no_profile.error().where, path);
  EXPECT_NE(no_profile.error().message.find("[ci]"), std::string::npos);

  write_file(path, "[ci]\naws_access_key_id = A\n");
  auto no_secret = load_credentials();
  ASSERT_FALSE(no_secret.ok());
  EXPECT_NE(no_secret.error().message.find("aws_secret_access_key"), std::string::npos);

  std::filesystem::remove(path);
  auto missing = load_credentials();
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().where, path);
}

// moto_server answers the instance metadata service's paths as an EC2 instance with a role does.
TEST(Credentials, FromTheInstanceMetadataService) {
  auto credentials = instance_credentials(fixtures::shared_moto().url());
  ASSERT_TRUE(credentials.ok()) << credentials.error().to_string();
  EXPECT_EQ(credentials->access_key_id, "test-key");
  EXPECT_EQ(credentials->secret_access_key, "test-secret-key");
  EXPECT_EQ(credentials->session_token, "test-session-token");
  EXPECT_GT(credentials->expires_at, static_cast<int64_t>(std::time(nullptr)));

  ScopedEnv endpoint("AWS_EC2_METADATA_SERVICE_ENDPOINT", fixtures::shared_moto().url() + "/");
  auto from_env = instance_credentials();
  ASSERT_TRUE(from_env.ok()) << from_env.error().to_string();
  EXPECT_EQ(from_env->access_key_id, "test-key");

  // Anything but a metadata service: an Error naming where it asked.
  auto none = instance_credentials(fixtures::shared_proxy().url());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().where.rfind("instance metadata " + fixtures::shared_proxy().url(), 0), 0u)
      << none.error().to_string();
}

TEST(ParseAwsTime, ReadsWhatAwsWrites) {
  EXPECT_EQ(parse_aws_time("2026-11-30T11:46:19.000Z"), 1796039179);
  EXPECT_EQ(parse_aws_time("2026-11-30T11:46:19Z"), 1796039179);
  EXPECT_EQ(parse_aws_time("1970-01-01T00:00:00+00:00"), 0);
  for (const char* bad : {"", "yesterday", "2026-13-01T00:00:00Z", "2026-11-30T11:46:19+02:00",
                          "2026-11-30 11:46:19Z", "2026-11-30T11:46:19Zjunk"})
    EXPECT_EQ(parse_aws_time(bad), std::nullopt) << bad;
}

// AWS's documented example of a presigned GET (S3 "Authenticating Requests: Using Query
// Parameters").
TEST(Presign, MatchesAwsDocumentedExample) {
  const Endpoint endpoint{
      .service = "s3", .region = "us-east-1", .url = "https://examplebucket.s3.amazonaws.com"};
  const Credentials credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                ""};
  const std::string url = presign_url(endpoint, credentials, "GET", "/test.txt", "", 86400,
                                      1369353600);  // 2013-05-24T00:00:00Z
  EXPECT_EQ(url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(Presign, AddsTheSessionTokenAndBoundsTheLifetime) {
  const Endpoint endpoint{.service = "s3", .region = "eu-west-1", .url = "http://127.0.0.1:9"};
  const std::string url =
      presign_url(endpoint, Credentials{"AK", "SK", "tok/en"}, "GET", "/b/k", "", 10'000'000, 0);
  EXPECT_TRUE(url.starts_with("http://127.0.0.1:9/b/k?")) << url;
  EXPECT_NE(url.find("X-Amz-Expires=604800&"), std::string::npos) << url;
  EXPECT_NE(url.find("X-Amz-Security-Token=tok%2Fen&"), std::string::npos) << url;
  EXPECT_NE(url.find("%2Feu-west-1%2Fs3%2F"), std::string::npos) << url;
}

TEST(AwsUriEncode, KeepsUnreservedAndOptionallySlashes) {
  EXPECT_EQ(aws_uri_encode("a-Z_0.~/b c+é", false), "a-Z_0.~/b%20c%2B%C3%A9");
  EXPECT_EQ(aws_uri_encode("a/b=", true), "a%2Fb%3D");
}

TEST(Base64, RoundTrips) {
  for (const std::string text : {"", "a", "ab", "abc", "abcd", "#!/bin/bash\necho hi\n"}) {
    auto decoded = base64_decode(base64_encode(text));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, text);
  }
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
  EXPECT_EQ(*base64_decode("aGVs\nbG8="), "hello");
  EXPECT_FALSE(base64_decode("aGVsbG8").ok());
  EXPECT_FALSE(base64_decode("aGV*bG8=").ok());
}

TEST(AnswerError, NamesCodeAndMessage) {
  AwsAnswer ec2{.status = 400,
                .body =
                    "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InvalidAMIID."
                    "Malformed</Code><Message>Invalid id: \"x\"</Message></Error></Errors>"
                    "<RequestID>r</RequestID></Response>"};
  Error e = answer_error(ec2, "EC2 RunInstances");
  EXPECT_EQ(e.where, "EC2 RunInstances");
  EXPECT_EQ(e.message, "HTTP 400 InvalidAMIID.Malformed: Invalid id: \"x\"");

  AwsAnswer s3{.status = 404,
               .body =
                   "<Error><Code>NoSuchKey</Code><Message>The specified key does not "
                   "exist.</Message><Key>k</Key></Error>"};
  EXPECT_EQ(answer_error(s3, "S3").message,
            "HTTP 404 NoSuchKey: The specified key does not exist.");

  AwsAnswer html{.status = 502, .body = "<html>bad\ngateway\x01</html>"};
  EXPECT_EQ(answer_error(html, "S3").message, "HTTP 502: <html>bad gateway </html>");
  AwsAnswer head{.status = 403};
  EXPECT_EQ(answer_error(head, "S3").message, "HTTP 403");
  AwsAnswer long_body{.status = 500, .body = std::string(1000, 'x')};
  EXPECT_EQ(answer_error(long_body, "S3").message.size(), std::string("HTTP 500: ").size() + 200);
}

const char* kDescribePage = R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r</requestId>
  <reservationSet>
    <item><reservationId>r-1</reservationId><instancesSet>
      <item>
        <instanceId>i-0123456789abcdef0</instanceId><imageId>ami-1</imageId>
        <instanceState><code>16</code><name>running</name></instanceState>
        <privateIpAddress>10.0.0.5</privateIpAddress><instanceType>m5.xlarge</instanceType>
        <launchTime>2026-11-30T11:46:19.000Z</launchTime>
        <tagSet><item><key>testlooper-worker-name</key><value>ci</value></item>
                <item><key>Name</key><value>a &amp; b</value></item></tagSet>
      </item>
      <item>
        <instanceId>i-2</instanceId>
        <instanceState><code>0</code><name>pending</name></instanceState>
      </item>
    </instancesSet></item>
    <item><instancesSet><item><instanceId>i-3</instanceId>
      <instanceState><name>stopped</name></instanceState></item></instancesSet></item>
  </reservationSet>
  <nextToken>eyJ0b2tlbiI6IDJ9</nextToken>
</DescribeInstancesResponse>)";

TEST(ParseInstancesXml, ReadsEveryReservationAndTheNextToken) {
  std::string token;
  auto instances = parse_instances_xml(kDescribePage, &token);
  ASSERT_TRUE(instances.ok()) << instances.error().to_string();
  ASSERT_EQ(instances->size(), 3u);
  const Instance& first = (*instances)[0];
  EXPECT_EQ(first.id, "i-0123456789abcdef0");
  EXPECT_EQ(first.type, "m5.xlarge");
  EXPECT_EQ(first.state, "running");
  EXPECT_EQ(first.image_id, "ami-1");
  EXPECT_EQ(first.private_ip, "10.0.0.5");
  EXPECT_EQ(first.launch_time, 1796039179);  // 2026-11-30T11:46:19Z
  EXPECT_EQ(first.tags.at("testlooper-worker-name"), "ci");
  EXPECT_EQ(first.tags.at("Name"), "a & b");
  EXPECT_EQ((*instances)[1].state, "pending");
  EXPECT_EQ((*instances)[1].launch_time, 0);
  EXPECT_EQ((*instances)[2].id, "i-3");
  EXPECT_EQ(token, "eyJ0b2tlbiI6IDJ9");
}

TEST(ParseInstancesXml, ReadsARunInstancesAnswer) {
  std::string token = "stale";
  auto instances = parse_instances_xml(
      "<RunInstancesResponse><reservationId>r</reservationId><instancesSet><item><instanceId>i-9"
      "</instanceId><instanceState><name>pending</name></instanceState></item></instancesSet>"
      "</RunInstancesResponse>",
      &token);
  ASSERT_TRUE(instances.ok()) << instances.error().to_string();
  ASSERT_EQ(instances->size(), 1u);
  EXPECT_EQ(instances->front().id, "i-9");
  EXPECT_EQ(token, "");
}

TEST(ParseInstancesXml, RefusesWhatIsMissingOrMalformed) {
  auto wrap = [](const std::string& item) {
    return "<R><instancesSet><item>" + item + "</item></instancesSet></R>";
  };
  const std::string state = "<instanceState><name>running</name></instanceState>";
  EXPECT_FALSE(parse_instances_xml("not xml <", nullptr).ok());
  auto no_id = parse_instances_xml(wrap(state), nullptr);
  ASSERT_FALSE(no_id.ok());
  EXPECT_NE(no_id.error().message.find("instanceId"), std::string::npos);
  auto no_state = parse_instances_xml(wrap("<instanceId>i-1</instanceId>"), nullptr);
  ASSERT_FALSE(no_state.ok());
  EXPECT_NE(no_state.error().message.find("instanceState"), std::string::npos);
  EXPECT_FALSE(parse_instances_xml(wrap("<instanceId>i-1;rm</instanceId>" + state), nullptr).ok());
  auto bad_time = parse_instances_xml(
      wrap("<instanceId>i-1</instanceId>" + state + "<launchTime>yesterday</launchTime>"), nullptr);
  ASSERT_FALSE(bad_time.ok());
  EXPECT_NE(bad_time.error().message.find("launchTime"), std::string::npos);
  std::string tags;
  for (int i = 0; i < 51; ++i)
    tags += "<item><key>k" + std::to_string(i) + "</key><value>v</value></item>";
  EXPECT_FALSE(
      parse_instances_xml(
          wrap("<instanceId>i-1</instanceId>" + state + "<tagSet>" + tags + "</tagSet>"), nullptr)
          .ok());
}

TEST(ParseListObjectsXml, ReadsKeysSizesAndTheContinuationToken) {
  std::string token;
  auto objects = parse_list_objects_xml(
      R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<Prefix>runs/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>runs/a</Key><Size>12</Size><ETag>"x"</ETag></Contents>
<Contents><Key>runs/b &amp; c</Key><Size>0</Size></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>)",
      &token);
  ASSERT_TRUE(objects.ok()) << objects.error().to_string();
  ASSERT_EQ(objects->size(), 2u);
  EXPECT_EQ((*objects)[0].key, "runs/a");
  EXPECT_EQ((*objects)[0].size, 12u);
  EXPECT_EQ((*objects)[1].key, "runs/b & c");
  EXPECT_EQ(token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");

  auto last = parse_list_objects_xml(
      "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>", &token);
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->empty());
  EXPECT_EQ(token, "");

  EXPECT_FALSE(parse_list_objects_xml("<Error/>", &token).ok());
  EXPECT_FALSE(
      parse_list_objects_xml("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents>"
                             "</ListBucketResult>",
                             &token)
          .ok());
  EXPECT_FALSE(parse_list_objects_xml(
                   "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", &token)
                   .ok());
}

TEST(AwsCall, UnreachableIsAnErrorNotAnAnswer) {
  // A loopback port bound but not listening: connections to it are refused while it is held.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  auto answer =
      aws_call(Endpoint{.service = "s3", .url = url},
               Credentials{"AKIDSECRETID", "the-secret-key", "the-token"}, AwsRequest{}, "S3 test");
  close(fd);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().where, "S3 test");
  EXPECT_NE(answer.error().message.find("cannot be reached"), std::string::npos);
  for (const char* secret : {"AKIDSECRETID", "the-secret-key", "the-token"})
    EXPECT_EQ(answer.error().to_string().find(secret), std::string::npos);
}

TEST(AwsCall, RefusesOtherProtocols) {
  auto answer = aws_call(Endpoint{.service = "s3", .url = "file:///etc"},
                         Credentials{"AK", "SK", ""}, AwsRequest{.path = "/passwd"}, "S3 test");
  ASSERT_FALSE(answer.ok());
}

}  // namespace
}  // namespace testlooper::fleet
