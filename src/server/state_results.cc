// Storing the results of runs (ServerState, part of state.h): a result is written with the next
// new run or at the end of update() (pending_results_), waits with back-off while the store
// cannot write (unstored_), or first has its files put in S3 on another thread (s3_puts_); it is
// acknowledged to its worker only once stored. Then its counts, holds and events (result_stored).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "artifacts/artifacts.h"
#include "artifacts/transfer.h"
#include "server/event_log.h"
#include "server/http.h"
#include "server/state.h"

namespace testlooper::server {
namespace {

using nlohmann::json;

// Puts run `run`'s files in S3: a succeeded build's files, then its record and log `log` (only
// the log when `record_in_s3`: its worker put the rest).
Status put_run_files(s3store::S3Artifacts& s3, const std::string& artifacts_dir,
                     const store::RunRow& run, const std::string& log, bool record_in_s3) {
  const artifacts::Store local(artifacts_dir);
  if (run.kind == "build" && run.state == store::RunState::kSucceeded) {
    TL_RETURN_IF_ERROR(s3.put_build(local, run.hash));
  }
  if (record_in_s3) return s3.put_log(run.id, log);
  return s3.put_run(run.id, local.run_dir(run.id), log);
}

// Checks what the worker of `run` says it put in S3 (`keys`, named within its run already): each
// object is there with its size and ETag, the record is no larger than an upload may be
// (kMaxFileBodyBytes), a succeeded build is complete in S3; then fetches the run's record into
// the local store, as if it had been uploaded.
Status verify_worker_keys(s3store::S3Artifacts& s3, const std::string& artifacts_dir,
                          const store::RunRow& run, const std::vector<s3store::PutKey>& keys) {
  TL_RETURN_IF_ERROR(s3.verify(keys));
  // The record comes to the server's disk: no larger than an upload of it may be.
  uint64_t record_bytes = 0;
  for (const s3store::PutKey& k : keys) {
    if (k.key.rfind("runs/", 0) == 0) record_bytes += k.size;
  }
  if (record_bytes > kMaxFileBodyBytes) {
    return Error{"runs/" + run.id + "/", fmt::format("holds {} bytes, more than an upload may ({})",
                                                     record_bytes, kMaxFileBodyBytes)};
  }
  if (run.kind == "build" && run.state == store::RunState::kSucceeded) {
    const std::string complete = "builds/" + run.hash + "/" + artifacts::kCompleteFile;
    Result<bool> there = s3.has(complete);
    if (!there.ok()) return there.error();
    if (!*there) return Error{complete, "is not in the bucket: the build is not complete there"};
  }
  return s3.fetch_run(artifacts::Store(artifacts_dir), run.id, keys);
}

}  // namespace

bool ServerState::record_result(store::RunRow run, const std::vector<store::CaseRow>& cases,
                                bool environment_failed,
                                std::optional<std::vector<s3store::PutKey>> s3_keys,
                                bool with_next_write) {
  if (auto c = cancels_.find(run.id); c != cancels_.end()) {
    if (run.state == store::RunState::kCancelled) run.detail = c->second;
    cancels_.erase(c);
  }
  active_runs_.erase(run.id);
  open_logs_.erase(run.id);
  upload_tokens_.erase(run.id);
  for (auto& [id, w] : workers_) w.running.erase(run.id);
  if (auto w = workers_.find(run.worker); w != workers_.end()) {
    w->second.recent.push_front(run);
    if (w->second.recent.size() > kRecentRuns) w->second.recent.pop_back();
  }
  // Not stored before the back-off allows, nor before results already waiting.
  const bool may_store = unstored_.empty() && now_seconds() >= store_retry_at_;
  // What a worker put in S3 itself is verified now, whatever the back-off: until then it is not
  // known whether the run taught anything.
  if ((may_store || s3_keys) && s3_ != nullptr) {
    end_log(run.id);  // the log is put whole, with its cut line
    s3store::S3Artifacts* s3 = s3_;
    const std::string artifacts_dir = options_.artifacts_dir, log = log_path(run.id);
    const bool direct = s3_keys.has_value();
    s3_puts_.emplace(run.id, S3Put{{run, cases, environment_failed, false, direct},
                                   std::async(std::launch::async, [s3, artifacts_dir, log, run,
                                                                   keys = std::move(s3_keys)] {
                                     S3PutOutcome out;
                                     if (keys)
                                       out.verified =
                                           verify_worker_keys(*s3, artifacts_dir, run, *keys);
                                     out.put = put_run_files(*s3, artifacts_dir, run, log,
                                                             keys && out.verified.ok());
                                     return out;
                                   })});
    return false;
  }
  // A result that holds nothing back waits for the next write (pending_results_): with the job
  // its worker is given next, one commit instead of two.
  if (may_store && with_next_write && !may_set_hold(run)) {
    pending_results_[run.id] = Unstored{run, cases, environment_failed};
    return false;
  }
  Result<bool> recorded = Error{"", "waiting for earlier results"};
  if (may_store) recorded = store_result(run, cases, false);
  return stored_or_waiting({run, cases, environment_failed}, recorded);
}

ServerState::Unstored* ServerState::waiting_result(const std::string& id) {
  if (auto p = pending_results_.find(id); p != pending_results_.end()) return &p->second;
  if (auto u = unstored_.find(id); u != unstored_.end()) return &u->second;
  if (auto s = s3_puts_.find(id); s != s3_puts_.end()) return &s->second.unstored;
  return nullptr;
}

Status ServerState::store_pending(const store::RunRow* started,
                                  std::vector<std::string>* job_acks) {
  if (pending_results_.empty()) return started != nullptr ? store_.start_run(*started) : Status{};
  std::map<std::string, Unstored> pending;
  pending.swap(pending_results_);
  std::vector<store::Store::FinishedRun> finished;
  for (const auto& [id, u] : pending) finished.push_back({u.run, u.cases});
  const Result<std::vector<bool>> recorded = store_.record_runs(finished, started);
  results_stored_late_ = true;
  size_t i = 0;
  for (auto& [id, u] : pending) {
    if (!recorded.ok()) {
      stored_or_waiting(u, recorded.error());
      continue;
    }
    if (job_acks != nullptr && started != nullptr && u.ack && u.run.worker == started->worker) {
      u.ack = false;  // stored: acknowledged in the job instead
      job_acks->push_back(id);
    }
    stored_or_waiting(u, (*recorded)[i++]);
  }
  if (!recorded.ok()) return recorded.error();
  return {};
}

bool ServerState::stored_or_waiting(const Unstored& u, const Result<bool>& recorded) {
  if (!recorded.ok()) {
    unstored_[u.run.id] = u;
    if (!recorded.error().where.empty())
      store_failed("the result of run " + u.run.id, recorded.error());
    return false;
  }
  // Writing works again once a whole run, started after the last failure, is stored: its log,
  // its files and its result (a start alone proves little: logs and records come later).
  if (u.run.started > store_failed_at_) store_worked();
  result_stored(u.run, *recorded, u.environment_failed);
  acknowledge(u);
  return true;
}

void ServerState::acknowledge(const Unstored& u) {
  if (u.ack) send_ack(u.run.worker, u.run.id);
}

void ServerState::send_ack(const std::string& worker, const std::string& run_id) {
  auto w = workers_.find(worker);
  if (w != workers_.end() && w->second.socket) {
    w->second.socket->send(json{{"type", "ack"}, {"run_id", run_id}}.dump());
  }
}

void ServerState::collect_s3_puts() {
  bool stored = false;
  for (auto it = s3_puts_.begin(); it != s3_puts_.end();) {
    if (it->second.done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    const S3PutOutcome outcome = it->second.done.get();
    const Status& put = outcome.put;
    Unstored u = std::move(it->second.unstored);
    it = s3_puts_.erase(it);
    if (u.record_in_s3 && !outcome.verified.ok()) {
      // Not in S3 as its worker said: the run's result cannot be trusted nor its files served.
      log_event("warn", "s3_keys_unverified",
                {{"worker", printable(u.run.worker)},
                 {"run", u.run.id},
                 {"error", outcome.verified.error().to_string()}});
      u.run.state = store::RunState::kInfraFailed;
      u.run.detail = "the run's files are not in S3 as its worker said: " +
                     outcome.verified.error().to_string();
      u.cases.clear();
      u.environment_failed = false;
      u.record_in_s3 = false;
    } else if (u.record_in_s3) {
      log_event("info", "s3_direct_put", {{"worker", printable(u.run.worker)}, {"run", u.run.id}});
    }
    Result<bool> recorded = Error{"", "waiting for earlier results"};
    // S3 failing is the server's infrastructure failure: the result waits, with back-off.
    if (!put.ok()) {
      recorded = Error{"S3", put.error().to_string()};
    } else if (unstored_.empty() && now_seconds() >= store_retry_at_) {
      recorded = store_.finish_run(u.run, u.cases);
    }
    stored = stored_or_waiting(u, recorded) || stored;
  }
  if (stored) update();
}

void ServerState::retry_unstored(double now) {
  if (unstored_.empty() || now < store_retry_at_) return;
  while (!unstored_.empty()) {
    const Unstored u = unstored_.begin()->second;
    Result<bool> recorded = store_result(u.run, u.cases, u.record_in_s3);
    if (!recorded.ok()) return store_failed("the result of run " + u.run.id, recorded.error());
    unstored_.erase(unstored_.begin());
    result_stored(u.run, *recorded, u.environment_failed);
    acknowledge(u);
  }
  update();
}

Result<bool> ServerState::store_result(const store::RunRow& run,
                                       const std::vector<store::CaseRow>& cases,
                                       bool record_in_s3) {
  if (s3_ != nullptr) {
    end_log(run.id);  // the log is put whole, with its cut line
    const Status put =
        put_run_files(*s3_, options_.artifacts_dir, run, log_path(run.id), record_in_s3);
    // An infrastructure failure of the server's (S3 unreachable, refusing): the result waits in
    // memory and is retried with back-off, as for a full disk; never a test's failure.
    if (!put.ok()) return Error{"S3", put.error().to_string()};
  }
  return store_.finish_run(run, cases);
}

void ServerState::store_failed(const std::string& what, const Error& error) {
  const double now = now_seconds();
  store_failed_at_ = now;
  if (store_delay_ > 0 && now < store_retry_at_) return;  // this attempt was logged already
  store_delay_ = std::clamp(store_delay_ * 2, 2.0, 300.0);
  store_retry_at_ = now + store_delay_;
  // The store's errors name the operation ("store: commit: ..."); the file is the database.
  const std::string failure = error.where == "store"
                                  ? "to " + options_.store_path + ": " + error.message
                                  : "(" + error.to_string() + ")";
  log_event("error", "store_failed",
            {{"message", fmt::format("cannot write {} {}; new runs paused, retrying in {} s "
                                     "({} results waiting)",
                                     what, failure, store_delay_, unstored_.size())}});
}

void ServerState::store_worked() {
  if (store_delay_ == 0) return;
  log_event("info", "store_writable",
            {{"message", "the data dir is writable again (a run was stored whole)"}});
  store_delay_ = 0;
  store_retry_at_ = 0;
}

void ServerState::result_stored(const store::RunRow& run, bool counted, bool environment_failed) {
  ++runs_ended_[{store::to_string(run.state), run.kind}];
  case_cache_.erase(run.hash);
  planner::HashProgress& p = progress_[run.hash];
  plan_index_.progress_changed(run.hash);
  if (p.active > 0) --p.active;
  // An infrastructure failure taught nothing: the budget gets its run back.
  if (run.state == store::RunState::kInfraFailed) {
    log_event("warn", "infra_failure",
              {{"run", run.id},
               {"repo", run.repo},
               {"commit", run.commit},
               {"name", run.name},
               {"worker", run.worker},
               {"reason", run.detail}});
  }
  if (!run.purpose.empty() && run.state == store::RunState::kInfraFailed &&
      extra_used_[run.purpose] > 0) {
    --extra_used_[run.purpose];
  }
  if (counted &&
      (run.state == store::RunState::kSucceeded || run.state == store::RunState::kFailed)) {
    ++p.runs;
    if (run.state == store::RunState::kFailed) ++p.failures;
  }
  // An infrastructure failure while the server's own disk cannot be written is the server's, not
  // the identity's: it does not count towards that identity's back-off.
  if (counted && store_writable()) update_holds(run, environment_failed);
  broadcast(json{{"type", "run"},
                 {"run_id", run.id},
                 {"state", store::to_string(run.state)},
                 {"repo", run.repo},
                 {"commit", run.commit},
                 {"name", run.name}}
                .dump());
  end_log(run.id);
  log_viewers_.ended(run.id);
}

}  // namespace testlooper::server
