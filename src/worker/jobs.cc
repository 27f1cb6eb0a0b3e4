#include "worker/jobs.h"

#include <algorithm>
#include <cmath>

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

Job read_job(const json& m) {
  Job j;
  j.run_id = m.value("run_id", "");
  j.cores = static_cast<int>(std::clamp<int64_t>(m.value("cores", int64_t{1}), 1, 1 << 16));
  j.ram_gb = static_cast<int>(std::clamp<int64_t>(m.value("ram_gb", int64_t{0}), 0, 1 << 24));
  j.max_log_bytes = m.value("max_log_bytes", kDefaultMaxLogBytes);
  j.log_in_result = m.value("log_in_result", false);
  j.upload_token = m.value("upload_token", "");
  if (m.contains("repos_dir")) j.repos_dir = m["repos_dir"].get<std::string>();
  if (m.contains("artifacts_dir")) j.artifacts_dir = m["artifacts_dir"].get<std::string>();
  if (m.contains("object")) j.object = m["object"];
  if (m.contains("s3")) j.s3 = m["s3"];
  if (auto max = m.find("max_seconds"); max != m.end() && max->is_number()) {
    const double seconds = max->get<double>();
    j.max_seconds = std::isfinite(seconds) ? std::clamp(seconds, 1.0, 1e7) : 86400;
  }
  if (auto debug = m.find("debug"); debug != m.end() && debug->is_boolean()) j.debug = *debug;
  return j;
}

std::vector<std::string> job_acks(const json& m) {
  std::vector<std::string> out;
  auto acks = m.find("acks");
  if (acks == m.end() || !acks->is_array()) return out;
  for (const json& id : *acks) {
    if (id.is_string() && is_run_id(id.get_ref<const std::string&>())) out.push_back(id);
  }
  return out;
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
