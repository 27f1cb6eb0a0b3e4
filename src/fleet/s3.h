// S3's REST API: objects put (one request, or multipart above a threshold, streamed from a file),
// got (into memory with a limit, or streamed to a file), listed, deleted, and presigned.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "fleet/aws.h"

namespace testlooper::fleet {

// config.json's artifacts S3 form: builds, run records, source archives and logs kept in S3.
struct S3Options {
  bool enabled = false;  // a bucket was given
  std::string bucket;
  std::string region = "us-east-1";
  std::string key_prefix;    // "" or ends with '/': keys are <prefix>builds/..., <prefix>runs/...
  std::string endpoint_url;  // "" = AWS
};

struct S3Object {
  std::string key;
  uint64_t size = 0;
};

// Parses one ListObjectsV2 answer (ListBucketResult/Contents: Key, Size) and its
// NextContinuationToken (into `next_token` when not null; "" on the last page). Error naming what
// is missing or malformed; bounded (at most 10000 objects a page). Faces the network: fuzzed
// (fuzz/fuzz_aws_xml.cc).
Result<std::vector<S3Object>> parse_list_objects_xml(const std::string& xml,
                                                     std::string* next_token);

class S3Client {
 public:
  S3Client(Endpoint endpoint, Credentials credentials);

  // Files larger than this go up in parts of this size (S3's minimum part is 5 MiB).
  static constexpr uint64_t kPartBytes = uint64_t{16} << 20;

  Status put_object(const std::string& bucket, const std::string& key, const std::string& body,
                    const std::string& content_type = "application/octet-stream") const;
  // Uploads the file at `path`: one PUT up to kPartBytes, else a multipart upload (aborted when
  // a part fails, so no parts are left behind). The object's ETag as S3 answered it goes to
  // `etag` when not null.
  Status put_file(const std::string& bucket, const std::string& key, const std::string& path,
                  std::string* etag = nullptr) const;
  // The object's bytes; Error when it is larger than `max_bytes` or missing (the Error says
  // "NoSuchKey"; use head_object to tell absence apart).
  Result<std::string> get_object(const std::string& bucket, const std::string& key,
                                 size_t max_bytes = 16 << 20) const;
  // Streams the object to `path` (written to path + ".part", then renamed).
  Status get_file(const std::string& bucket, const std::string& key, const std::string& path) const;
  // The object's size, or nullopt when there is no such object; its ETag to `etag` when not null.
  Result<std::optional<uint64_t>> head_object(const std::string& bucket, const std::string& key,
                                              std::string* etag = nullptr) const;
  // Every object under `prefix` (ListObjectsV2, all pages), in key order.
  Result<std::vector<S3Object>> list_objects(const std::string& bucket,
                                             const std::string& prefix) const;
  Status delete_object(const std::string& bucket, const std::string& key) const;
  // Creates the bucket (for tests and first use); an existing bucket of ours is not an error.
  Status create_bucket(const std::string& bucket) const;
  // A URL that GETs the object without credentials for `expires_seconds`.
  std::string presign_get(const std::string& bucket, const std::string& key,
                          int expires_seconds) const;

  // The page size of list_objects (max-keys, 1..1000; default 1000): small pages let the tests
  // go through continuation tokens.
  // Every call but the abort of a failed multipart upload ends (an Error) once `*stop` is true
  // (the server stopping); null = never. REQUIRES: `stop` outlives the client's calls.
  void set_stop(const std::atomic<bool>* stop) { stop_ = stop; }

  void set_list_page_size(int keys) { list_page_size_ = keys < 1 ? 1 : keys > 1000 ? 1000 : keys; }

 private:
  // Where `bucket` is: path-style (<url>/<bucket>/<key>) on custom endpoints and for bucket names
  // with dots, else virtual-hosted (https://<bucket>.s3.<region>.amazonaws.com/<key>).
  bool path_style(const std::string& bucket) const;
  Endpoint bucket_endpoint(const std::string& bucket) const;
  std::string object_path(const std::string& bucket, const std::string& key) const;
  // `request` to `bucket` (stopped by stop_ unless it has a flag of its own): the answer, whatever
  // its status; send_ok: and an Error for an answer that is not 2xx.
  Result<AwsAnswer> send(const std::string& bucket, AwsRequest request,
                         const std::string& at) const;
  Result<AwsAnswer> send_ok(const std::string& bucket, const AwsRequest& request,
                            const std::string& at) const;
  Status put_multipart(const std::string& bucket, const std::string& key, const std::string& path,
                       uint64_t size, std::string* etag) const;
  Status complete_multipart(const std::string& bucket, const std::string& key,
                            const std::string& upload_id, const std::vector<std::string>& etags,
                            std::string* etag) const;
  // UploadPart of every kPartBytes region of `path` (ETags in part order).
  Status upload_parts(const std::string& bucket, const std::string& key, const std::string& path,
                      const std::string& upload_id, uint64_t size,
                      std::vector<std::string>* etags) const;
  Endpoint endpoint_;
  Credentials credentials_;
  int list_page_size_ = 1000;
  const std::atomic<bool>* stop_ = nullptr;
};

}  // namespace testlooper::fleet
