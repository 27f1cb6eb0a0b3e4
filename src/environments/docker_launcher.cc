// The docker environment: one `docker run --rm` per command, removed on timeout or kill too.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <set>
#include <sstream>

#include "docker_proxy/docker_proxy.h"
#include "environments/child_process.h"
#include "environments/environments.h"
#include "environments/launchers.h"

namespace testlooper::environments {
namespace {

// `docker run` exits 125 when the engine, not the command, failed.
constexpr int kDockerRunFailed = 125;

// Container names allow [a-zA-Z0-9_.-]; anything else in a run id becomes '_'.
std::string container_name(const std::string& run_id) {
  static std::atomic<uint64_t> counter{0};
  std::string name = "testlooper-";
  for (const char c : run_id) name += isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// Where a test's container finds its scoped docker, and how it is told.
constexpr const char* kScopedSocket = "/var/run/testlooper-docker.sock";

std::vector<std::string> docker_run_argv(const std::string& docker, const std::string& tag,
                                         const std::string& name, const Command& command,
                                         const std::string& scoped_socket) {
  std::vector<std::string> argv = {
      docker,       "run",
      "--rm",       "--init",
      "--name",     name,
      "--label",    "testlooper.run=" + command.run_id,
      "--label",    owner_label(command.owner),
      "--hostname", "testlooperworker",
      "--user",     std::to_string(::getuid()) + ":" + std::to_string(::getgid())};
  for (const std::string& mount : command.mounts) {
    argv.insert(argv.end(), {"--volume", mount + ":" + mount});
  }
  if (!scoped_socket.empty()) {
    argv.insert(argv.end(), {"--volume", scoped_socket + ":" + kScopedSocket, "--env",
                             std::string("DOCKER_HOST=unix://") + kScopedSocket});
  }
  for (const Command::Published& p : command.publish) {
    const std::string address =
        p.address.find(':') != std::string::npos ? "[" + p.address + "]" : p.address;
    const std::string port = std::to_string(p.port);
    argv.insert(argv.end(), {"--publish", address + ":" + port + ":" + port});
  }
  if (!command.working_dir.empty()) argv.insert(argv.end(), {"--workdir", command.working_dir});
  for (const auto& [variable, value] : command.env) {
    argv.insert(argv.end(), {"--env", variable + "=" + value});
  }
  argv.insert(argv.end(), {tag, "/bin/bash", "-c", command.script});
  return argv;
}

// The run's scoped docker (docker_proxy.h): its socket lives in a private directory of its own
// under /tmp (a unix socket path holds at most 107 bytes). Ending (or destroying) it stops the
// proxy and removes everything the run created through it.
class ScopedDocker {
 public:
  static Result<std::unique_ptr<ScopedDocker>> start(const Command& command) {
    const std::string engine = docker_proxy::engine_socket_from_environment();
    if (engine.empty()) return std::unique_ptr<ScopedDocker>();  // tcp/ssh engines: none
    char dir[] = "/tmp/tl-docker-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return Error{"scoped docker", "mkdtemp failed"};
    auto scoped = std::unique_ptr<ScopedDocker>(new ScopedDocker(dir, engine, command));
    Result<std::unique_ptr<docker_proxy::DockerProxy>> proxy = docker_proxy::DockerProxy::start(
        docker_proxy::Scope{command.run_id, command.owner, command.mounts}, scoped->socket(),
        engine);
    if (!proxy.ok()) return proxy.error();
    scoped->proxy_ = std::move(proxy).value();
    return scoped;
  }

  ~ScopedDocker() { (void)end(); }

  std::string socket() const { return dir_ + "/docker.sock"; }

  // Stops the proxy and removes what the run created; idempotent. Error: what is left.
  Status end() {
    if (ended_) return {};
    ended_ = true;
    if (proxy_) proxy_->stop();
    Status removed = docker_proxy::remove_scope(engine_, run_id_);
    ::rmdir(dir_.c_str());
    return removed;
  }

 private:
  ScopedDocker(std::string dir, std::string engine, const Command& command)
      : dir_(std::move(dir)), engine_(std::move(engine)), run_id_(command.run_id) {}

  std::string dir_;
  std::string engine_;
  std::string run_id_;
  std::unique_ptr<docker_proxy::DockerProxy> proxy_;
  bool ended_ = false;
};

class DockerProcess : public Process {
 public:
  DockerProcess(ChildProcess client, std::string docker, std::string name)
      : client_(std::move(client)), docker_(std::move(docker)), name_(std::move(name)) {}

  ~DockerProcess() override {
    if (!finished_) remove_container();
  }

  Result<Exit> wait_until(std::chrono::steady_clock::time_point deadline) override {
    const std::optional<int> status = client_.wait_exit(deadline);
    if (!status) {
      remove_container();
      client_.wait_exit(std::chrono::steady_clock::time_point::max());
    }
    {
      std::lock_guard lock(mutex_);
      client_.kill_group(SIGKILL);
      client_.reap();
    }
    finished_ = true;
    if (killed_) return Exit{Exit::Kind::kKilled, -1};
    if (!status) return Exit{Exit::Kind::kTimedOut, -1};
    if (!WIFEXITED(*status)) {
      remove_container();
      return Error{"docker",
                   "the docker client died with signal " + std::to_string(WTERMSIG(*status))};
    }
    if (WEXITSTATUS(*status) == kDockerRunFailed) {
      return Error{"docker run", "the engine could not run the container (exit 125; see log)"};
    }
    return Exit{Exit::Kind::kExited, WEXITSTATUS(*status)};
  }

  void kill() override {
    killed_ = true;
    remove_container();
  }

 private:
  // `docker rm -f` kills the container's whole tree and removes it; the client then exits.
  void remove_container() {
    (void)run_and_capture({docker_, "rm", "--force", name_});
    std::lock_guard lock(mutex_);
    client_.kill_group(SIGKILL);
  }

  std::mutex mutex_;  // orders kill_group() from kill() against reap() in wait_until()
  ChildProcess client_;
  std::string docker_;
  std::string name_;
  std::atomic<bool> killed_{false};
  bool finished_ = false;
};

class DockerLauncher : public Launcher {
 public:
  DockerLauncher(std::string docker, std::string tag, std::string how)
      : docker_(std::move(docker)), tag_(std::move(tag)), how_(std::move(how)) {}

  Result<std::unique_ptr<Process>> start(const Command& command) override {
    const std::string name = container_name(command.run_id);
    Result<std::string> scoped_socket = scoped_docker(command);
    if (!scoped_socket.ok()) return scoped_socket.error();
    SpawnSpec spec;
    spec.argv = docker_run_argv(docker_, tag_, name, command, *scoped_socket);
    spec.env = inherited_environment();
    if (!command.owner.empty()) spec.env.push_back(owner_marker(command.owner));
    spec.stdout_fd = command.log_fd;
    spec.stderr_fd = command.log_fd;
    Result<ChildProcess> client = ChildProcess::spawn(spec);
    if (!client.ok()) return client.error();
    return std::unique_ptr<Process>(
        std::make_unique<DockerProcess>(std::move(client).value(), docker_, name));
  }

  std::string describe() const override { return "docker " + tag_ + " (" + how_ + ")"; }
  bool runs_in_containers() const override { return true; }

  Status end_run(const std::string& run_id) override {
    std::unique_ptr<ScopedDocker> scoped;
    {
      std::lock_guard lock(mutex_);
      auto it = scoped_.find(run_id);
      if (it == scoped_.end()) return {};
      scoped = std::move(it->second);
      scoped_.erase(it);
    }
    return scoped ? scoped->end() : Status();
  }

 private:
  // The socket of the run's scoped docker, started with its first command ("" = none: the
  // engine is not a unix socket). Its later commands share it: a container started in one
  // stage is there in the next.
  Result<std::string> scoped_docker(const Command& command) {
    std::lock_guard lock(mutex_);
    auto it = scoped_.find(command.run_id);
    if (it == scoped_.end()) {
      Result<std::unique_ptr<ScopedDocker>> started = ScopedDocker::start(command);
      if (!started.ok()) return started.error();
      it = scoped_.emplace(command.run_id, std::move(started).value()).first;
    }
    return it->second ? it->second->socket() : "";
  }

  std::mutex mutex_;                                             // guards scoped_
  std::map<std::string, std::unique_ptr<ScopedDocker>> scoped_;  // by run id, until end_run
  std::string docker_;
  std::string tag_;
  std::string how_;
};

// Removes the objects `list` shows whose label `label` is one of `owners`, with `remove`. False
// when the listing failed (no docker CLI or engine).
bool remove_labelled(const std::string& docker, const std::vector<std::string>& list,
                     const std::vector<std::string>& remove, const std::set<std::string>& owners,
                     const std::string& label = "testlooper.owner") {
  std::vector<std::string> argv = {docker};
  argv.insert(argv.end(), list.begin(), list.end());
  const std::string id = list[0] == "volume" ? "{{.Name}}" : "{{.ID}}";
  argv.insert(argv.end(),
              {"--filter", "label=" + label, "--format", id + " {{.Label \"" + label + "\"}}"});
  Result<Captured> listed = run_and_capture(argv);
  if (!listed.ok() || listed->exit_code != 0) return false;
  argv = {docker};
  argv.insert(argv.end(), remove.begin(), remove.end());
  const size_t fixed = argv.size();
  std::istringstream lines(listed->output);
  for (std::string line; std::getline(lines, line);) {
    const size_t space = line.find(' ');
    if (space != std::string::npos && owners.count(line.substr(space + 1))) {
      argv.push_back(line.substr(0, space));
    }
  }
  if (argv.size() > fixed) (void)run_and_capture(argv);
  return true;
}

}  // namespace

std::string owner_label(const std::string& owner) { return "testlooper.owner=" + owner; }

void kill_leftovers(const std::vector<std::string>& owners, const std::string& docker) {
  std::set<std::string> wanted;
  for (const std::string& owner : owners) {
    if (owner.empty()) continue;
    wanted.insert(owner);
    // Docker clients too: a container outlives its client, so it is removed by its label next.
    kill_all_with_env(owner_marker(owner), std::chrono::seconds(10));
  }
  if (wanted.empty()) return;
  // Containers first (networks and volumes in use cannot go), then what scoped dockers created
  // (docker_proxy labels them with the owner too). One listing of each kind for all owners: each
  // docker call costs tens of milliseconds.
  if (!remove_labelled(docker, {"ps", "--all"}, {"rm", "--force"}, wanted)) return;  // no engine
  (void)remove_labelled(docker, {"network", "ls"}, {"network", "rm"}, wanted);
  (void)remove_labelled(docker, {"volume", "ls"}, {"volume", "rm", "--force"}, wanted);
}

void kill_run_leftovers(const std::string& run_id, const std::string& docker) {
  kill_all_with_env(run_marker(run_id), std::chrono::seconds(10));
  kill_terminal_leftovers(run_id);
  if (!remove_labelled(docker, {"ps", "--all"}, {"rm", "--force"}, {run_id}, "testlooper.run"))
    return;  // no engine
  if (const std::string engine = docker_proxy::engine_socket_from_environment(); !engine.empty())
    (void)docker_proxy::remove_scope(engine, run_id);
}

std::shared_ptr<Launcher> make_docker_launcher(std::string docker, std::string tag,
                                               std::string how) {
  return std::make_shared<DockerLauncher>(std::move(docker), std::move(tag), std::move(how));
}

}  // namespace testlooper::environments
