// Calls to AWS's HTTP APIs (EC2's Query API, S3's REST API) through libcurl, signed with
// Signature Version 4 by CURLOPT_AWS_SIGV4 (there is no AWS SDK in Debian). Endpoints may be any
// AWS-compatible service (`endpoint_url`: moto_server in the tests). Thread-safe; each call makes
// its own connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace testlooper::fleet {

// Credentials as boto3 finds them: $AWS_ACCESS_KEY_ID + $AWS_SECRET_ACCESS_KEY (+
// $AWS_SESSION_TOKEN), else the profile $AWS_PROFILE (default "default") of
// $AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials).
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" = none (sent as X-Amz-Security-Token when set)
  int64_t expires_at = 0;     // Unix seconds; 0 = never (the environment's, a file's)
};

// The credentials of the environment (above). Error naming where it looked when none are found,
// or the file and line of a malformed credentials file.
Result<Credentials> load_credentials();

// The credentials of this EC2 instance's IAM role, from the instance metadata service (IMDSv2:
// a session token, the role's name, then its credentials), as boto3 finds them on EC2 when
// neither the environment nor a file has any. `metadata_url` "" =
// $AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254. They expire (`expires_at`, about
// hourly): get them again before. Not part of load_credentials, so that nothing off EC2 waits for a
// metadata service that is not there (1 s to connect, 3 s in all here). Error naming the metadata
// URL when there are none.
Result<Credentials> instance_credentials(const std::string& metadata_url = "");

// An AWS time ("2026-11-30T11:46:19.000Z", "2026-11-30T11:46:19Z") as Unix seconds, or nullopt.
std::optional<int64_t> parse_aws_time(const std::string& text);

// One service at one place.
struct Endpoint {
  std::string service;  // "ec2" | "s3"; "" = a plain call, not signed (the metadata service)
  std::string region = "us-east-1";
  // "" = AWS itself (https://ec2.<region>.amazonaws.com, https://s3.<region>.amazonaws.com);
  // else the base URL of a compatible service ("http://127.0.0.1:5000"). S3 buckets are
  // addressed path-style (<url>/<bucket>/<key>) on such endpoints, virtual-hosted on AWS.
  std::string url;
};

// The base URL of `endpoint` (no trailing slash).
std::string base_url(const Endpoint& endpoint);

struct AwsRequest {
  std::string method = "GET";        // GET, PUT, POST, DELETE, HEAD
  std::string path = "/";            // already percent-encoded (aws_uri_encode)
  std::string query;                 // already encoded "a=b&c=d" (no '?')
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent when upload_file is empty
  // A file region sent as the body (streamed, never read whole): [offset, offset + length).
  std::string upload_file;
  uint64_t upload_offset = 0;
  uint64_t upload_length = 0;
  // When set, a 2xx answer's body is streamed into this file (created or truncated) instead of
  // AwsAnswer::body; any other answer's body is kept in AwsAnswer::body as usual.
  std::string download_file;
  double timeout_seconds = 60;  // the whole call (0 = none; for large transfers)
  double connect_timeout_seconds = 10;
  size_t max_answer_bytes = 16 << 20;       // a longer answer (in memory) is an error
  const std::atomic<bool>* stop = nullptr;  // when it becomes true, the call ends (an Error)
};

struct AwsAnswer {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;
  std::optional<std::string> header(const std::string& name) const;  // `name` lower case
  bool ok() const { return status >= 200 && status < 300; }
};

// Performs `request` against `endpoint`, signed. Error{where, ...} when no HTTP answer came
// (unreachable, timeout, too long, stopped, a file that cannot be read or written); any HTTP
// status is an answer.
Result<AwsAnswer> aws_call(const Endpoint& endpoint, const Credentials& credentials,
                           const AwsRequest& request, const std::string& where);

// An Error for an answer that is not 2xx: "<where>: HTTP 403 AccessDenied: <Message>" from the
// XML error body of EC2 or S3 (or the first 200 bytes of a body that is not one).
Error answer_error(const AwsAnswer& answer, const std::string& where);

// RFC 3986 percent-encoding as SigV4 wants it: unreserved bytes kept, '/' kept unless
// `encode_slash`, everything else %XX (uppercase).
std::string aws_uri_encode(const std::string& text, bool encode_slash);

// A presigned URL (SigV4 query signing, UNSIGNED-PAYLOAD): `method` on `path` (encoded, with
// `query` encoded and without the signature) valid `expires_seconds` (1..604800) from `now`
// (Unix seconds). Used for downloads in the browser and by workers without credentials.
std::string presign_url(const Endpoint& endpoint, const Credentials& credentials,
                        const std::string& method, const std::string& path,
                        const std::string& query, int expires_seconds, int64_t now);

// Base64 (RFC 4648, with padding): EC2's user data. base64_decode ignores whitespace; Error for
// any other byte outside the alphabet or a bad length.
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace testlooper::fleet
