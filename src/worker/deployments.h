// The deployments a worker holds (docs/api.md "Deployments"): each one's environment staged and
// its command run by the runner as a run that goes on until it is shut down, on a thread of its
// own, and its terminal (a Pty on this machine, or an exec in its container for a docker
// environment) whose output goes to the server and which takes the keys viewers type. The
// worker's session thread calls deploy/control/end as the server's messages come; the hooks are
// called from the deployments' threads.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "definitions/definitions.h"
#include "environments/terminal.h"
#include "runner/runner.h"

namespace testlooper::worker {

class Deployments {
 public:
  // What a deployment runs with: its object and the runner for where its files are.
  struct Prepared {
    definitions::ResolvedObject object;
    runner::Runner* runner = nullptr;
    bool in_containers = false;  // its environment's commands run in docker containers
  };
  struct Hooks {
    // Prepares a deploy message's job as for a test (its environment, its inputs); nullopt, with
    // the reason in `failure["message"]`, when it cannot.
    std::function<std::optional<Prepared>(const nlohmann::json& job, nlohmann::json& failure)>
        prepare;
    // Queues a message to the server (dropped when there is no connection).
    std::function<void(const std::string& text)> send;
    // The same, waiting while the connection has too much queued (terminal output).
    std::function<void(const std::string& text)> send_when_room;
    // Where a docker environment publishes the deployment's exposed ports: this end's address
    // of the connection to the server.
    std::function<std::string()> publish_address;
  };

  // `dir`: where each deployment's directory is made (<dir>/<id>).
  Deployments(std::string dir, Hooks hooks);
  ~Deployments();  // ends every deployment and waits for them
  Deployments(const Deployments&) = delete;
  Deployments& operator=(const Deployments&) = delete;

  // A "deploy" message: starts the deployment (once per id) on a thread of its own.
  void deploy(const nlohmann::json& job);
  // "input" (base64 keystrokes) and "resize" ({cols, rows}) for deployment `id`'s terminal.
  void control(const std::string& type, const std::string& id, const nlohmann::json& m);
  // A "shutdown": its thread ends the terminal and the run, and says so.
  void end(const std::string& id);
  void end_all();
  // Ends every deployment and waits for their threads.
  void stop();

 private:
  struct Deployment;
  void run(Deployment& d, const nlohmann::json& job, double max_seconds,
           const std::string& publish_address);
  Result<std::unique_ptr<environments::Terminal>> open_terminal(
      const Deployment& d, bool in_containers, const std::filesystem::path& env_file,
      const std::filesystem::path& dir, int cols, int rows);

  const std::string dir_;
  const Hooks hooks_;
  std::mutex deployments_mutex_;  // guards deployments_ and ended_deployments_
  std::map<std::string, std::shared_ptr<Deployment>> deployments_;
  std::vector<std::shared_ptr<Deployment>> ended_deployments_;  // stopping; joined once done
};

}  // namespace testlooper::worker
