#include "worker/deployments.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

#include "environments/environments.h"
#include "fleet/aws.h"
#include "worker/jobs.h"
#include "worker/lifeline.h"
#include "worker/log_pump.h"
#include "worker/terminal.h"

namespace testlooper::worker {

using nlohmann::json;
namespace fs = std::filesystem;

// A deployment this worker holds (docs/api.md "Deployments"): its environment staged and its
// command run by the runner (which keeps the run going until it is cancelled), and a terminal
// (a Pty on this machine, or an exec in its container for a docker environment).
struct Deployments::Deployment {
  std::string id;
  runner::Cancellation cancellation;
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  // Guards the terminal's use from other threads, cols and rows; only the deployment's own
  // thread replaces `terminal` and reads from it.
  std::mutex mutex;
  std::unique_ptr<environments::Terminal> terminal;
  // Keystrokes that came before the terminal's shell wrote anything (its prompt): a shell
  // that is still setting its terminal up may drop them, so they wait (1 MiB at most).
  bool shell_ready = false;
  std::string early_input;
  int cols = 80;
  int rows = 24;
  std::thread thread;
};

namespace {

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_tail(const fs::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

}  // namespace

Deployments::Deployments(std::string dir, Hooks hooks)
    : dir_(std::move(dir)), hooks_(std::move(hooks)) {}

Deployments::~Deployments() { stop(); }

void Deployments::stop() {
  end_all();
  std::vector<std::shared_ptr<Deployment>> ended;
  {
    std::lock_guard<std::mutex> lock(deployments_mutex_);
    ended.swap(ended_deployments_);
  }
  for (auto& d : ended) {
    if (d->thread.joinable()) d->thread.join();
  }
}

// A "deploy" message (the session's io thread): starts the deployment on a thread of its own.
void Deployments::deploy(const json& job) {
  const Job fields = read_job(job);
  const std::string& id = fields.run_id;
  const double max_seconds = fields.max_seconds;
  std::lock_guard<std::mutex> lock(deployments_mutex_);
  std::erase_if(ended_deployments_, [](const std::shared_ptr<Deployment>& d) {
    if (!d->done) return false;
    d->thread.join();
    return true;
  });
  if (deployments_.count(id)) return;
  auto d = std::make_shared<Deployment>();
  d->id = id;
  deployments_[id] = d;
  d->thread = std::thread([this, d, job, max_seconds, address = hooks_.publish_address()] {
    run(*d, job, max_seconds, address);
  });
}

// A new terminal for `d`: nullptr while its environment is not ready (its variables not saved
// in `env_file` yet; no container of it running).
Result<std::unique_ptr<environments::Terminal>> Deployments::open_terminal(const Deployment& d,
                                                                           bool in_containers,
                                                                           const fs::path& env_file,
                                                                           const fs::path& dir,
                                                                           int cols, int rows) {
  if (in_containers) return environments::open_docker_terminal(d.id, cols, rows);
  std::string env;
  if (fs::exists(env_file)) env = read_tail(env_file, 1 << 20);
  std::vector<std::string> vars = split_environment(env);
  if (vars.empty()) return std::unique_ptr<environments::Terminal>();
  vars = environments::terminal_environment(std::move(vars), d.id);
  std::string cwd = dir.string();
  for (const auto& v : vars) {
    if (v.starts_with("TEST_INPUTS=")) cwd = v.substr(12);
  }
  auto pty = std::make_unique<Pty>();
  if (Status started = pty->spawn(vars, cwd, cols, rows); !started.ok()) return started.error();
  return std::unique_ptr<environments::Terminal>(std::move(pty));
}

// `publish_address`: where a docker environment publishes the deployment's exposed ports.
void Deployments::run(Deployment& d, const json& job, double max_seconds,
                      const std::string& publish_address) {
  lifeline_hold(d.id);
  const fs::path dir = fs::absolute(fs::path(dir_) / d.id);
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  const fs::path env_file = dir / "env";
  json failure = json::object();
  std::string why = "shut down";
  std::optional<Prepared> prepared = hooks_.prepare(job, failure);
  if (!prepared) {
    why = failure.value("message", "cannot prepare the deployment");
  } else {
    definitions::ResolvedObject& o = prepared->object;
    const bool in_containers = prepared->in_containers;
    // Debugging a run: its inputs and environment, none of its commands (a person runs them).
    const Job fields = read_job(job);
    if (fields.debug) o.stages.clear();
    // First, whatever happens, the variables its commands see (for a terminal on this machine;
    // one in a container gets them from its container); last, a command that keeps the run
    // (and its work directory, and in docker its last container) alive until it is cancelled.
    definitions::Stage capture;
    const std::string tmp = (dir / "env.tmp").string();
    // Never a failed stage (which would skip the deployment's own): in a container the
    // worker's directory is not there, and there is no terminal yet.
    capture.command = "{ env -0 > " + shell_quote(tmp) + " && mv " + shell_quote(tmp) + " " +
                      shell_quote(env_file.string()) + "; } 2>/dev/null || true";
    capture.always_run = true;
    capture.order = o.stages.empty() ? 0 : o.stages.front().order - 1;
    definitions::Stage keep;
    keep.command = "while :; do sleep 3600; done";
    keep.always_run = true;
    keep.order = o.stages.empty() ? 1 : o.stages.back().order + 1;
    // In docker each command is a container of its own: the last one's stays up after the
    // command ends (run in a subshell, however it ends), so that what it started runs on next
    // to the terminal, which is in that container. The separate last stage still keeps a
    // container up when an earlier stage failed (or there is none: a debugged run).
    if (in_containers && !o.stages.empty() && !o.stages.back().command.empty())
      o.stages.back().command = "(\n" + o.stages.back().command + "\n)\n" + keep.command;
    if (!in_containers) o.stages.insert(o.stages.begin(), capture);
    o.stages.push_back(keep);
    o.timeout = static_cast<int>(max_seconds) + 60;
    runner::RunRequest request{&o, d.id, fields.cores, fields.ram_gb, &d.cancellation, {}};
    if (in_containers) request.publish_address = publish_address;
    std::atomic<bool> ran{false};
    runner::RunResult run;
    std::thread running([&] {
      run = prepared->runner->run(request, {});
      ran = true;
    });
    bool announced = false;
    auto spawned_at = std::chrono::steady_clock::now();
    while (!d.stop && !ran) {
      bool shell = false;
      int cols = 0, rows = 0;
      {
        std::lock_guard<std::mutex> lock(d.mutex);
        shell = d.terminal && d.terminal->running();
        cols = d.cols;
        rows = d.rows;
      }
      if (!shell) {
        if (announced && std::chrono::steady_clock::now() - spawned_at < std::chrono::seconds(1))
          std::this_thread::sleep_for(std::chrono::seconds(1));  // a shell that dies at once
        Result<std::unique_ptr<environments::Terminal>> opened =
            open_terminal(d, in_containers, env_file, dir, cols, rows);
        if (!opened.ok()) {
          why = "cannot open a terminal: " + opened.error().to_string();
          break;
        }
        if (!*opened) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        spawned_at = std::chrono::steady_clock::now();
        {
          std::lock_guard<std::mutex> lock(d.mutex);
          d.terminal = std::move(*opened);
          d.shell_ready = false;
          // A resize that came while it opened.
          if (d.cols != cols || d.rows != rows) d.terminal->resize(d.cols, d.rows);
        }
        if (!announced) {
          announced = true;
          hooks_.send(json{{"type", "deployment"}, {"run_id", d.id}, {"state", "running"}}.dump());
        }
        continue;
      }
      bool ended = false;
      const std::string out = d.terminal->read(kLogChunk / 2, 100, ended);
      if (!out.empty()) {
        {
          std::lock_guard<std::mutex> lock(d.mutex);
          if (!d.shell_ready) {
            d.shell_ready = true;
            if (!d.early_input.empty()) d.terminal->write(std::exchange(d.early_input, {}));
          }
        }
        hooks_.send_when_room(
            json{{"type", "terminal"}, {"run_id", d.id}, {"data", fleet::base64_encode(out)}}
                .dump());
      }
      if (ended) {
        std::lock_guard<std::mutex> lock(d.mutex);
        d.terminal->kill();
      }
    }
    d.cancellation.cancel();
    {
      std::lock_guard<std::mutex> lock(d.mutex);
      if (d.terminal) d.terminal->kill();
    }
    // What the shell started outside its process group (jobs, daemons) ends with it.
    if (!in_containers) environments::kill_terminal_leftovers(d.id);
    running.join();
    if (!d.stop) {
      why = "its environment ended: " +
            (run.message.empty() ? std::string(runner::to_string(run.outcome)) : run.message);
    }
  }
  fs::remove_all(dir, ec);
  lifeline_release(d.id);
  hooks_.send(json{{"type", "deployment"}, {"run_id", d.id}, {"state", "stopped"}, {"message", why}}
                  .dump());
  d.done = true;
}

// "input" (base64 keystrokes) and "resize" ({cols, rows}) for a deployment's terminal.
void Deployments::control(const std::string& type, const std::string& id, const json& m) {
  std::shared_ptr<Deployment> d;
  {
    std::lock_guard<std::mutex> lock(deployments_mutex_);
    auto it = deployments_.find(id);
    if (it == deployments_.end()) return;
    d = it->second;
  }
  std::lock_guard<std::mutex> lock(d->mutex);
  if (type == "input") {
    auto data = m.find("data");
    if (data == m.end() || !data->is_string()) return;
    Result<std::string> bytes = fleet::base64_decode(data->get_ref<const std::string&>());
    if (!bytes.ok()) return;
    if (d->terminal && d->shell_ready) {
      d->terminal->write(*bytes);
    } else if (d->early_input.size() + bytes->size() <= (1 << 20)) {
      d->early_input += *bytes;
    }
    return;
  }
  auto cols = m.find("cols"), rows = m.find("rows");
  if (cols == m.end() || rows == m.end() || !cols->is_number_integer() ||
      !rows->is_number_integer())
    return;
  const int64_t c = cols->get<int64_t>(), r = rows->get<int64_t>();
  if (c < 1 || c > 1000 || r < 1 || r > 1000) return;
  d->cols = static_cast<int>(c);
  d->rows = static_cast<int>(r);
  if (d->terminal) d->terminal->resize(d->cols, d->rows);
}

// Stops deployment `id` (a "shutdown"): its thread ends the terminal and the run, and says so.
void Deployments::end(const std::string& id) {
  std::lock_guard<std::mutex> lock(deployments_mutex_);
  auto it = deployments_.find(id);
  if (it == deployments_.end()) return;
  it->second->stop = true;
  it->second->cancellation.cancel();
  ended_deployments_.push_back(it->second);
  deployments_.erase(it);
}

void Deployments::end_all() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(deployments_mutex_);
    for (const auto& [id, d] : deployments_) ids.push_back(id);
  }
  for (const auto& id : ids) end(id);
}

}  // namespace testlooper::worker
