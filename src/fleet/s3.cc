#include "fleet/s3.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <pugixml.hpp>
#include <sstream>
#include <system_error>

namespace testlooper::fleet {
namespace {

constexpr size_t kMaxObjectsPerPage = 10000;  // S3 answers at most 1000
constexpr size_t kMaxListed = 10000000;       // list_objects in all
constexpr size_t kMaxListPages = 100000;
constexpr uint64_t kMaxParts = 10000;     // S3's limit
constexpr double kTransferTimeout = 600;  // one PUT of up to kPartBytes, or one part

std::string where(const std::string& action, const std::string& bucket, const std::string& key) {
  return fmt::format("S3 {} {}/{}", action, bucket, key);
}

// A whole number of at most 20 digits, or nullopt.
std::optional<uint64_t> parse_size(const std::string& text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

// An ETag as S3 answers it ("\"hex\"" or "\"hex-N\""): printable, short.
bool is_etag(const std::string& text) {
  if (text.empty() || text.size() > 128) return false;
  for (char c : text)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

// The XML of CompleteMultipartUpload (pugixml escapes the ETags).
std::string complete_xml(const std::vector<std::string>& etags) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("CompleteMultipartUpload");
  root.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
  for (size_t i = 0; i < etags.size(); ++i) {
    pugi::xml_node part = root.append_child("Part");
    part.append_child("PartNumber").text().set(static_cast<unsigned>(i + 1));
    part.append_child("ETag").text().set(etags[i].c_str());
  }
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw);
  return out.str();
}

// A PUT of the file region [offset, offset + length) with its Content-MD5, so S3 refuses bytes
// that are not the ones read here (the payload itself is not signed: it is streamed).
Result<AwsRequest> file_region_put(const std::string& path, uint64_t offset, uint64_t length) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{path, "cannot be read"};
  EVP_MD_CTX* md5 = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md5, EVP_md5(), nullptr);
  std::vector<char> buffer(1 << 20);
  uint64_t done = 0;
  while (done < length) {
    const ssize_t got = ::pread(fd, buffer.data(), std::min<uint64_t>(buffer.size(), length - done),
                                static_cast<off_t>(offset + done));
    if (got <= 0) break;
    EVP_DigestUpdate(md5, buffer.data(), static_cast<size_t>(got));
    done += static_cast<uint64_t>(got);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  EVP_DigestFinal_ex(md5, digest, &digest_length);
  EVP_MD_CTX_free(md5);
  ::close(fd);
  if (done < length) return Error{path, "is shorter than it was (it changed while read?)"};
  AwsRequest request;
  request.method = "PUT";
  request.headers = {"Content-MD5: " + base64_encode(std::string_view(
                                           reinterpret_cast<char*>(digest), digest_length))};
  request.upload_file = path;
  request.upload_offset = offset;
  request.upload_length = length;
  request.timeout_seconds = kTransferTimeout;
  return request;
}

}  // namespace

Result<std::vector<S3Object>> parse_list_objects_xml(const std::string& xml,
                                                     std::string* next_token) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return Error{"S3 answer", "is not XML"};
  const pugi::xml_node root = doc.child("ListBucketResult");
  if (!root) return Error{"S3 answer", "is not a ListBucketResult"};
  std::vector<S3Object> objects;
  for (const pugi::xml_node& contents : root.children("Contents")) {
    if (objects.size() >= kMaxObjectsPerPage)
      return Error{"S3 answer", fmt::format("lists more than {} objects", kMaxObjectsPerPage)};
    S3Object object;
    object.key = contents.child_value("Key");
    if (object.key.empty() || object.key.size() > 1024)
      return Error{"S3 answer", "an object's Key is missing or longer than 1024 bytes"};
    const auto size = parse_size(contents.child_value("Size"));
    if (!size) return Error{"S3 answer", "the Size of " + object.key + " is missing or malformed"};
    object.size = *size;
    objects.push_back(std::move(object));
  }
  if (next_token != nullptr) {
    const std::string truncated = root.child_value("IsTruncated");
    *next_token = truncated == "true" ? root.child_value("NextContinuationToken") : "";
    if (truncated == "true" && next_token->empty())
      return Error{"S3 answer", "IsTruncated without a NextContinuationToken"};
    if (next_token->size() > 4096) return Error{"S3 answer", "NextContinuationToken is too long"};
  }
  return objects;
}

S3Client::S3Client(Endpoint endpoint, Credentials credentials)
    : endpoint_(std::move(endpoint)), credentials_(std::move(credentials)) {
  endpoint_.service = "s3";
}

bool S3Client::path_style(const std::string& bucket) const {
  return !endpoint_.url.empty() || bucket.find('.') != std::string::npos;
}

Endpoint S3Client::bucket_endpoint(const std::string& bucket) const {
  if (path_style(bucket)) return endpoint_;
  Endpoint at = endpoint_;
  at.url = fmt::format("https://{}.s3.{}.amazonaws.com", bucket, endpoint_.region);
  return at;
}

