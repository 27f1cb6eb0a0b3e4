// Issue 10, the HTTP layer: each attack through real sockets against a real `testlooper serve`,
// asserting the refusal, that nothing changed, and that the server still serves after it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "fake_worker.h"
#include "server_fixture.h"
#include "ws_client.h"

namespace testlooper::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using fixtures::eventually;
using fixtures::FakeJob;
using fixtures::FakeWorker;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::TempDir;
using fixtures::WsClient;
using nlohmann::json;

// A TCP connection to the server, reads timing out after `read_seconds`.
int connect_to(int port, int read_seconds = 20) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{read_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// What the server sends until it closes the connection (or the read times out).
std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// True when the server closed `fd` (recv sees the end, or a reset) within the read timeout.
bool closed_by_server(int fd) {
  char c;
  const ssize_t n = recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

// Sends raw `bytes` and returns the whole answer (the requests say Connection: close).
std::string roundtrip(int port, const std::string& bytes) {
  const int fd = connect_to(port);
  if (fd < 0) return "";
  send_all(fd, bytes);
  std::string out = read_all(fd);
  close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

json body_of(const std::string& response) {
  const size_t start = response.find("\r\n\r\n");
  if (start == std::string::npos) return json();
  return json::parse(response.substr(start + 4), nullptr, false);
}

std::string get_request(int port, const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n" + extra +
         "Connection: close\r\n\r\n";
}

std::string post_request(int port, const std::string& target, const std::string& body,
                         const std::string& extra) {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n" +
         extra + "Content-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

// The server answers a plain request: it is alive and accepting.
bool serving(const ServerProcess& server) {
  return status_of(roundtrip(server.port(), get_request(server.port(), "/api/repos"))) == 200;
}

std::vector<std::string> serve_args(const TempDir& dir, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {
      "--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port",
      "0",       "--workers",           "0",      "--poll-seconds",     "0.3"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::set<std::string> fd_targets(pid_t pid, bool skip_std) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    if (skip_std && std::stoi(e.path().filename().string()) <= 2) continue;
    const auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec) out.insert(target.string());
  }
  return out;
}

// The descriptor number the process would get next.
rlim_t lowest_free_fd(pid_t pid) {
  std::set<int> used;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    used.insert(std::stoi(e.path().filename().string()));
  }
  int fd = 0;
  while (used.count(fd)) ++fd;
  return static_cast<rlim_t>(fd);
}

// The descriptors `pid` opened (above stderr, and not inherited from this test process) that
// are not close-on-exec, as "fd -> target".
std::vector<std::string> inheritable_fds(pid_t pid) {
  std::vector<std::string> out;
  std::error_code ec;
  const std::set<std::string> inherited = fd_targets(getpid(), false);
  const std::string proc = "/proc/" + std::to_string(pid);
  for (const auto& e : std::filesystem::directory_iterator(proc + "/fd", ec)) {
    const std::string fd = e.path().filename().string();
    if (std::stoi(fd) <= 2) continue;
    std::ifstream info(proc + "/fdinfo/" + fd);
    for (std::string line; std::getline(info, line);) {
      if (line.rfind("flags:", 0) != 0) continue;
      const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
      if ((std::stoul(line.substr(6), nullptr, 8) & O_CLOEXEC) == 0 && !inherited.count(target)) {
        out.push_back(fd + " -> " + target);
      }
    }
  }
  return out;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream status(e.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("PPid:", 0) == 0 && std::stoi(line.substr(5)) == parent)
        out.push_back(std::stoi(name));
    }
  }
  return out;
}

bool local_worker_connected(const ServerProcess& server) {
  const json w = server.get("/api/workers");
  return w.is_array() && w.size() == 1 && w[0]["connected"] == true;
}

