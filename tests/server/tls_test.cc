// Issue 12, listening: --bind, TLS for the server, its workers and clients, and the refusal to
// serve a non-loopback address without authentication. The real `testlooper serve` and real
// `testlooper worker`s, with a CA and a server certificate (for 127.0.0.1 and localhost) made by
// the test with the openssl CLI; clients are curl and a Boost.Beast WSS client.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

// clang-format off: before Boost.Asio, whose awaitable.hpp needs std::exchange under C++20.
#include <utility>
// clang-format on

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <filesystem>
#include <fstream>

#include "server_fixture.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
using fixtures::capture;
using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using nlohmann::json;

// A test reading a file of its source tree and keeping a report: the source comes as an archive
// and the run record goes up, both over HTTPS, to a worker that shares no disk with the server.
constexpr const char* kDefinitions = R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  greets/linux:
    dependencies: {src: HEAD}
    stages:
      - command: 'grep -q hello $TEST_INPUTS/src/greeting.txt && mkdir -p $TEST_OUTPUT_DIR/report && echo ok > $TEST_OUTPUT_DIR/report/r.txt'
        artifacts: [{name: report, directory: report, format: Tar}]
)";

// Makes, in `dir`, a CA (`name`.pem, .key) and, unless `server` is false, a server certificate
// it signs for 127.0.0.1, ::1 and localhost (server.pem, server.key).
void make_certificates(const std::string& dir, const std::string& name, bool server = true) {
  const std::string d = shell_quote(dir);
  const std::string ca = d + "/" + name;
  std::string script = "set -e; cd " + d + "; openssl req -x509 -newkey rsa:2048 -nodes -days 2 " +
                       "-subj /CN=" + name + " -keyout " + ca + ".key -out " + ca + ".pem;";
  if (server) {
    script +=
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
        "-out server.csr; printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\\n' > "
        "ext.cnf; openssl x509 -req -in server.csr -CA " +
        ca + ".pem -CAkey " + ca + ".key -CAcreateserial -days 2 -extfile ext.cnf -out server.pem;";
  }
  ASSERT_EQ(capture("(" + script + ") >/dev/null 2>&1 && echo ok"), "ok\n");
}

// `testlooper serve <args>` run to its end: its exit status and what it wrote.
std::pair<int, std::string> serve_output(const std::string& args) {
  const std::string out = capture(std::string(TL_BINARY) + " serve " + args + " 2>&1; echo \"$?\"");
  const size_t nl = out.rfind('\n', out.size() - 2);
  const size_t from = nl == std::string::npos ? 0 : nl + 1;
  return {std::stoi(out.substr(from)), out.substr(0, from)};
}

// A WebSocket over TLS, verified against `ca_file` and the host 127.0.0.1.
class WssClient {
 public:
  WssClient(int port, const std::string& path, const std::string& ca_file)
      : tls_(asio::ssl::context::tls_client), ws_(io_, tls_) {
    tls_.load_verify_file(ca_file);
    tls_.set_verify_mode(asio::ssl::verify_peer);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ws_.next_layer().native_handle()), "127.0.0.1");
    asio::ip::tcp::resolver resolver(io_);
    asio::connect(ws_.next_layer().next_layer(),
                  resolver.resolve("127.0.0.1", std::to_string(port)));
    ws_.next_layer().handshake(asio::ssl::stream_base::client);
    ws_.handshake("127.0.0.1:" + std::to_string(port), path);
  }

  // The next message, or "" when none came within `seconds`.
  std::string read(double seconds) {
    beast::flat_buffer buffer;
    bool done = false;
    beast::error_code error;
    ws_.async_read(buffer, [&](beast::error_code ec, size_t) {
      error = ec;
      done = true;
    });
    io_.restart();
    io_.run_for(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
    if (!done || error) return "";
    return beast::buffers_to_string(buffer.data());
  }

 private:
  asio::io_context io_;
  asio::ssl::context tls_;
  beast::websocket::stream<asio::ssl::stream<asio::ip::tcp::socket>> ws_;
};

