// What the worker needs to take a job (worker.cc): the server's messages checked field by field
// (docs/api.md "The worker protocol") before anything of them is used, and the runners for the
// stores and repos jobs name.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "artifacts/artifacts.h"
#include "core/error.h"
#include "definitions/definitions.h"
#include "environments/environments.h"
#include "fleet/s3.h"
#include "runner/runner.h"

namespace testlooper::worker {

// {"type": string, "run_id": a run id, ...}
bool is_server_message(const nlohmann::json& m);

// A job's fields have the types the worker reads them as (docs/api.md "The worker protocol").
bool is_job(const nlohmann::json& m);

// A "job" or "deploy" message's fields as the worker uses them, defaults for those left out.
struct Job {
  std::string run_id;
  int cores = 1;   // 1..65536
  int ram_gb = 0;  // 0..2^24
  int64_t max_log_bytes = kDefaultMaxLogBytes;
  bool log_in_result = false;  // the server reads a result's "log"
  std::string upload_token;
  // Both given: the worker shares the server's disk and works in them.
  std::optional<std::string> repos_dir, artifacts_dir;
  nlohmann::json object = nlohmann::json::object();  // the resolved object, not yet parsed
  std::optional<nlohmann::json> s3;                  // an object (s3_options reads it)
  double max_seconds = 86400;                        // a deployment's: 1..1e7
  bool debug = false;                                // a debugged run's deployment
};

// The fields of `m`, which is_job accepted (never throws then).
Job read_job(const nlohmann::json& m);

// The run ids in a job's "acks" (this worker's results the server stored); entries that are not
// run ids are left out.
std::vector<std::string> job_acks(const nlohmann::json& m);

// A job's "s3" (the bucket of the server's artifacts: {"bucket", "region"?, "key_prefix"?,
// "endpoint_url"?}, never credentials), or an Error saying what is wrong with it.
Result<fleet::S3Options> s3_options(const nlohmann::json& s3);

// The word a result message gives an outcome ("success", "failure", "cancelled", "infra").
std::string outcome_word(runner::Outcome o);

// Runners for the stores and repos jobs name (a local server shares its disk with its workers).
class Runners {
 public:
  Runners(bool on_host, const std::string& ami) : launchers_({.on_host = on_host, .ami = ami}) {}

  // The launcher for `environment`, preparing it first (an image build): the runner's own call
  // then finds it ready.
  Result<std::shared_ptr<environments::Launcher>> prepare(
      const definitions::Environment& environment) {
    return launchers_.launcher_for(environment);
  }
  bool runs_dockerfiles() const { return launchers_.runs_dockerfiles(); }

  runner::Runner& get(const std::string& store_dir, const std::string& repos_dir) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& entry = runners_[{store_dir, repos_dir}];
    if (!entry) {
      entry = std::make_unique<Entry>();
      entry->store = std::make_unique<artifacts::Store>(store_dir);
      entry->exporter = runner::make_git_exporter([repos_dir](const std::string& name) {
        return std::optional<std::string>(repos_dir + "/" + name);
      });
      entry->runner = std::make_unique<runner::Runner>(runner::RunnerContext{
          entry->store.get(), entry->exporter.get(),
          [this](const definitions::Environment& e) { return launchers_.launcher_for(e); },
          &runner::system_clock(), kill_leftovers()});
    }
    return *entry->runner;
  }

  // The runner for jobs without the server's disk: the worker's own store, sources over HTTP.
  runner::Runner& remote(artifacts::Store& store, runner::SourceExporter& sources) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!remote_) {
      remote_ = std::make_unique<runner::Runner>(runner::RunnerContext{
          &store, &sources,
          [this](const definitions::Environment& e) { return launchers_.launcher_for(e); },
          &runner::system_clock(), kill_leftovers()});
    }
    return *remote_;
  }

 private:
  std::function<void(const std::vector<std::string>&)> kill_leftovers() {
    return [this](const std::vector<std::string>& owners) { launchers_.kill_leftovers(owners); };
  }

  struct Entry {
    std::unique_ptr<artifacts::Store> store;
    std::unique_ptr<runner::SourceExporter> exporter;
    std::unique_ptr<runner::Runner> runner;
  };
  environments::LauncherFactory launchers_;
  std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Entry>> runners_;
  std::unique_ptr<runner::Runner> remote_;
};

}  // namespace testlooper::worker