// Item 5: a malformed %-escape (path or query) or a NUL is a 400, '+' is a space only in query
// values, and a message that makes the handler throw closes that WebSocket only.
TEST(SecurityHttpTest, Item5_MalformedEscapesAreA400AndNoExceptionEscapes) {
  TempDir dir;
  ServerProcess server(serve_args(dir));
  const int port = server.port();
  for (const std::string target :
       {"/api/repos%zz", "/api/repos%2", "/api/repos%", "/api/runs/x%00y", "/api/repos?limit=%zz",
        "/api/repos?a%00=1"}) {
    const std::string r = roundtrip(port, get_request(port, target));
    EXPECT_EQ(status_of(r), 400) << target << ": " << r;
    EXPECT_TRUE(body_of(r)["error"].is_string()) << r;
    ASSERT_TRUE(serving(server)) << "after " << target;
  }
  // '+' in the path is a '+': the repo named "a+b", not "a b".
  const json plus = body_of(roundtrip(port, get_request(port, "/api/repos/a+b/branches")));
  EXPECT_NE(plus["error"].get<std::string>().find("a+b"), std::string::npos) << plus.dump();

  // A worker message of the wrong types threw out of the handler and aborted the server. Now
  // it closes that connection with a reason (1011, or 1008 once messages are validated), and
  // nothing else. The worker token, where the server has one, gets the message that far.
  const std::string worker_token = fixtures::worker_token(dir.path() + "/data");
  for (const std::string message : {R"({"type":5})", R"({"type":"hello","cores":"many"})"}) {
    WsClient client(port, "/api/worker", worker_token);
    // A refused upgrade (e.g. without a worker token) is fine: the server is what matters here.
    if (client.connected() && client.send(message)) {
      const beast::error_code ec = client.read_until_closed(20);
      EXPECT_TRUE(ec == websocket::error::closed || ec == asio::error::eof) << ec.message();
      if (ec == websocket::error::closed) {
        const int code = client.close_code().value_or(0);
        EXPECT_TRUE(code == 1008 || code == 1011) << code;
      }
    }
    ASSERT_TRUE(serving(server)) << "after " << message;
  }
}

// Item 8 (and 16's sizes): limits apply before the body is read; an oversized body is a 413
// with a JSON body, not a silent close; long URLs 414, large heads 431.
TEST(SecurityHttpTest, Item8_BodiesOverTheLimitAre413BeforeTheyAreRead) {
  TempDir dir;
  GitFixtureRepo app(dir.path() + "/repos/app");
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "environments: {linux: {platform: linux, image: {host: true}}}\n"
            "builds: {b/linux: {command: 'true'}}\n");
  app.commit("first");
  ServerProcess server(serve_args(dir));
  const int port = server.port();
  // A 1 GiB Content-Length with no body: answered at once, without waiting for the body.
  std::string r = roundtrip(
      port,
      "POST /api/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 1073741824\r\n\r\n");
  EXPECT_EQ(status_of(r), 413) << r;
  EXPECT_TRUE(body_of(r)["error"].is_string()) << r;
  // A worker's upload over its own (4 GiB) limit: 413, and no file left behind (anyone else's is
  // a 401 before any limit). Uploads are authorised before their size: this one comes from the
  // worker the server gave the build to, with that job's upload token.
  const std::string worker_token = fixtures::worker_token(dir.path() + "/data");
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  FakeWorker builder(port, worker_token, "builder");
  ASSERT_EQ(server.post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  const std::optional<FakeJob> job = builder.job("b/linux");
  ASSERT_TRUE(job.has_value());
  const std::string hash = job->message["object"]["hash"];
  r = roundtrip(port, "POST /api/artifacts/builds/" + hash +
                          "/bin.tar HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                          worker_token + "\r\nX-TestLooper-Upload: " + job->upload_token +
                          "\r\nContent-Length: 5000000000\r\n\r\n");
  EXPECT_EQ(status_of(r), 413) << r;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/data/artifacts/builds/" + hash + "/bin.tar"));
  r = roundtrip(port,
                "POST /api/artifacts/builds/" + std::string(64, 'a') +
                    "/bin.tar HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000000000\r\n\r\n");
  EXPECT_EQ(status_of(r), 401) << r;
  // A chunked body counted as it comes: 413 once it passes 64 MiB.
  {
    const int fd = connect_to(port);
    ASSERT_GE(fd, 0);
    send_all(fd,
             "POST /api/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = "100000\r\n" + std::string(1 << 20, ' ') + "\r\n";
    for (int i = 0; i < 70 && send_all(fd, chunk); ++i) {
    }
    send_all(fd, "0\r\n\r\n");
    r = read_all(fd);
    close(fd);
    EXPECT_EQ(status_of(r), 413) << r.substr(0, 200);
  }
  r = roundtrip(port, get_request(port, "/api/repos/" + std::string(9000, 'a')));
  EXPECT_EQ(status_of(r), 414) << r.substr(0, 200);
  r = roundtrip(port,
                get_request(port, "/api/repos", "X-Big: " + std::string(70000, 'a') + "\r\n"));
  EXPECT_EQ(status_of(r), 431) << r.substr(0, 200);
  EXPECT_TRUE(body_of(r)["error"].is_string()) << r.substr(0, 200);
  // Nothing was stored.
  std::error_code ec;
  const std::string tmp = dir.path() + "/data/artifacts/tmp";
  EXPECT_TRUE(!std::filesystem::exists(tmp, ec) || std::filesystem::is_empty(tmp, ec));
  EXPECT_FALSE(
      std::filesystem::exists(dir.path() + "/data/artifacts/builds/" + std::string(64, 'a'), ec));
  EXPECT_TRUE(serving(server));
}

// Item 9: a local worker (a child of serve) holds none of the server's sockets, and after
// kill -9 of the server alone, serve starts again on the same port at once.
TEST(SecurityHttpTest, Item9_NoServerDescriptorLeaksIntoChildren) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/repos");
  auto server = std::make_unique<ServerProcess>(std::vector<std::string>{
      "--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port", "0", "--workers",
      "1", "--worker-cores", "1", "--worker-ram-gb", "1"});
  const int port = server->port();
  const pid_t pid = server->pid();
  ASSERT_TRUE(eventually([&] { return local_worker_connected(*server); }, 60));
  // Open a few more of the server's descriptors (connections), then compare.
  const int held = connect_to(port);
  ASSERT_TRUE(eventually([&] { return !children_of(pid).empty(); }, 10));
  const std::set<std::string> mine = fd_targets(pid, false);
  for (pid_t child : children_of(pid)) {
    for (const auto& target : fd_targets(child, true)) {
      const bool server_owned =
          target.rfind("socket:", 0) == 0 || target.find(dir.path() + "/data") == 0;
      EXPECT_FALSE(server_owned && mine.count(target))
          << "worker " << child << " holds the server's " << target;
    }
  }
  // Every descriptor of the server is close-on-exec (sockets, listening and accepted, included),
  // so no child of it (workers, git, anything it runs) inherits one.
  const std::vector<std::string> inheritable = inheritable_fds(pid);
  EXPECT_TRUE(inheritable.empty()) << ::testing::PrintToString(inheritable);
  close(held);
  const std::vector<pid_t> workers = children_of(pid);
  server->stop(SIGKILL, /*group=*/false);
  // The worker may still be alive here: it must not hold the port.
  std::unique_ptr<ServerProcess> again;
  EXPECT_NO_THROW(again = std::make_unique<ServerProcess>(std::vector<std::string>{
                      "--repos", dir.path() + "/repos", "--data", dir.path() + "/data2", "--port",
                      std::to_string(port), "--workers", "0"}));
  EXPECT_TRUE(again && serving(*again));
  for (pid_t w : workers) kill(w, SIGKILL);
}