// A TCP connection to 127.0.0.1:`port` that sends nothing.
class SilentConnection {
 public:
  explicit SilentConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~SilentConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  // Whether the server closed it (a read at its end, or an error).
  bool closed_by_server() const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    char c = 0;
    return ::recv(fd_, &c, 1, MSG_DONTWAIT) <= 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

class TlsTest : public testing::Test {
 protected:
  TlsTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kDefinitions);
    app_.write("greeting.txt", "hello\n");
    sha_ = app_.commit("first");
    make_certificates(dir_.path(), "ca");
  }

  std::string file(const std::string& name) const { return dir_.path() + "/" + name; }

  // The server over TLS, with no local worker unless `workers`.
  std::unique_ptr<ServerProcess> start_tls_server(const std::vector<std::string>& extra = {},
                                                  const std::string& workers = "0") {
    std::vector<std::string> args = {"--repos",        dir_.path() + "/repos",
                                     "--data",         file("data"),
                                     "--port",         "0",
                                     "--workers",      workers,
                                     "--poll-seconds", "0.3",
                                     "--tls-cert",     file("server.pem"),
                                     "--tls-key",      file("server.key")};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ServerProcess>(args);
  }

  // `curl` over HTTPS verified against the test's CA: "<status> <body>" ("000 ..." when it
  // could not connect or refused the certificate).
  std::string https(const ServerProcess& server, const std::string& path,
                    const std::string& host = "127.0.0.1", const std::string& options = "") {
    return capture("curl -s --max-time 20 --cacert " + shell_quote(file("ca.pem")) + " " + options +
                   " -w ' %{http_code}' " +
                   shell_quote("https://" + host + ":" + std::to_string(server.port()) + path) +
                   " 2>/dev/null");
  }
  // The body of an HTTPS GET, parsed (null when it is not JSON or failed).
  json get(const ServerProcess& server, const std::string& path) {
    const std::string out = https(server, path);
    return json::parse(out.substr(0, out.rfind(' ')), nullptr, false);
  }
  int status(const std::string& curl_output) {
    return std::stoi(curl_output.substr(curl_output.rfind(' ') + 1));
  }

  static std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  TempDir dir_;
  TempDir worker_dir_;
  GitFixtureRepo app_;
  std::string sha_;
};

TEST_F(TlsTest, Https_ServesVerifiedRequestsAndWss) {
  auto server = start_tls_server();
  ASSERT_TRUE(eventually([&] { return get(*server, "/api/repos").size() == 1; }, 30));
  // Verified against the CA, by address and by name.
  EXPECT_EQ(status(https(*server, "/api/repos")), 200);
  EXPECT_EQ(status(https(*server, "/api/repos", "localhost")), 200);
  // Without the CA the certificate is refused (curl's 60).
  const std::string port = std::to_string(server->port());
  EXPECT_EQ(capture("curl -s -o /dev/null https://127.0.0.1:" + port + "/api/repos; echo $?"),
            "60\n");
  // TLS 1.1 and older are refused.
  EXPECT_EQ(status(https(*server, "/api/repos", "127.0.0.1", "--tls-max 1.1")), 0);

  // The events socket over WSS: a change is told to it.
  WssClient events(server->port(), "/api/events", file("ca.pem"));
  const std::string body = R"({"enabled": true})";
  const std::string posted =
      https(*server, "/api/repos/app/branches/main/test", "127.0.0.1",
            "-X POST -H 'Content-Type: application/json' -H " +
                shell_quote("Origin: https://127.0.0.1:" + port) + " -d " + shell_quote(body));
  ASSERT_EQ(status(posted), 200) << posted;
  bool told = false;
  for (int i = 0; i < 20 && !told; ++i) {
    const json message = json::parse(events.read(30), nullptr, false);
    if (!message.is_object()) break;
    told = message.value("type", "") == "branch" && message.value("under_test", false);
  }
  EXPECT_TRUE(told);
}

