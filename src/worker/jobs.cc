#include "worker/jobs.h"

#include "core/ids.h"

namespace testlooper::worker {

using nlohmann::json;

std::string outcome_word(runner::Outcome o) {
  switch (o) {
    case runner::Outcome::kSuccess:
      return "success";
    case runner::Outcome::kFailure:
      return "failure";
    case runner::Outcome::kCancelled:
      return "cancelled";
    case runner::Outcome::kInfraError:
      return "infra";
  }
  return "infra";
}

bool is_server_message(const json& m) {
  if (!m.is_object()) return false;
  auto type = m.find("type");
  auto run_id = m.find("run_id");
  return type != m.end() && type->is_string() && run_id != m.end() && run_id->is_string() &&
         is_run_id(run_id->get_ref<const std::string&>());
}

bool is_job(const json& m) {
  auto is = [&m](const char* key, auto check) { return !m.contains(key) || check(m[key]); };
  auto integer = [](const json& v) { return v.is_number_integer(); };
  auto text = [](const json& v) { return v.is_string(); };
  return is("cores", integer) && is("ram_gb", integer) && is("repos_dir", text) &&
         is("max_log_bytes",
            [](const json& v) {
              return v.is_number_integer() && v > 0 && v <= int64_t{1} << 50;  // fits int64_t
            }) &&
         is("artifacts_dir", text) && is("upload_token", text) &&
         is("log_in_result", [](const json& v) { return v.is_boolean(); }) &&
         is("object", [](const json& v) { return v.is_object(); }) &&
         is("s3", [](const json& v) { return v.is_object(); });
}

Result<fleet::S3Options> s3_options(const json& s3) {
  fleet::S3Options o;
  auto field = [&s3](const char* key, size_t max, std::string& out) {
    auto it = s3.find(key);
    if (it == s3.end()) return true;
    if (!it->is_string() || it->get_ref<const std::string&>().size() > max) return false;
    out = it->get<std::string>();
    return true;
  };
  if (!field("bucket", 255, o.bucket) || o.bucket.empty() || !field("region", 64, o.region) ||
      !field("key_prefix", 1024, o.key_prefix) || !field("endpoint_url", 1024, o.endpoint_url)) {
    return Error{"job", "'s3' is not {\"bucket\", \"region\", \"key_prefix\", \"endpoint_url\"}"};
  }
  o.enabled = true;
  return o;
}

}  // namespace testlooper::worker
