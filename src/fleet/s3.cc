// Stub: helper A implements (issue 14).
#include "fleet/s3.h"

namespace testlooper::fleet {
namespace {
Error todo(const std::string& what) { return Error{"", what + ": not implemented yet"}; }
}  // namespace

S3Client::S3Client(Endpoint endpoint, Credentials credentials)
    : endpoint_(std::move(endpoint)), credentials_(std::move(credentials)) {}
Status S3Client::put_object(const std::string&, const std::string&, const std::string&,
                            const std::string&) {
  return todo("PutObject");
}
Status S3Client::put_file(const std::string&, const std::string&, const std::string&) {
  return todo("PutObject");
}
Result<std::string> S3Client::get_object(const std::string&, const std::string&, size_t) {
  return todo("GetObject");
}
Status S3Client::get_file(const std::string&, const std::string&, const std::string&) {
  return todo("GetObject");
}
Result<std::optional<uint64_t>> S3Client::head_object(const std::string&, const std::string&) {
  return todo("HeadObject");
}
Result<std::vector<S3Object>> S3Client::list_objects(const std::string&, const std::string&) {
  return todo("ListObjectsV2");
}
Status S3Client::delete_object(const std::string&, const std::string&) {
  return todo("DeleteObject");
}
Status S3Client::create_bucket(const std::string&) { return todo("CreateBucket"); }
std::string S3Client::presign_get(const std::string&, const std::string&, int) const { return ""; }
std::string S3Client::object_path(const std::string& bucket, const std::string& key) const {
  return "/" + bucket + "/" + key;
}

}  // namespace testlooper::fleet