Result<AwsAnswer> S3Client::send(const std::string& bucket, AwsRequest request,
                                 const std::string& at) const {
  if (request.stop == nullptr) request.stop = stop_;
  return aws_call(bucket_endpoint(bucket), credentials_, request, at);
}

Result<AwsAnswer> S3Client::send_ok(const std::string& bucket, const AwsRequest& request,
                                    const std::string& at) const {
  auto answer = send(bucket, request, at);
  if (answer.ok() && !answer->ok()) return answer_error(*answer, at);
  return answer;
}

std::string S3Client::object_path(const std::string& bucket, const std::string& key) const {
  const std::string encoded = aws_uri_encode(key, false);
  return path_style(bucket) ? "/" + aws_uri_encode(bucket, true) + "/" + encoded : "/" + encoded;
}

Status S3Client::put_object(const std::string& bucket, const std::string& key,
                            const std::string& body, const std::string& content_type) const {
  AwsRequest request;
  request.method = "PUT";
  request.path = object_path(bucket, key);
  request.headers = {"Content-Type: " + content_type};
  request.body = body;
  request.timeout_seconds = kTransferTimeout;
  const std::string at = where("PutObject", bucket, key);
  auto answer = send_ok(bucket, request, at);
  if (!answer.ok()) return answer.error();
  return {};
}

Status S3Client::put_file(const std::string& bucket, const std::string& key,
                          const std::string& path, std::string* etag) const {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return Error{path, "cannot be read: " + ec.message()};
  if (size > kPartBytes) return put_multipart(bucket, key, path, size, etag);
  auto request = file_region_put(path, 0, size);
  if (!request.ok()) return request.error();
  request->path = object_path(bucket, key);
  request->headers.push_back("Content-Type: application/octet-stream");
  auto answer = send_ok(bucket, *request, where("PutObject", bucket, key));
  if (!answer.ok()) return answer.error();
  if (etag != nullptr) *etag = answer->header("etag").value_or("");
  return {};
}

Status S3Client::put_multipart(const std::string& bucket, const std::string& key,
                               const std::string& path, uint64_t size, std::string* etag) const {
  if ((size + kPartBytes - 1) / kPartBytes > kMaxParts)
    return Error{path, fmt::format("is larger than {} parts of {} bytes", kMaxParts, kPartBytes)};
  AwsRequest create;
  create.method = "POST";
  create.path = object_path(bucket, key);
  create.query = "uploads=";
  create.headers = {"Content-Type: application/octet-stream"};
  const std::string at = where("CreateMultipartUpload", bucket, key);
  auto created = send_ok(bucket, create, at);
  if (!created.ok()) return created.error();
  pugi::xml_document doc;
  doc.load_buffer(created->body.data(), created->body.size());
  const std::string upload_id = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
  if (upload_id.empty() || upload_id.size() > 1024) return Error{at, "answered no UploadId"};
  std::vector<std::string> etags;
  Status done = upload_parts(bucket, key, path, upload_id, size, &etags);
  if (done.ok()) done = complete_multipart(bucket, key, upload_id, etags, etag);
  if (done.ok()) return done;
  AwsRequest abort;
  abort.method = "DELETE";
  abort.path = object_path(bucket, key);
  abort.query = "uploadId=" + aws_uri_encode(upload_id, true);
  abort.timeout_seconds = 30;
  static const std::atomic<bool> kNever{false};
  abort.stop = &kNever;  // a stopping server still leaves no parts behind
  (void)send(bucket, abort, where("AbortMultipartUpload", bucket, key));
  return done;
}

Status S3Client::complete_multipart(const std::string& bucket, const std::string& key,
                                    const std::string& upload_id,
                                    const std::vector<std::string>& etags,
                                    std::string* etag) const {
  AwsRequest complete;
  complete.method = "POST";
  complete.path = object_path(bucket, key);
  complete.query = "uploadId=" + aws_uri_encode(upload_id, true);
  complete.headers = {"Content-Type: application/xml"};
  complete.body = complete_xml(etags);
  complete.timeout_seconds = kTransferTimeout;  // S3 may take minutes to assemble the parts
  const std::string at = where("CompleteMultipartUpload", bucket, key);
  auto answer = send_ok(bucket, complete, at);
  if (!answer.ok()) return answer.error();
  // A 200 may still carry an <Error>: S3 fails a completion after it started answering.
  pugi::xml_document doc;
  if (!doc.load_buffer(answer->body.data(), answer->body.size()) || doc.child("Error"))
    return answer_error(*answer, at);
  if (etag != nullptr) *etag = doc.child("CompleteMultipartUploadResult").child_value("ETag");
  return {};
}

Status S3Client::upload_parts(const std::string& bucket, const std::string& key,
                              const std::string& path, const std::string& upload_id, uint64_t size,
                              std::vector<std::string>* etags) const {
  for (uint64_t offset = 0, number = 1; offset < size; offset += kPartBytes, ++number) {
    const std::string at = where(fmt::format("UploadPart {}", number), bucket, key);
    auto part = file_region_put(path, offset, std::min(kPartBytes, size - offset));
    if (!part.ok()) return part.error();
    part->path = object_path(bucket, key);
    part->query = fmt::format("partNumber={}&uploadId={}", number, aws_uri_encode(upload_id, true));
    auto answer = send_ok(bucket, *part, at);
    if (!answer.ok()) return answer.error();
    const std::string etag = answer->header("etag").value_or("");
    if (!is_etag(etag)) return Error{at, "answered no ETag"};
    etags->push_back(etag);
  }
  return {};
}

