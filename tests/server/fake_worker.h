// A worker played by a test, the strongest attacker the server's defences must stop: it has the
// worker token and gets real jobs (with their upload tokens), then sends or uploads whatever the
// test crafts. It connects to /api/worker with the token, says hello, and keeps the jobs the
// server sends it by object name. Not thread-safe; one per connection.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "server_fixture.h"
#include "ws_client.h"

namespace testlooper::fixtures {

// A job the server gave the fake worker.
struct FakeJob {
  std::string run_id;
  std::string upload_token;  // what the run's uploads must carry (X-TestLooper-Upload)
  nlohmann::json message;    // the whole job message
};

class FakeWorker {
 public:
  // Connects with `token` and says hello as worker `id`; `hello` adds (or overrides) fields of
  // the hello. connected() is false when the upgrade failed.
  FakeWorker(int port, const std::string& token, const std::string& id, int cores = 8,
             int ram_gb = 8, const nlohmann::json& hello = nlohmann::json::object())
      : socket_(port, "/api/worker", token) {
    nlohmann::json message = {
        {"type", "hello"}, {"worker", id}, {"cores", cores}, {"ram_gb", ram_gb}, {"host", "fake"}};
    message.update(hello);
    if (socket_.connected()) socket_.send(message.dump());
  }

  bool connected() const { return socket_.connected(); }
  WsClient& socket() { return socket_; }

  // The job for the object named `name` (its first, when several came), once the server has
  // sent it; nullopt when none came within `seconds` or the connection closed.
  std::optional<FakeJob> job(const std::string& name, double seconds = 90) {
    const auto until = deadline(seconds);
    while (!jobs_.count(name)) {
      if (!read_one(until)) return std::nullopt;
    }
    return jobs_.at(name);
  }

  // Every job for the object named `name`, in the order they came, once there are `count` of
  // them; fewer when no more came within `seconds` or the connection closed.
  std::vector<FakeJob> jobs(const std::string& name, size_t count, double seconds = 90) {
    const auto until = deadline(seconds);
    while (all_jobs_[name].size() < count) {
      if (!read_one(until)) break;
    }
    return all_jobs_[name];
  }

  // Reads what the server sends until `done()` holds; false when it did not within `seconds`.
  template <class F>
  bool read_until(F done, double seconds = 30) {
    const auto until = deadline(seconds);
    while (!done()) {
      if (!read_one(until)) return false;
    }
    return true;
  }
  // Whether the server sent `cancel` for run `run_id`, waiting up to `seconds` for it.
  bool cancelled(const std::string& run_id, double seconds = 30) {
    return read_until([&] { return cancels_.count(run_id) > 0; }, seconds);
  }
  // Whether the server acknowledged run `run_id` (it stored the result), waiting up to `seconds`.
  bool acked(const std::string& run_id, double seconds = 30) {
    return read_until([&] { return acked_.count(run_id) > 0; }, seconds);
  }
  // The run ids acknowledged by an `ack` message of their own (not in a job), so far.
  const std::set<std::string>& ack_messages() const { return ack_messages_; }
  // Whether a `cancel` for `run_id` came among the messages read so far (no waiting): messages
  // come in order, so after job() returns a job the server sent later, this is final.
  bool cancel_seen(const std::string& run_id) const { return cancels_.count(run_id) > 0; }

  // Reports `outcome` ("success", "failure", "infra", "cancelled") for run `run_id` and waits until
  // the server acknowledges it (it has recorded the result); false when no ack came within
  // `seconds`. `extra` adds (or overrides) fields of the result.
  bool report(const std::string& run_id, const std::string& outcome, double seconds = 30,
              const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json result = {{"type", "result"},
                             {"run_id", run_id},
                             {"outcome", outcome},
                             {"exit_code", outcome == "success" ? 0 : 1}};
    result.update(extra);
    if (!socket_.send(result.dump())) return false;
    const auto until = deadline(seconds);
    while (!acked_.count(run_id)) {
      if (!read_one(until)) return false;
    }
    return true;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static Clock::time_point deadline(double seconds) {
    return Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  }

  // Reads one message before `until` and keeps what it says; false when none came.
  bool read_one(Clock::time_point until) {
    const double left = std::chrono::duration<double>(until - Clock::now()).count();
    if (left <= 0) return false;
    const std::optional<std::string> text = socket_.read(left);
    if (!text) return false;
    // Read with find(), never operator[]: on a const json a missing key is undefined behaviour
    // (a job with no "acks" read garbage there and once crashed judge_test), and on a mutable
    // one it adds the key to the job the test is given.
    const nlohmann::json message = nlohmann::json::parse(*text, nullptr, false);
    auto text_at = [](const nlohmann::json& object, const char* key) -> std::optional<std::string> {
      if (!object.is_object()) return std::nullopt;
      auto it = object.find(key);
      if (it == object.end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    };
    const std::optional<std::string> type = text_at(message, "type");
    const std::optional<std::string> run_id = text_at(message, "run_id");
    if (!type || !run_id) return true;
    if (*type == "ack") {
      acked_.insert(*run_id);
      ack_messages_.insert(*run_id);
    }
    // A worker that says "job_acks" in its hello may get its acks in its next job (issue 18).
    if (auto acks = message.find("acks");
        *type == "job" && acks != message.end() && acks->is_array()) {
      for (const auto& id : *acks) {
        if (id.is_string()) acked_.insert(id.get<std::string>());
      }
    }
    if (*type == "cancel") cancels_.insert(*run_id);
    const auto object = message.find("object");
    const std::optional<std::string> name =
        object == message.end() ? std::nullopt : text_at(*object, "name");
    const std::optional<std::string> upload_token = text_at(message, "upload_token");
    if (*type == "job" && name && upload_token) {
      const FakeJob job{*run_id, *upload_token, message};
      jobs_.emplace(*name, job);
      all_jobs_[*name].push_back(job);
    }
    return true;
  }

  WsClient socket_;
  std::map<std::string, FakeJob> jobs_;                   // object name -> its first job
  std::set<std::string> acked_;                           // run ids
  std::set<std::string> ack_messages_;                    // run ids acked by an `ack` message
  std::set<std::string> cancels_;                         // run ids the server said to cancel
  std::map<std::string, std::vector<FakeJob>> all_jobs_;  // object name -> its jobs, in order
};

// POSTs the file at `file` to `url` as a worker's upload, with `worker_token` and `upload_token`
// (each header left out when empty): the HTTP status and the reply's body.
inline std::pair<int, std::string> upload_file(const std::string& url, const std::string& file,
                                               const std::string& worker_token,
                                               const std::string& upload_token) {
  std::string headers = "-H 'Content-Type: application/octet-stream' ";
  if (!worker_token.empty()) {
    headers += "-H " + shell_quote("Authorization: Bearer " + worker_token) + " ";
  }
  if (!upload_token.empty()) {
    headers += "-H " + shell_quote("X-TestLooper-Upload: " + upload_token) + " ";
  }
  const std::string out = capture("curl -s -w '\\n%{http_code}' " + headers + "--data-binary @" +
                                  shell_quote(file) + " " + shell_quote(url));
  const size_t nl = out.rfind('\n');
  if (nl == std::string::npos) return {0, out};
  return {std::stoi(out.substr(nl + 1)), out.substr(0, nl)};
}

}  // namespace testlooper::fixtures
