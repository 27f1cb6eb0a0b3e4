// A terminal in a run's container: the Docker Engine API's exec with a TTY (create, start with
// a hijacked stream, resize), over the engine's unix socket.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "core/url.h"
#include "docker_proxy/bodies.h"
#include "docker_proxy/docker_proxy.h"
#include "docker_proxy/engine_client.h"
#include "docker_proxy/filter.h"
#include "environments/terminal.h"

namespace testlooper::environments {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// The shell: bash as a host terminal runs it when the image has it, else sh.
constexpr const char* kShell =
    "if [ -x /bin/bash ]; then exec /bin/bash --noprofile --norc -i; fi; exec /bin/sh -i";
// The most an engine's answer head to the exec start may take.
constexpr size_t kMaxHead = 16 << 10;
constexpr int kHeadTimeoutMs = 30'000;

std::string string_at(const json& object, const char* key) {
  if (!object.is_object()) return "";
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

bool send_all(int fd, const char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The id of the newest running container the docker launcher started for `run_id` (not one
// its scoped docker created: those carry kScopeLabel too); "" when none runs.
Result<std::string> run_container(const std::string& engine, const std::string& run_id) {
  const json filters = {
      {"label", json::array({std::string(docker_proxy::kRunLabel) + "=" + run_id})},
      {"status", json::array({"running"})}};
  Result<docker_proxy::EngineAnswer> answer = docker_proxy::call_engine(
      engine, "GET", "/containers/json?filters=" + url_segment(filters.dump()));
  if (!answer.ok()) return answer.error();
  if (answer->status != 200) {
    return Error{"docker engine", "listing containers answered " + std::to_string(answer->status)};
  }
  const json list = json::parse(answer->body, nullptr, false);
  std::string newest;
  int64_t newest_created = -1;
  for (const json& c : list.is_array() ? list : json::array()) {
    if (!c.is_object()) continue;
    const json labels = c.value("Labels", json::object());
    if (labels.is_object() && labels.contains(docker_proxy::kScopeLabel)) continue;
    const auto created = c.find("Created");
    const int64_t at =
        created != c.end() && created->is_number_integer() ? created->get<int64_t>() : 0;
    const std::string id = string_at(c, "Id");
    if (!docker_proxy::valid_name(id) || at < newest_created) continue;
    newest = id;
    newest_created = at;
  }
  return newest;
}

// The working directory of a terminal in container `id`: its $TEST_INPUTS, else its own.
std::string working_dir(const std::string& engine, const std::string& id) {
  Result<docker_proxy::EngineAnswer> answer =
      docker_proxy::call_engine(engine, "GET", "/containers/" + id + "/json");
  if (!answer.ok() || answer->status != 200) return "";
  // Not an object (value() would throw on this thread): no directory of its own.
  const json inspected = json::parse(answer->body, nullptr, false);
  if (!inspected.is_object()) return "";
  const json config = inspected.value("Config", json::object());
  if (!config.is_object()) return "";
  const json env = config.value("Env", json::array());
  for (const json& e : env.is_array() ? env : json::array()) {
    if (e.is_string() && e.get_ref<const std::string&>().starts_with("TEST_INPUTS=")) {
      return e.get<std::string>().substr(12);
    }
  }
  return string_at(config, "WorkingDir");
}

// POST /exec/{id}/start with `Upgrade: tcp`: the connection, once the engine answered 101 (or
// 200), carries the terminal's bytes both ways. `early` gets what came after the answer's head.
Result<int> start_exec(const std::string& engine, const std::string& exec_id, std::string& early) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (engine.size() >= sizeof(address.sun_path))
    return Error{"docker engine", "socket path too long"};
  std::memcpy(address.sun_path, engine.data(), engine.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{"docker engine", std::string("socket: ") + std::strerror(errno)};
  auto fail = [fd](const std::string& why) {
    ::close(fd);
    return Error{"docker engine ", why};
  };
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return fail(std::string("connect: ") + std::strerror(errno));
  }
  const std::string body = R"({"Detach": false, "Tty": true})";
  const std::string request =
      "POST /exec/" + exec_id +
      "/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
      "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!send_all(fd, request.data(), request.size())) return fail("cannot send the exec start");
  std::string head;
  const auto until = Clock::now() + std::chrono::milliseconds(kHeadTimeoutMs);
  size_t end = std::string::npos;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0 || head.size() > kMaxHead) return fail("no answer to the exec start");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("the engine closed the exec start");
    head.append(chunk, static_cast<size_t>(n));
  }
  // "HTTP/1.1 101 UPGRADED": anything but 101 or 200 is a refusal (its body says why).
  const std::string status = head.size() > 12 ? head.substr(9, 3) : "";
  if (status != "101" && status != "200") {
    return fail("the exec start answered " +
                head.substr(0, std::min<size_t>(head.find('\r'), 200)));
  }
  early = head.substr(end + 4);
  return fd;
}

// POST /exec/{id}/resize (the engine waits for the exec to have started); a refusal is tried
// again 100 ms later, ten times at most, while `go_on()`.
template <class GoOn>
void resize_exec(const std::string& engine, const std::string& exec_id, int cols, int rows,
                 GoOn go_on) {
  const std::string target =
      "/exec/" + exec_id + "/resize?h=" + std::to_string(rows) + "&w=" + std::to_string(cols);
  for (int attempt = 0; attempt < 10 && go_on(); ++attempt) {
    Result<docker_proxy::EngineAnswer> answer = docker_proxy::call_engine(engine, "POST", target);
    if (answer.ok() && (answer->status == 200 || answer->status == 201)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// The exec's stream, read by the caller's thread; keystrokes and resizes go to the engine in
// the order they came, from a thread of its own (so that neither a resize's call to the engine
// nor a full socket blocks the caller, and `stty size` typed after a resize sees it).
class DockerExec final : public Terminal {
 public:
  DockerExec(std::string engine, std::string exec_id, int fd, std::string early)
      : engine_(std::move(engine)),
        exec_id_(std::move(exec_id)),
        fd_(fd),
        early_(std::move(early)) {
    writer_ = std::thread([this, fd] { write_loop(fd); });
  }
  ~DockerExec() override { kill(); }

  bool running() const override { return fd_ >= 0; }

  std::string read(size_t max, int timeout_ms, bool& ended) override {
    ended = false;
    if (fd_ < 0) {
      ended = true;
      return "";
    }
    if (!early_.empty()) return std::exchange(early_, std::string());
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return "";
    std::string out(max, '\0');
    const ssize_t n = ::recv(fd_, out.data(), max, 0);
    if (n > 0) {
      out.resize(static_cast<size_t>(n));
      return out;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return "";
    ended = true;  // the shell exited, or its container is gone: the engine closed the stream
    return "";
  }

  void write(const std::string& bytes) override { push({bytes, 0, 0}); }

  void resize(int cols, int rows) override { push({"", cols, rows}); }

  void kill() override {
    if (fd_ < 0) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    ::shutdown(fd_, SHUT_RDWR);  // a send blocked on a full socket returns
    if (writer_.joinable()) writer_.join();
    ::close(fd_);
    fd_ = -1;
  }

 private:
  struct Item {
    std::string bytes;
    int cols = 0;  // > 0: a resize
    int rows = 0;
  };
  // The most keystrokes waiting for the engine; more is dropped (a paste larger than this).
  static constexpr size_t kMaxQueued = 4 << 20;

  void push(Item item) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (queued_ + item.bytes.size() > kMaxQueued) return;
      queued_ += item.bytes.size();
      queue_.push_back(std::move(item));
    }
    wake_.notify_all();
  }

  // Readline reads the terminal's size and writes it back each time it starts reading a line:
  // a resize that falls between the two is undone. So the last resize is made again, 0.25, 1
  // and 3 s after it (the same size again changes nothing and signals no one).
  void write_loop(int fd) {
    using Clock = std::chrono::steady_clock;
    std::deque<Clock::time_point> again;  // when the last resize is made again
    Item last_resize;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (again.empty()) {
        wake_.wait(lock, ready);
      } else {
        wake_.wait_until(lock, again.front(), ready);
      }
      if (stopping_) return;
      Item item;
      if (!queue_.empty()) {
        item = std::move(queue_.front());
        queue_.pop_front();
        queued_ -= item.bytes.size();
        if (item.cols > 0) {
          last_resize = item;
          const auto now = Clock::now();
          again = {now + std::chrono::milliseconds(250), now + std::chrono::seconds(1),
                   now + std::chrono::seconds(3)};
        }
      } else if (!again.empty() && Clock::now() >= again.front()) {
        again.pop_front();
        item = last_resize;
      } else {
        continue;
      }
      lock.unlock();
      if (item.cols > 0) {
        resize_exec(engine_, exec_id_, item.cols, item.rows, [this] {
          std::lock_guard<std::mutex> lock(mutex_);
          return !stopping_;
        });
      } else {
        (void)send_all(fd, item.bytes.data(), item.bytes.size());
      }
      lock.lock();
    }
  }

  const std::string engine_;
  const std::string exec_id_;
  int fd_ = -1;        // the reading thread's (the writer has its own copy until kill joins it)
  std::string early_;  // output that came with the start's answer
  std::mutex mutex_;   // guards queue_, queued_, stopping_
  std::condition_variable wake_;
  std::deque<Item> queue_;
  size_t queued_ = 0;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace

Result<std::unique_ptr<Terminal>> open_docker_terminal(const std::string& run_id, int cols,
                                                       int rows) {
  const std::string engine = docker_proxy::engine_socket_from_environment();
  if (engine.empty()) {
    return Error{"docker", "DOCKER_HOST is not a unix socket: no terminal in its containers"};
  }
  Result<std::string> container = run_container(engine, run_id);
  if (!container.ok()) return container.error();
  if (container->empty()) return std::unique_ptr<Terminal>();
  json create = {{"AttachStdin", true},
                 {"AttachStdout", true},
                 {"AttachStderr", true},
                 {"Tty", true},
                 {"Cmd", json::array({"/bin/sh", "-c", kShell})},
                 {"Env", json::array({"TERM=xterm-256color"})},
                 {"ConsoleSize", json::array({rows, cols})}};
  if (const std::string dir = working_dir(engine, *container); !dir.empty())
    create["WorkingDir"] = dir;
  Result<docker_proxy::EngineAnswer> created = docker_proxy::call_engine(
      engine, "POST", "/containers/" + *container + "/exec", create.dump());
  if (!created.ok()) return created.error();
  // The container ended between the listing and now: none runs (a later one may).
  if (created->status == 404 || created->status == 409) return std::unique_ptr<Terminal>();
  const std::string exec_id = string_at(json::parse(created->body, nullptr, false), "Id");
  if (created->status != 201 || !docker_proxy::valid_name(exec_id)) {
    return Error{"docker engine", "exec create answered " + std::to_string(created->status)};
  }
  std::string early;
  Result<int> fd = start_exec(engine, exec_id, early);
  if (!fd.ok()) return fd.error();
  // Sized before anything is typed (engines before API 1.42 ignore ConsoleSize): a resize
  // racing the first keystrokes can lose them in the shell's redraw.
  resize_exec(engine, exec_id, cols, rows, [] { return true; });
  return std::unique_ptr<Terminal>(
      std::make_unique<DockerExec>(engine, exec_id, *fd, std::move(early)));
}

}  // namespace testlooper::environments