Result<std::string> S3Client::get_object(const std::string& bucket, const std::string& key,
                                         size_t max_bytes) const {
  AwsRequest request;
  request.path = object_path(bucket, key);
  request.max_answer_bytes = max_bytes;
  request.timeout_seconds = kTransferTimeout;
  const std::string at = where("GetObject", bucket, key);
  auto answer = send_ok(bucket, request, at);
  if (!answer.ok()) return answer.error();
  return std::move(answer->body);
}

Status S3Client::get_file(const std::string& bucket, const std::string& key,
                          const std::string& path) const {
  AwsRequest request;
  request.path = object_path(bucket, key);
  request.download_file = path + ".part";
  request.timeout_seconds = 0;  // any size: a stalled transfer ends by aws_call's speed limit
  const std::string at = where("GetObject", bucket, key);
  auto answer = send(bucket, request, at);
  std::error_code ec;
  Status done;
  if (!answer.ok())
    done = answer.error();
  else if (!answer->ok())
    done = answer_error(*answer, at);
  else
    std::filesystem::rename(request.download_file, path, ec);
  if (done.ok() && ec) done = Error{path, "cannot be written: " + ec.message()};
  if (!done.ok()) std::filesystem::remove(request.download_file, ec);
  return done;
}

Result<std::optional<uint64_t>> S3Client::head_object(const std::string& bucket,
                                                      const std::string& key,
                                                      std::string* etag) const {
  AwsRequest request;
  request.method = "HEAD";
  request.path = object_path(bucket, key);
  const std::string at = where("HeadObject", bucket, key);
  auto answer = send(bucket, request, at);
  if (!answer.ok()) return answer.error();
  if (answer->status == 404) return std::optional<uint64_t>();
  if (!answer->ok()) return answer_error(*answer, at);
  const auto size = parse_size(answer->header("content-length").value_or(""));
  if (!size) return Error{at, "answered no Content-Length"};
  if (etag != nullptr) *etag = answer->header("etag").value_or("");
  return std::optional<uint64_t>(*size);
}

Result<std::vector<S3Object>> S3Client::list_objects(const std::string& bucket,
                                                     const std::string& prefix) const {
  std::vector<S3Object> all;
  std::string token, previous;
  size_t pages = 0;
  const std::string at = where("ListObjectsV2", bucket, prefix);
  do {
    AwsRequest request;
    request.path = path_style(bucket) ? "/" + aws_uri_encode(bucket, true) : "/";
    request.query = fmt::format("list-type=2&max-keys={}&prefix={}", list_page_size_,
                                aws_uri_encode(prefix, true));
    if (!token.empty()) request.query += "&continuation-token=" + aws_uri_encode(token, true);
    auto answer = send_ok(bucket, request, at);
    if (!answer.ok()) return answer.error();
    auto page = parse_list_objects_xml(answer->body, &token);
    if (!page.ok()) return Error{at, page.error().to_string()};
    if (all.size() + page->size() > kMaxListed)
      return Error{at, fmt::format("more than {} objects", kMaxListed)};
    // An endpoint that hands back the same token, or pages without end, is not followed forever.
    if (!token.empty() && (token == previous || ++pages > kMaxListPages))
      return Error{at, "the listing does not end"};
    previous = token;
    for (S3Object& object : *page) all.push_back(std::move(object));
  } while (!token.empty());
  return all;
}

Status S3Client::delete_object(const std::string& bucket, const std::string& key) const {
  AwsRequest request;
  request.method = "DELETE";
  request.path = object_path(bucket, key);
  const std::string at = where("DeleteObject", bucket, key);
  auto answer = send_ok(bucket, request, at);
  if (!answer.ok()) return answer.error();
  return {};
}

Status S3Client::create_bucket(const std::string& bucket) const {
  AwsRequest request;
  request.method = "PUT";
  request.path = path_style(bucket) ? "/" + aws_uri_encode(bucket, true) : "/";
  if (endpoint_.region != "us-east-1") {
    request.headers = {"Content-Type: application/xml"};
    request.body = fmt::format(
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
        aws_uri_encode(endpoint_.region, true));
  }
  const std::string at = fmt::format("S3 CreateBucket {}", bucket);
  auto answer = send(bucket, request, at);
  if (!answer.ok()) return answer.error();
  if (answer->ok()) return {};
  Error error = answer_error(*answer, at);
  if (error.message.find("BucketAlreadyOwnedByYou") != std::string::npos) return {};
  return error;
}

std::string S3Client::presign_get(const std::string& bucket, const std::string& key,
                                  int expires_seconds) const {
  return presign_url(bucket_endpoint(bucket), credentials_, "GET", object_path(bucket, key), "",
                     expires_seconds, static_cast<int64_t>(std::time(nullptr)));
}

}  // namespace testlooper::fleet