TEST_F(TlsTest, RemoteWorker_OverHttpsRunsATestToAStoredResult) {
  auto server = start_tls_server();
  ASSERT_TRUE(eventually([&] { return get(*server, "/api/repos").size() == 1; }, 30));
  const std::string url = "https://127.0.0.1:" + std::to_string(server->port());
  WorkerProcess worker(
      {"--server", url, "--ca-file", file("ca.pem"), "--dir", worker_dir_.path(), "--cores", "1",
       "--ram-gb", "1", "--id", "remote-tls", "--token-file", file("data/worker.token")},
      SIGTERM, file("worker.err"));
  ASSERT_TRUE(eventually([&] { return get(*server, "/api/workers").size() == 1; }, 30))
      << read_file(file("worker.err"));
  const std::string port = std::to_string(server->port());
  ASSERT_EQ(status(https(*server, "/api/repos/app/branches/main/test", "127.0.0.1",
                         "-X POST -H 'Content-Type: application/json' -d '{\"enabled\": true}'")),
            200);
  json run;
  ASSERT_TRUE(eventually(
      [&] {
        const json runs =
            get(*server, "/api/repos/app/commits/" + sha_ + "/runs?name=greets/linux");
        run = runs.is_array() && runs.size() == 1 ? runs[0] : json();
        return run.is_object() && run["state"] != "running";
      },
      90))
      << read_file(file("worker.err"));
  ASSERT_EQ(run["state"], "succeeded") << run.dump(2) << read_file(file("worker.err"));
  // The source came as an archive and the record went up, over HTTPS.
  EXPECT_FALSE(fs::is_empty(worker_dir_.path() + "/sources"));
  const std::string id = run["id"];
  EXPECT_TRUE(fs::exists(file("data/artifacts/runs/" + id + "/test_result.json")));
  const json artifacts = get(*server, "/api/runs/" + id + "/artifacts");
  ASSERT_EQ(artifacts.size(), 1u) << artifacts.dump(2);
  EXPECT_EQ(artifacts[0]["name"], "report.tar");
}

// A TLS server's local workers reach it over WSS, trusting exactly its certificate (whose issuer
// they were never told of), and run its tests.
TEST_F(TlsTest, LocalWorker_TrustsTheServersOwnCertificate) {
  auto server = start_tls_server({"--worker-cores", "1", "--worker-ram-gb", "1"}, "1");
  ASSERT_TRUE(eventually([&] { return get(*server, "/api/repos").size() == 1; }, 30));
  ASSERT_TRUE(eventually(
      [&] {
        const json workers = get(*server, "/api/workers");
        return workers.size() == 1 && workers[0]["connected"] == true;
      },
      30));
  ASSERT_EQ(status(https(*server, "/api/repos/app/branches/main/test", "127.0.0.1",
                         "-X POST -H 'Content-Type: application/json' -d '{\"enabled\": true}'")),
            200);
  EXPECT_TRUE(eventually(
      [&] {
        const json runs =
            get(*server, "/api/repos/app/commits/" + sha_ + "/runs?name=greets/linux");
        return runs.is_array() && runs.size() == 1 && runs[0]["state"] == "succeeded";
      },
      90));
}

TEST_F(TlsTest, Worker_WithoutTheCaOrWithAnotherGetsNoJobAndSaysWhy) {
  make_certificates(dir_.path(), "other", false);
  auto server = start_tls_server();
  ASSERT_TRUE(eventually([&] { return get(*server, "/api/repos").size() == 1; }, 30));
  ASSERT_EQ(status(https(*server, "/api/repos/app/branches/main/test", "127.0.0.1",
                         "-X POST -H 'Content-Type: application/json' -d '{\"enabled\": true}'")),
            200);
  const std::string url = "https://127.0.0.1:" + std::to_string(server->port());
  auto worker_args = [&](const std::string& id) {
    return std::vector<std::string>{"--server", url, "--dir",        worker_dir_.path() + "/" + id,
                                    "--id",     id,  "--token-file", file("data/worker.token")};
  };
  std::vector<std::string> other = worker_args("other-ca");
  other.insert(other.end(), {"--ca-file", file("other.pem")});
  WorkerProcess system_store(worker_args("system-ca"), SIGTERM, file("system.err"));
  WorkerProcess wrong_ca(other, SIGTERM, file("other.err"));
  for (const std::string log : {"system.err", "other.err"}) {
    ASSERT_TRUE(eventually(
        [&] { return read_file(file(log)).find("certificate verify failed") != std::string::npos; },
        30))
        << log << ": " << read_file(file(log));
    EXPECT_NE(read_file(file(log)).find("retrying"), std::string::npos);
  }
  // Neither connected, so no run was started.
  EXPECT_EQ(get(*server, "/api/workers"), json::array());
  EXPECT_EQ(get(*server, "/api/repos/app/commits/" + sha_ + "/runs"), json::array());
}