// True while `pid` runs (a zombie has exited).
bool running(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("State:", 0) == 0) return line.find('Z') == std::string::npos;
  }
  return false;
}

// The hardening issue, item 3: local workers do not outlive a server killed with SIGKILL (the
// death signal, and each worker's own check that the server is still its parent), so a
// restarted server starts with none of the old ones around.
TEST(SecurityHttpTest, LocalWorkersStopOnceTheirServerIsGone) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/repos");
  ServerProcess server({"--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port",
                        "0", "--workers", "2", "--worker-cores", "1", "--worker-ram-gb", "1"});
  ASSERT_TRUE(eventually([&] { return children_of(server.pid()).size() == 2; }, 30));
  const std::vector<pid_t> workers = children_of(server.pid());
  server.stop(SIGKILL, /*group=*/false);
  EXPECT_TRUE(eventually(
      [&] {
        for (pid_t w : workers) {
          if (running(w)) return false;
        }
        return true;
      },
      30))
      << "a local worker outlived its server";
  for (pid_t w : workers) kill(w, SIGKILL);
}

// Item 10: accept survives EMFILE; slow and idle clients time out; connections per client are
// capped, the oldest idle one making room for a new one; live WebSockets stay up (pings).
TEST(SecurityHttpTest, Item10_AcceptErrorsTimeoutsAndConnectionCaps) {
  TempDir dir;
  {
    ServerProcess server(serve_args(dir, {"--http-timeout", "2"}));
    const int port = server.port();
    // Out of descriptors: accept fails with EMFILE until the limit is raised again. Not in a
    // sanitizer build: the sanitizers need descriptors of their own (UBSan's vptr check probes
    // memory through a pipe, and fails a thread starting then with a false "invalid vptr"; a
    // report needs its log file), so there the starvation tests the sanitizer, not the server.
    if (!fixtures::kSanitized) {
      rlimit old{};
      ASSERT_EQ(prlimit(server.pid(), RLIMIT_NOFILE, nullptr, &old), 0);
      rlimit low = old;
      low.rlim_cur = lowest_free_fd(server.pid());
      ASSERT_EQ(prlimit(server.pid(), RLIMIT_NOFILE, &low, nullptr), 0);
      const int starved = connect_to(port, 1);
      send_all(starved, get_request(port, "/api/repos"));
      char c;
      EXPECT_LT(recv(starved, &c, 1, MSG_PEEK), 0) << "answered although out of descriptors";
      ASSERT_EQ(prlimit(server.pid(), RLIMIT_NOFILE, &old, nullptr), 0);
      timeval tv{30, 0};
      setsockopt(starved, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      const std::string r = read_all(starved);
      close(starved);
      EXPECT_EQ(status_of(r), 200) << "the queued connection was never accepted: " << r;
      EXPECT_TRUE(serving(server));
    }

    // Slowloris: half a head, then nothing. Closed after the timeout.
    const int slow = connect_to(port, 30);
    send_all(slow, "GET /api/repos HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    EXPECT_TRUE(closed_by_server(slow));
    close(slow);
    // Idle keep-alive: one request, then silence. Closed after the timeout.
    const int idle = connect_to(port, 30);
    send_all(idle, "GET /api/repos HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    std::string answer;
    char buf[4096];
    while (answer.find("[]") == std::string::npos) {
      const ssize_t n = recv(idle, buf, sizeof(buf), 0);
      ASSERT_GT(n, 0);
      answer.append(buf, static_cast<size_t>(n));
    }
    EXPECT_TRUE(closed_by_server(idle));
    close(idle);
    // A body that stops coming: closed after the timeout.
    const int stalled = connect_to(port, 30);
    send_all(stalled,
             "POST /api/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: 10\r\n\r\n{}");
    EXPECT_TRUE(closed_by_server(stalled));
    close(stalled);

    // A live WebSocket outlives several timeouts: the server pings, the client answers.
    WsClient events(port, "/api/events");
    ASSERT_TRUE(events.connected()) << events.ended_by().message();
    const beast::error_code ended = events.read_until_closed(7);
    EXPECT_EQ(ended, asio::error::timed_out) << "the events socket was closed: " << ended.message();
    EXPECT_TRUE(serving(server));
  }
  {
    TempDir dir2;
    ServerProcess server(serve_args(dir2, {"--max-connections-per-client", "4"}));
    const int port = server.port();
    // Four connections that never send a request: a fifth that does is served, and the oldest
    // idle one makes room (a slowloris cannot lock a client out).
    std::vector<int> held;
    for (int i = 0; i < 4; ++i) held.push_back(connect_to(port, 20));
    EXPECT_TRUE(eventually([&] { return serving(server); }, 20));
    EXPECT_TRUE(closed_by_server(held[0])) << "the oldest idle connection was kept";
    for (int fd : held) close(fd);
    // Four WebSockets (never closed to make room): a fifth connection is closed at once.
    std::vector<std::unique_ptr<WsClient>> sockets;
    for (int i = 0; i < 4; ++i) {
      sockets.push_back(std::make_unique<WsClient>(port, "/api/events"));
      ASSERT_TRUE(sockets.back()->connected()) << sockets.back()->ended_by().message();
    }
    const int extra = connect_to(port, 20);
    EXPECT_TRUE(closed_by_server(extra));
    close(extra);
    sockets.clear();
    EXPECT_TRUE(eventually([&] { return serving(server); }, 20));
  }
}

// Item 11: SIGTERM with a worker connected: every session is closed before the io_context goes,
// and serve exits 0 (it crashed in ~WsSession).
TEST(SecurityHttpTest, Item11_SigtermWithAWorkerConnectedExitsZero) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/repos");
  for (int i = 0; i < 3; ++i) {
    ServerProcess server({"--repos", dir.path() + "/repos", "--data", dir.path() + "/data",
                          "--port", "0", "--workers", "1", "--worker-cores", "1", "--worker-ram-gb",
                          "1"});
    ASSERT_TRUE(eventually([&] { return local_worker_connected(server); }, 60));
    WsClient events(server.port(), "/api/events");
    ASSERT_TRUE(events.connected()) << "round " << i << ": " << events.ended_by().message();
    const int status = server.stop(SIGTERM, /*group=*/false);
    ASSERT_TRUE(WIFEXITED(status))
        << "round " << i << ": signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "round " << i;
  }
}

// Item 14: only the configured host names are served; a foreign Origin, a cross-site fetch or a
// non-JSON body cannot change state; WebSocket upgrades from a foreign Origin are refused.
TEST(SecurityHttpTest, Item14_ForeignHostOriginAndContentTypeAreRefused) {
  TempDir dir;
  GitFixtureRepo app(dir.path() + "/repos/app");
  app.write("README", "x");
  app.commit("first");
  ServerProcess server(serve_args(dir, {"--public-url", "https://ci.example.com:8443/looper"}));
  const int port = server.port();
  ASSERT_TRUE(eventually(
      [&] {
        const json b = server.get("/api/repos/app/branches");
        return b.is_array() && b.size() == 1;
      },
      30));
  auto under_test = [&] { return server.get("/api/repos/app/branches")[0]["under_test"]; };
  ASSERT_EQ(under_test(), false);

  // DNS rebinding: a foreign Host is not served; loopback names and the public host are.
  EXPECT_EQ(
      status_of(roundtrip(
          port, "GET /api/repos HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")),
      421);
  EXPECT_EQ(status_of(roundtrip(port, "GET /api/repos HTTP/1.1\r\nHost: evil.example:" +
                                          std::to_string(port) + "\r\nConnection: close\r\n\r\n")),
            421);
  for (const std::string host :
       {"localhost", "127.0.0.1:1", "[::1]:80", "ci.example.com:8443", "CI.example.com"}) {
    EXPECT_EQ(status_of(roundtrip(port, "GET /api/repos HTTP/1.1\r\nHost: " + host +
                                            "\r\nConnection: close\r\n\r\n")),
              200)
        << host;
  }

  // CSRF: state-changing requests from another origin, cross-site, or not JSON.
  const std::string target = "/api/repos/app/branches/main/test";
  const std::string body = R"({"enabled": true})";
  const std::string json_type = "Content-Type: application/json\r\n";
  std::string r = roundtrip(
      port, post_request(port, target, body, json_type + "Origin: http://evil.example\r\n"));
  EXPECT_EQ(status_of(r), 403) << r;
  r = roundtrip(port,
                post_request(port, target, body, json_type + "Origin: http://127.0.0.1:1\r\n"));
  EXPECT_EQ(status_of(r), 403) << r;
  r = roundtrip(port, post_request(port, target, body, json_type + "Origin: null\r\n"));
  EXPECT_EQ(status_of(r), 403) << r;
  r = roundtrip(port,
                post_request(port, target, body, json_type + "Sec-Fetch-Site: cross-site\r\n"));
  EXPECT_EQ(status_of(r), 403) << r;
  r = roundtrip(port, post_request(port, target, body, "Content-Type: text/plain\r\n"));
  EXPECT_EQ(status_of(r), 415) << r;
  r = roundtrip(port, post_request(port, target, body, ""));
  EXPECT_EQ(status_of(r), 415) << r;
  r = roundtrip(port, post_request(port, "/webhook", "{}",
                                   "Content-Type: application/x-www-form-urlencoded\r\n"));
  EXPECT_EQ(status_of(r), 415) << r;
  EXPECT_TRUE(body_of(r)["error"].is_string()) << r;
  EXPECT_EQ(under_test(), false);
  // The server's own origins (and requests without one) may.
  r = roundtrip(port, post_request(port, target, R"({"enabled": false})",
                                   json_type + "Origin: https://ci.example.com:8443\r\n"));
  EXPECT_EQ(status_of(r), 200) << r;
  r = roundtrip(port, post_request(port, target, body,
                                   json_type + "Origin: http://127.0.0.1:" + std::to_string(port) +
                                       "\r\n" + "Sec-Fetch-Site: same-origin\r\n"));
  EXPECT_EQ(status_of(r), 200) << r;
  EXPECT_EQ(under_test(), true);

  // WebSocket upgrades: a foreign Origin is refused (403, not upgraded); the own origin is not.
  const std::string upgrade =
      "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  EXPECT_EQ(status_of(roundtrip(port, upgrade + "Origin: http://evil.example\r\n\r\n")), 403);
  EXPECT_FALSE(WsClient(port, "/api/events", /*token=*/"", "http://evil.example").connected());
  EXPECT_TRUE(
      WsClient(port, "/api/events", /*token=*/"", "http://127.0.0.1:" + std::to_string(port))
          .connected());
  EXPECT_TRUE(WsClient(port, "/api/events").connected());
  EXPECT_TRUE(serving(server));
}

}  // namespace
}  // namespace testlooper::server
