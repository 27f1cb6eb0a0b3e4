#include "server/protocol.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "fleet/aws.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

// Reads the fields of one JSON object, remembering the first thing wrong. Every accessor checks
// the type before reading, so nlohmann never throws.
class Fields {
 public:
  Fields(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  const std::optional<Error>& error() const { return error_; }
  void fail(const std::string& key, const std::string& what) {
    if (!error_) error_ = Error{where_, "'" + key + "' must be " + what};
  }

  // nullptr when absent (and then an error when `required`).
  const json* find(const std::string& key, bool required) {
    auto it = object_.find(key);
    if (it == object_.end()) {
      if (required) fail(key, "present");
      return nullptr;
    }
    return &*it;
  }

  void text(const std::string& key, bool required, size_t max, std::string& out) {
    const json* v = find(key, required);
    if (v == nullptr) return;
    if (!v->is_string() || v->get_ref<const std::string&>().size() > max) {
      return fail(key, "a string of at most " + std::to_string(max) + " bytes");
    }
    out = v->get<std::string>();
  }

  void run_id(const std::string& key, std::string& out) {
    const json* v = find(key, true);
    if (v == nullptr) return;
    if (!v->is_string() || !is_run_id(v->get_ref<const std::string&>())) {
      return fail(key, "a run id (16 lowercase hex digits)");
    }
    out = v->get<std::string>();
  }

  void integer(const std::string& key, bool required, int64_t min, int64_t max, int& out) {
    const json* v = find(key, required);
    if (v == nullptr) return;
    // An unsigned value beyond int64_t's range is out of every range here.
    const bool fits =
        v->is_number_integer() &&
        (!v->is_number_unsigned() || v->get<uint64_t>() <= static_cast<uint64_t>(max)) &&
        v->get<int64_t>() >= min && v->get<int64_t>() <= max;
    if (!fits) {
      return fail(key, "an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    out = static_cast<int>(v->get<int64_t>());
  }

  void number(const std::string& key, double& out) {
    const json* v = find(key, false);
    // null is what a worker's JSON writer makes of NaN or infinity: read as absent.
    if (v == nullptr || v->is_null()) return;
    if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() < 0) {
      return fail(key, "a non-negative number");
    }
    out = v->get<double>();
  }

  void boolean(const std::string& key, bool required, bool& out) {
    const json* v = find(key, required);
    if (v == nullptr) return;
    if (!v->is_boolean()) return fail(key, "true or false");
    out = v->get<bool>();
  }

  // The entries of an array of at most `max` entries (none when absent).
  const json* list(const std::string& key, size_t max = kMaxListedRuns) {
    const json* v = find(key, false);
    if (v == nullptr) return nullptr;
    if (!v->is_array() || v->size() > max) {
      fail(key, "an array of at most " + std::to_string(max) + " entries");
      return nullptr;
    }
    return v;
  }

 private:
  const json& object_;
  std::string where_;
  std::optional<Error> error_;
};

bool is_worker_id(const std::string& id) {
  if (id.empty() || id.size() > kMaxWorkerIdSize) return false;
  for (const char c : id) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

bool is_platform_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxPlatformName) return false;
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

Result<CaseResult> parse_case(const json& c) {
  if (!c.is_object()) return Error{"case", "a case must be an object"};
  Fields f(c, "case");
  CaseResult out;
  f.text("name", true, kMaxTextField, out.name);
  f.boolean("success", true, out.success);
  f.number("elapsed", out.elapsed);
  f.boolean("skipped", false, out.skipped);
  // Any length is taken (the message's size bounds it) and capped: a result refused for a long
  // message would be resent in every hello and lock its worker out.
  f.text("message", false, std::numeric_limits<size_t>::max(), out.message);
  out.message = cap_text(out.message, kMaxCaseMessageBytes);
  if (const json* logs = f.list("logs", kMaxCaseLogs)) {
    for (const json& log : *logs) {
      if (!log.is_string() || !is_case_log_name(log.get_ref<const std::string&>())) {
        f.fail("logs", "a list of names test_logs/<dir>/<file>");
        break;
      }
      out.logs.push_back(log.get<std::string>());
    }
  }
  if (f.error()) return *f.error();
  return out;
}

// {"key": 1 to 1024 bytes, "size": a non-negative integer, "etag"?: at most 128 bytes}
Result<s3store::PutKey> parse_s3_key(const json& k, const std::string& where) {
  const std::string what = "'s3_keys' must list {\"key\", \"size\", \"etag\"?}";
  if (!k.is_object()) return Error{where, what};
  Fields f(k, where);
  s3store::PutKey out;
  f.text("key", true, 1024, out.key);
  f.text("etag", false, 128, out.etag);
  const json* size = f.find("size", true);
  if (f.error() || out.key.empty() || size == nullptr || !size->is_number_integer() ||
      (!size->is_number_unsigned() && size->get<int64_t>() < 0)) {
    return Error{where, what};
  }
  out.size = size->get<uint64_t>();
  return out;
}

Result<ResultMessage> parse_result(const json& m, const std::string& where) {
  if (!m.is_object()) return Error{where, "a result must be an object"};
  Fields f(m, where);
  ResultMessage out;
  f.run_id("run_id", out.run_id);
  f.text("outcome", true, 16, out.outcome);
  if (!f.error() && out.outcome != "success" && out.outcome != "failure" &&
      out.outcome != "cancelled" && out.outcome != "infra") {
    f.fail("outcome", "\"success\", \"failure\", \"cancelled\" or \"infra\"");
  }
  f.integer("exit_code", false, std::numeric_limits<int>::min(), std::numeric_limits<int>::max(),
            out.exit_code);
  f.text("message", false, kMaxTextField, out.message);
  f.boolean("environment_failed", false, out.environment_failed);
  double end = -1;
  f.number("end", end);
  if (end >= 0) out.end = end;
  double start = 0;
  f.number("start", start);  // checked, not kept: the server's own start time is the record's
  // Bounded only by the message's size, as a log message's data (append_log caps the log).
  f.text("log", false, std::numeric_limits<size_t>::max(), out.log);
  // A real suite may have many cases: a result the parser refused would be resent in every
  // hello and lock its worker out, so the only bound is the message size (64 MiB).
  if (const json* cases = f.list("cases", std::numeric_limits<size_t>::max())) {
    for (const json& c : *cases) {
      Result<CaseResult> parsed = parse_case(c);
      if (!parsed.ok()) return Error{where, parsed.error().message};
      out.cases.push_back(std::move(*parsed));
    }
    cap_case_messages(out.cases);
  }
  if (const json* keys = f.list("s3_keys")) {
    out.s3_keys.emplace();
    for (const json& k : *keys) {
      Result<s3store::PutKey> parsed = parse_s3_key(k, where);
      if (!parsed.ok()) return parsed.error();
      out.s3_keys->push_back(std::move(*parsed));
    }
  }
  if (f.error()) return *f.error();
  return out;
}

Result<WorkerMessage> parse_hello(const json& m) {
  Fields f(m, "hello");
  HelloMessage out;
  f.text("worker", true, kMaxWorkerIdSize, out.worker);
  if (!f.error() && !is_worker_id(out.worker)) f.fail("worker", "1 to 200 visible characters");
  f.integer("cores", true, 1, kMaxCores, out.cores);
  f.integer("ram_gb", true, 0, kMaxRamGb, out.ram_gb);
  f.text("host", false, 256, out.host);
  f.boolean("shared_disk", false, out.shared_disk);
  f.boolean("docker", false, out.docker);
  f.boolean("ami", false, out.ami);
  f.boolean("job_acks", false, out.job_acks);
  f.text("image", false, 128, out.image);
  if (const json* platforms = f.list("platforms", kMaxPlatforms)) {
    out.platforms.clear();
    for (const json& p : *platforms) {
      if (!p.is_string() || !is_platform_name(p.get_ref<const std::string&>())) {
        return Error{"hello",
                     "'platforms' must list platform names (1 to 32 of a-z, 0-9, _ and -)"};
      }
      out.platforms.push_back(p.get<std::string>());
    }
  }
  if (const json* running = f.list("running")) {
    for (const json& r : *running) {
      if (!r.is_string() || !is_run_id(r.get_ref<const std::string&>())) {
        return Error{"hello", "'running' must list run ids"};
      }
      out.running.push_back(r.get<std::string>());
    }
  }
  if (const json* finished = f.list("finished")) {
    for (const json& r : *finished) {
      Result<ResultMessage> parsed = parse_result(r, "hello: finished");
      if (!parsed.ok()) return parsed.error();
      out.finished.push_back(std::move(*parsed));
    }
  }
  if (f.error()) return *f.error();
  return WorkerMessage(std::move(out));
}

}  // namespace

Result<WorkerMessage> parse_worker_message(std::string_view text) {
  const json m = json::parse(text, nullptr, false);
  if (!m.is_object()) return Error{"", "a message must be a JSON object"};
  auto type = m.find("type");
  if (type == m.end() || !type->is_string()) return Error{"", "'type' must be a string"};
  const std::string& word = type->get_ref<const std::string&>();
  if (word == "hello") return parse_hello(m);
  if (word == "heartbeat") return WorkerMessage(HeartbeatMessage{});
  if (word == "result") {
    Result<ResultMessage> result = parse_result(m, "result");
    if (!result.ok()) return result.error();
    return WorkerMessage(std::move(*result));
  }
  if (word == "log") {
    Fields f(m, "log");
    LogMessage out;
    f.run_id("run_id", out.run_id);
    f.text("data", true, std::numeric_limits<size_t>::max(), out.data);
    if (f.error()) return *f.error();
    return WorkerMessage(std::move(out));
  }
  if (word == "deployment") {
    Fields f(m, "deployment");
    DeploymentMessage out;
    f.run_id("run_id", out.run_id);
    f.text("state", true, 16, out.state);
    if (!f.error() && out.state != "running" && out.state != "stopped")
      f.fail("state", "\"running\" or \"stopped\"");
    f.text("message", false, kMaxTextField, out.message);
    if (f.error()) return *f.error();
    return WorkerMessage(std::move(out));
  }
  if (word == "terminal") {
    Fields f(m, "terminal");
    TerminalMessage out;
    std::string encoded;
    f.run_id("run_id", out.run_id);
    f.text("data", true, kMaxTerminalChunk * 4 / 3 + 4, encoded);
    if (f.error()) return *f.error();
    Result<std::string> data = fleet::base64_decode(encoded);
    if (!data.ok()) return Error{"terminal", "'data' must be base64"};
    out.data = std::move(*data);
    return WorkerMessage(std::move(out));
  }
  return Error{"", "unknown message type '" + word.substr(0, 40) + "'"};
}

}  // namespace testlooper::server