TEST_F(TlsTest, PlainHttpAndSilentClientsDoNotHoldTheServer) {
  auto server = start_tls_server({"--http-timeout", "1"});
  ASSERT_TRUE(eventually([&] { return get(*server, "/api/repos").size() == 1; }, 30));
  const std::string port = std::to_string(server->port());
  // Plain HTTP to the TLS port gets a plain 400 saying so, and the server goes on serving.
  const std::string plain =
      capture("curl -s --max-time 20 -w ' %{http_code}' http://127.0.0.1:" + port + "/api/repos");
  EXPECT_EQ(status(plain), 400) << plain;
  EXPECT_NE(plain.find("https://"), std::string::npos) << plain;
  EXPECT_EQ(status(https(*server, "/api/repos")), 200);
  // A connection that never handshakes does not hold the server, and is closed after the
  // --http-timeout.
  SilentConnection silent(server->port());
  ASSERT_TRUE(silent.connected());
  EXPECT_EQ(status(https(*server, "/api/repos")), 200);
  EXPECT_TRUE(eventually([&] { return silent.closed_by_server(); }, 30));
  EXPECT_EQ(status(https(*server, "/api/repos")), 200);
}

// The per-client cap counts connections still handshaking, and such a connection may be closed
// to make room for one of the same client that sends a whole request (slowloris over TLS).
TEST_F(TlsTest, ConnectionCap_AppliesToHandshakingConnections) {
  auto server = start_tls_server({"--max-connections-per-client", "2"});
  ASSERT_TRUE(eventually([&] { return get(*server, "/api/repos").size() == 1; }, 30));
  SilentConnection first(server->port());
  SilentConnection second(server->port());
  ASSERT_TRUE(first.connected() && second.connected());
  EXPECT_EQ(status(https(*server, "/api/repos")), 200);
  EXPECT_TRUE(eventually([&] { return first.closed_by_server(); }, 30));
  EXPECT_EQ(status(https(*server, "/api/repos")), 200);
}

TEST_F(TlsTest, TlsFiles_MissingUnreadableOrMismatchedRefuseToStart) {
  make_certificates(dir_.path(), "other", false);
  const std::string base = "--repos " + shell_quote(dir_.path() + "/repos") + " --data " +
                           shell_quote(file("data")) + " --port 0 --workers 0";
  auto [code, out] = serve_output(base + " --tls-cert " + shell_quote(file("server.pem")));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--tls-key"), std::string::npos) << out;
  std::tie(code, out) = serve_output(base + " --tls-cert " + shell_quote(file("nope.pem")) +
                                     " --tls-key " + shell_quote(file("server.key")));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("nope.pem: cannot read it"), std::string::npos) << out;
  std::tie(code, out) = serve_output(base + " --tls-cert " + shell_quote(file("server.pem")) +
                                     " --tls-key " + shell_quote(file("other.key")));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("other.key"), std::string::npos) << out;
  EXPECT_NE(out.find("mismatch"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(file("data")));
}

