#include "server/rebuild.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/case_message.h"
#include "core/ids.h"
#include "server/protocol.h"
#include "store/store.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uintmax_t kMaxRecordBytes = 64 << 20;

// "repo/<40-hex sha>/name" -> repo, sha, name; false when it is not of that shape.
bool split_full_name(const std::string& full, store::RunRow& run) {
  for (size_t slash = full.find('/'); slash != std::string::npos;
       slash = full.find('/', slash + 1)) {
    if (full.size() > slash + 42 && full[slash + 41] == '/' &&
        is_commit_sha(std::string_view(full).substr(slash + 1, 40))) {
      run.repo = full.substr(0, slash);
      run.commit = full.substr(slash + 1, 40);
      run.name = full.substr(slash + 42);
      return true;
    }
  }
  return false;
}

// The string at `key`, `fallback` when absent; nullopt when it is there but not a string.
std::optional<std::string> string_at(const json& r, const char* key, const std::string& fallback) {
  if (!r.contains(key)) return fallback;
  if (!r[key].is_string()) return std::nullopt;
  return r[key].get<std::string>();
}

// The number at `key` (0 when absent); nullopt when it is there but not a number.
std::optional<double> number_at(const json& r, const char* key) {
  if (!r.contains(key)) return 0.0;
  if (!r[key].is_number()) return std::nullopt;
  return r[key].get<double>();
}

// A record's test_result.json text, parsed; an Error says why it is unusable.
Result<json> parse_record_text(const std::string& text) {
  json r = json::parse(text, nullptr, false);
  if (!r.is_object()) return Error{"", "test_result.json is not a JSON object"};
  return r;
}

// test_result.json of record directory `dir`, parsed; an Error says why it is unusable.
Result<json> read_record(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(dir, ec))) return Error{"", "not a directory"};
  const fs::path file = dir / "test_result.json";
  if (!fs::is_regular_file(fs::symlink_status(file, ec))) {
    return Error{"", "no test_result.json (as a regular file)"};
  }
  if (fs::file_size(file, ec) > kMaxRecordBytes) return Error{"", "test_result.json is too large"};
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return parse_record_text(text.str());
}

// The run and its cases as the record says, every field checked.
Result<std::pair<store::RunRow, std::vector<store::CaseRow>>> parse_record(const json& r,
                                                                           const std::string& id) {
  store::RunRow run;
  const std::optional<std::string> name = string_at(r, "name", "");
  if (!name || !split_full_name(*name, run)) return Error{"", "no \"name\" repo/<sha>/name"};
  const auto record_id = string_at(r, "id", id);
  const auto hash = string_at(r, "hash", "");
  const auto kind = string_at(r, "kind", "test");
  const auto outcome = string_at(r, "outcome", "");
  const auto message = string_at(r, "message", "");
  const auto started = number_at(r, "start_timestamp");
  const auto ended = number_at(r, "end_timestamp");
  const auto exit_code = number_at(r, "exit_code");
  if (!record_id || !hash || !kind || !outcome || !message || !started || !ended || !exit_code) {
    return Error{"", "a field has the wrong type"};
  }
  if (*record_id != id) return Error{"", "its \"id\" is not its directory's name"};
  if (!is_identity_hash(*hash)) return Error{"", "\"hash\" is not an identity hash"};
  if (*kind != "build" && *kind != "test" && *kind != "deployment") {
    return Error{"", "unknown \"kind\""};
  }
  run.id = id;
  run.hash = *hash;
  run.kind = *kind;
  run.worker = "rebuilt";
  run.started = *started;
  run.state = run_state_of_outcome(*outcome);
  // A crafted record's exit code may be anything: out of int's range is not a cast to make.
  if (!(*exit_code >= std::numeric_limits<int>::min() && *exit_code <= std::numeric_limits<int>::max())) {
    return Error{"", "exit_code is out of range"};
  }
  run.exit_code = static_cast<int>(*exit_code);
  run.ended = *ended;
  run.detail = *message;
  std::vector<store::CaseRow> cases;
  if (r.contains("individualTests")) {
    if (!r["individualTests"].is_array()) return Error{"", "\"individualTests\" is not an array"};
    for (const json& t : r["individualTests"]) {
      if (!t.is_object() || !t.contains("testName") || !t["testName"].is_string() ||
          (t.contains("success") && !t["success"].is_boolean()) || !number_at(t, "elapsed")) {
        return Error{"", "an individual test is malformed"};
      }
      const std::optional<std::string> message = string_at(t, "message", "");
      if (!message) return Error{"", "an individual test's \"message\" is not a string"};
      if (t.contains("skipped") && !t["skipped"].is_boolean()) {
        return Error{"", "an individual test's \"skipped\" is not true or false"};
      }
      std::vector<std::string> logs;
      if (t.contains("logs")) {
        if (!t["logs"].is_array() || t["logs"].size() > kMaxCaseLogs) {
          return Error{"", "an individual test's \"logs\" is not a list of log names"};
        }
        for (const json& log : t["logs"]) {
          if (!log.is_string() || !is_case_log_name(log.get_ref<const std::string&>())) {
            return Error{"", "an individual test's \"logs\" is not a list of log names"};
          }
          logs.push_back(log.get<std::string>());
        }
      }
      cases.push_back({t["testName"].get<std::string>(),
                       t.contains("success") && t["success"].get<bool>(), *number_at(t, "elapsed"),
                       *message, std::move(logs),
                       t.contains("skipped") && t["skipped"].get<bool>()});
    }
    cap_case_messages(cases);
  }
  return std::make_pair(std::move(run), std::move(cases));
}

