// The worker protocol's messages as typed values (docs/api.md "The worker protocol"), and small
// shared pieces of the server: the wall clock, and the store's state for a worker's result
// outcome ("success" | "failure" | "cancelled" | anything else = an infrastructure failure,
// also the words the runner writes in test_result.json).
//
// Everything a worker sends is hostile until parse_worker_message has checked it field by field:
// a message that does not match its grammar is an Error (the server then closes that worker's
// connection with the error as the reason). Pure functions: no state, thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/case_message.h"
#include "core/error.h"
#include "s3store/s3_artifacts.h"
#include "store/store.h"

namespace testlooper::server {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline store::RunState run_state_of_outcome(const std::string& outcome) {
  if (outcome == "success") return store::RunState::kSucceeded;
  if (outcome == "failure") return store::RunState::kFailed;
  if (outcome == "cancelled") return store::RunState::kCancelled;
  return store::RunState::kInfraFailed;
}

// Limits of the protocol: longer or larger values make a message invalid.
inline constexpr size_t kMaxWorkerIdSize = 200;
inline constexpr size_t kMaxListedRuns = 10000;   // "running", "finished", "cases" entries
inline constexpr size_t kMaxTextField = 1 << 20;  // "message", a case's "name", "host"
inline constexpr int kMaxCores = 1 << 16;
inline constexpr int kMaxRamGb = 1 << 24;
inline constexpr size_t kMaxPlatforms = 16;  // "platforms" entries
inline constexpr size_t kMaxPlatformName = 32;

struct CaseResult {
  std::string name;
  bool success = false;
  double elapsed = 0;
  std::string message;            // capped as core/case_message.h says
  std::vector<std::string> logs;  // core/case_message.h is_case_log_name, at most kMaxCaseLogs
  bool skipped = false;           // reported, not run: never counted
};

// {"type": "result", "run_id", "outcome", "exit_code"?, "message"?, "start"?, "end"?, "cases"?,
//  "s3_keys"?, "log"?}
struct ResultMessage {
  std::string run_id;   // core/ids.h is_run_id
  std::string outcome;  // "success" | "failure" | "cancelled" | "infra"
  int exit_code = 0;
  std::string message;
  std::optional<double> end;  // seconds since the epoch
  std::vector<CaseResult> cases;
  // The run's environment could not be prepared (e.g. its Dockerfile did not build): the
  // failure is counted against that environment, for every object that uses it.
  bool environment_failed = false;
  // The worker put the run's files in S3 itself (docs/api.md "Files"): these objects, keys
  // relative to the key prefix, each {"key", "size", "etag"?}; at most kMaxListedRuns. nullopt =
  // it did not (its files came through the server). The server checks them before it records.
  std::optional<std::vector<s3store::PutKey>> s3_keys;
  // The end of the run's log not sent in "log" messages, appended before the result is
  // recorded (a job's "log_in_result" asks for it: issue 18). Any length the message holds.
  std::string log;
};

// {"type": "hello", "worker", "cores", "ram_gb", "host"?, "shared_disk"?, "platforms"?, "docker"?,
//  "ami"?, "image"?, "running"?, "finished"?}
struct HelloMessage {
  std::string worker;  // 1 to kMaxWorkerIdSize visible characters
  int cores = 1;       // 1..kMaxCores
  int ram_gb = 0;      // 0..kMaxRamGb
  std::string host;
  bool shared_disk = false;
  // What it can run. A worker that does not say (older than these fields) is taken as a Linux
  // worker that may run Dockerfile environments, as such workers did; one that cannot fails
  // those runs as infrastructure failures, which back off.
  std::vector<std::string> platforms = {"linux"};  // 1..kMaxPlatforms names of [a-z0-9_-]
  bool docker = true;
  bool ami = false;
  // It reads the acks of its results from a job's "acks" too (issue 18: one message, not two,
  // when it is given its next job as its result is stored). Older workers leave it out.
  bool job_acks = false;
  std::string image;  // with ami: the AMI the machine was booted from (worker --ami), 0..128 chars
  std::vector<std::string> running;  // run ids
  std::vector<ResultMessage> finished;
};

struct HeartbeatMessage {};

// {"type": "log", "run_id", "data"}
struct LogMessage {
  std::string run_id;
  std::string data;
};

// {"type": "deployment", "run_id": the deployment's id, "state": "running" | "stopped",
//  "message"?}: its environment is ready (inputs staged, command started), or it ended.
struct DeploymentMessage {
  std::string run_id;
  std::string state;
  std::string message;
};

// {"type": "terminal", "run_id": the deployment's id, "data": base64 of terminal output}
struct TerminalMessage {
  std::string run_id;
  std::string data;  // decoded
};
inline constexpr size_t kMaxTerminalChunk = 1 << 20;  // decoded bytes of one "terminal" message

using WorkerMessage = std::variant<HelloMessage, HeartbeatMessage, LogMessage, ResultMessage,
                                   DeploymentMessage, TerminalMessage>;

// `text` as one of the messages a worker sends; an Error saying what is wrong otherwise (never
// throws). Unknown fields are ignored; a missing required field, a wrong type, a number out of
// its range or an id outside its grammar is an error.
Result<WorkerMessage> parse_worker_message(std::string_view text);

}  // namespace testlooper::server