TEST_F(TlsTest, NonLoopbackBind_WithoutAuthRefusesToStartUnlessInsecure) {
  const std::string base = "--repos " + shell_quote(dir_.path() + "/repos") + " --data " +
                           shell_quote(file("data")) + " --port 0 --workers 0";
  for (const std::string bind : {"0.0.0.0", "::", "[::]"}) {
    const auto [code, out] = serve_output(base + " --bind " + shell_quote(bind));
    EXPECT_EQ(code, 2) << bind;
    EXPECT_NE(out.find("no authentication"), std::string::npos) << out;
    EXPECT_NE(out.find("--auth token"), std::string::npos) << out;
    EXPECT_NE(out.find("--insecure-no-auth"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(file("data"))) << "the data dir was touched";
  }
  // With --insecure-no-auth it starts, and is reached at 127.0.0.1.
  ServerProcess server({"--repos", dir_.path() + "/repos", "--data", file("data"), "--port", "0",
                        "--workers", "0", "--bind", "0.0.0.0", "--insecure-no-auth"});
  EXPECT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
}

TEST_F(TlsTest, Bind_ServesTheGivenLoopbackAddressAndIpLiteralHosts) {
  ServerProcess server({"--repos", dir_.path() + "/repos", "--data", file("data"), "--port", "0",
                        "--workers", "0", "--bind", "127.0.0.2"});
  const std::string port = std::to_string(server.port());
  auto curl_status = [&](const std::string& url, const std::string& options = "") {
    return capture("curl -s --max-time 20 -o /dev/null -w '%{http_code}' " + options + " " +
                   shell_quote(url));
  };
  EXPECT_TRUE(eventually(
      [&] { return curl_status("http://127.0.0.2:" + port + "/api/repos") == "200"; }, 30));
  // Nothing listens on 127.0.0.1 at that port.
  EXPECT_EQ(curl_status("http://127.0.0.1:" + port + "/api/repos"), "000");
  // Any IP literal is served as a Host (it cannot be DNS-rebound); other names are not.
  const std::string url = "http://127.0.0.2:" + port + "/api/repos";
  EXPECT_EQ(curl_status(url, "-H 'Host: 10.1.2.3:9081'"), "200");
  EXPECT_EQ(curl_status(url, "-H 'Host: [2001:db8::1]'"), "200");
  EXPECT_EQ(curl_status(url, "-H 'Host: ci.internal:9081'"), "421");
  EXPECT_EQ(curl_status(url, "-H 'Host: 10.1.2.3.evil.example'"), "421");
}

// The config file's keys reach the same checks: server.bind (and the seed's
// server_ports.server_address, once refused unless loopback), TLS files, insecure_no_auth.
TEST_F(TlsTest, Config_BindTlsAndInsecureNoAuthKeys) {
  auto write_config = [&](const std::string& server, const std::string& ports) {
    std::ofstream(file("config.json"))
        << R"({"server": {"path_to_local_data": )" << json(file("data")).dump() << server
        << R"(}, "server_ports": {"server_port": 0)" << ports
        << R"(}, "source_control": {"path_to_repos": )" << json(dir_.path() + "/repos").dump()
        << R"(}, "machine_management": {"max_workers": 0}})";
  };
  const std::string config = "--config " + shell_quote(file("config.json"));
  write_config(R"(, "bind": "0.0.0.0")", "");
  auto [code, out] = serve_output(config);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("no authentication"), std::string::npos) << out;
  write_config("", R"(, "server_address": "::")");
  std::tie(code, out) = serve_output(config);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("no authentication"), std::string::npos) << out;
  write_config(R"(, "bind": "127.0.0.1")", R"(, "server_address": "127.0.0.2")");
  std::tie(code, out) = serve_output(config);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("different addresses"), std::string::npos) << out;
  write_config(R"(, "tls_cert": )" + json(file("server.pem")).dump(), "");
  std::tie(code, out) = serve_output(config);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("tls_key"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(file("data")));

  // A wildcard with insecure_no_auth and TLS from the file: served over HTTPS at 127.0.0.1.
  write_config(R"(, "bind": "0.0.0.0", "insecure_no_auth": true, "tls_cert": )" +
                   json(file("server.pem")).dump() + R"(, "tls_key": )" +
                   json(file("server.key")).dump(),
               "");
  ServerProcess server({"--config", file("config.json")});
  EXPECT_TRUE(eventually([&] { return get(server, "/api/repos").size() == 1; }, 30));
}

// An IPv6 literal: --bind [::1] serves there (skipped where the machine has no ::1).
TEST_F(TlsTest, Bind_IPv6Loopback) {
  const int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  const bool has_v6 =
      probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  if (probe >= 0) ::close(probe);
  if (!has_v6) GTEST_SKIP() << "skipped: this machine cannot bind ::1 (no IPv6 loopback)";
  auto server = start_tls_server({"--bind", "[::1]"});
  const std::string url = "https://[::1]:" + std::to_string(server->port()) + "/api/repos";
  EXPECT_TRUE(eventually(
      [&] {
        return capture("curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert " +
                       shell_quote(file("ca.pem")) + " " + shell_quote(url)) == "200";
      },
      30));
}

}  // namespace
}  // namespace testlooper::server