// Restores the record of run `id` (read as `record`): "" when restored, else why it was skipped.
Result<std::string> restore(store::Store& db, const std::string& id, const Result<json>& record,
                            bool trust_unknown_runs) {
  if (!record.ok()) return record.error().message;
  auto parsed = parse_record(*record, id);
  if (!parsed.ok()) return parsed.error().message;
  auto& [run, cases] = *parsed;
  auto known = db.run(id);
  if (!known.ok()) return known.error();
  if (!known->has_value() && !trust_unknown_runs) {
    return std::string("the database does not know this run (--trust-unknown-runs restores it)");
  }
  if (known->has_value()) {
    const store::RunRow& row = **known;
    if (row.hash != run.hash || row.kind != run.kind) {
      return std::string("its hash or kind differs from the database's run");
    }
    if (row.state != store::RunState::kRunning) {
      return std::string("the database already has this run's result");
    }
    // The database's account of what was run wins over the record's.
    run.repo = row.repo;
    run.commit = row.commit;
    run.name = row.name;
    run.purpose = row.purpose;
  } else {
    store::RunRow started = run;
    started.state = store::RunState::kRunning;
    TL_RETURN_IF_ERROR(db.start_run(started));
  }
  Result<bool> recorded = db.finish_run(run, cases);
  if (!recorded.ok()) return recorded.error();
  return std::string(*recorded ? "" : "the database already has this run's result");
}

// Adds the outcome of restoring record `id` to `summary`; an Error only for the database's.
Status count(RebuildSummary& summary, const std::string& id, const Result<std::string>& skipped) {
  if (!skipped.ok()) return skipped.error();
  if (skipped->empty()) {
    ++summary.runs;
  } else {
    summary.skipped.push_back({id, *skipped});
  }
  return Status();
}

}  // namespace

Result<RebuildSummary> rebuild_database(const std::string& data_dir, bool trust_unknown_runs,
                                        s3store::S3Artifacts* s3) {
  std::error_code created;
  // A data dir lost with its database (the records are in S3) is made anew.
  if (s3 != nullptr) fs::create_directories(data_dir, created);
  auto db = store::open_sqlite_store(data_dir + "/state.db");
  if (!db.ok()) return db.error();
  RebuildSummary summary;
  if (s3 != nullptr) {
    Result<std::vector<std::string>> ids = s3->run_ids();
    if (!ids.ok()) return ids.error();
    for (const std::string& id : *ids) {
      Result<std::string> skipped = std::string("not a run id");
      if (is_run_id(id)) {
        Result<std::string> text = s3->get("runs/" + id + "/test_result.json", kMaxRecordBytes);
        // S3 failing is the rebuild's failure, not the record's: nothing is skipped for it.
        if (!text.ok() && text.error().to_string().find("NoSuchKey") == std::string::npos) {
          return text.error();
        }
        skipped = restore(
            **db, id,
            text.ok() ? parse_record_text(*text) : Result<json>(Error{"", "no test_result.json"}),
            trust_unknown_runs);
      }
      TL_RETURN_IF_ERROR(count(summary, id, skipped));
    }
    return summary;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir + "/artifacts/runs", ec)) {
    const std::string id = entry.path().filename().string();
    const Result<std::string> skipped =
        is_run_id(id) ? restore(**db, id, read_record(entry.path()), trust_unknown_runs)
                      : Result<std::string>(std::string("not a run id"));
    TL_RETURN_IF_ERROR(count(summary, id, skipped));
  }
  return summary;
}

}  // namespace testlooper::server
