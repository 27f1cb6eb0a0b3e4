#include "server/rebuild.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "server/protocol.h"
#include "store/store.h"

namespace testlooper::server {
namespace {

using nlohmann::json;


// "repo/<40-hex sha>/name" -> repo, sha, name; false when it is not of that shape.
bool split_full_name(const std::string& full, store::RunRow& run) {
  for (size_t slash = full.find('/'); slash != std::string::npos; slash = full.find('/', slash + 1)) {
    if (full.size() > slash + 42 && full[slash + 41] == '/') {
      run.repo = full.substr(0, slash);
      run.commit = full.substr(slash + 1, 40);
      run.name = full.substr(slash + 42);
      return true;
    }
  }
  return false;
}

}  // namespace

Result<RebuildSummary> rebuild_database(const std::string& data_dir) {
  namespace fs = std::filesystem;
  auto db = store::open_sqlite_store(data_dir + "/state.db");
  if (!db.ok()) return db.error();
  RebuildSummary summary;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir + "/artifacts/runs", ec)) {
    std::ifstream in(entry.path() / "test_result.json");
    const json r = json::parse(in, nullptr, false);
    store::RunRow run;
    if (!r.is_object() || !split_full_name(r.value("name", ""), run)) {
      ++summary.skipped;
      continue;
    }
    run.id = r.value("id", entry.path().filename().string());
    run.hash = r.value("hash", "");
    run.kind = r.value("kind", "test");
    run.worker = "rebuilt";
    run.started = r.value("start_timestamp", 0.0);
    const store::RunRow started = run;
    TL_RETURN_IF_ERROR((*db)->start_run(started));
    run.state = run_state_of_outcome(r.value("outcome", ""));
    run.exit_code = r.value("exit_code", 0);
    run.ended = r.value("end_timestamp", 0.0);
    run.detail = r.value("message", "");
    std::vector<store::CaseRow> cases;
    if (r.contains("individualTests")) {
      for (const auto& t : r["individualTests"]) {
        cases.push_back({t.value("testName", ""), t.value("success", false), t.value("elapsed", 0.0)});
      }
    }
    auto recorded = (*db)->finish_run(run, cases);
    if (!recorded.ok()) return recorded.error();
    *recorded ? ++summary.runs : ++summary.skipped;
  }
  return summary;
}

}  // namespace testlooper::server
