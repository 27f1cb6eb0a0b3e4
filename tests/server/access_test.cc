// Issue 12, part A: API tokens, roles on every endpoint, worker tokens, the limit on failed
// authentications and the audit log, through a real `testlooper serve` on loopback with real
// `testlooper token` commands, curl and WebSockets. Refused requests are read back: they
// changed nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "fake_worker.h"
#include "server_fixture.h"
#include "ws_client.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
using fixtures::capture;
using fixtures::eventually;
using fixtures::FakeWorker;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using fixtures::WsClient;
using nlohmann::json;

constexpr const char* kDefinitions = fixtures::kBuildAndEndlessTest;

struct Reply {
  int status = 0;
  json body;
  std::string headers;
};

class AccessTest : public testing::Test {
 protected:
  AccessTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kDefinitions);
    sha_ = app_.commit("first");
  }

  // Starts the server without local workers; `extra` are more flags (--auth ...).
  void start(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--repos", dir_.path() + "/repos", "--data", data(), "--port",
                                     "0",       "--poll-seconds",       "0.3"};
    if (std::find(extra.begin(), extra.end(), "--workers") == extra.end()) {
      args.insert(args.end(), {"--workers", "0"});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(args);
    if (admin_.empty()) admin_ = create("root", "admin");
    ASSERT_FALSE(admin_.empty());
    ASSERT_TRUE(
        eventually([&] { return request("GET", "/api/repos", admin_).body.size() == 1; }, 30));
  }

  std::string data() const { return dir_.path() + "/data"; }

  // `testlooper token ARGS`: its exit status and stdout.
  std::pair<int, std::string> token_command(const std::string& args) const {
    const std::string out =
        capture(std::string(TL_BINARY) + " token " + args + " 2>/dev/null; echo \"rc=$?\"");
    const size_t rc = out.rfind("rc=");
    return {std::stoi(out.substr(rc + 3)), out.substr(0, rc)};
  }
  // A new token named `name` with `role` (the CLI's stdout without its newline).
  std::string create(const std::string& name, const std::string& role) const {
    auto [status, out] = token_command("create --data " + shell_quote(data()) + " --name " + name +
                                       " --role " + role);
    if (status != 0 || out.empty()) return "";
    return out.substr(0, out.find('\n'));
  }

  // A request with `token` ("" = none) from `client` ("" = 127.0.0.1).
  Reply request(const std::string& method, const std::string& path, const std::string& token,
                const std::string& body = "", const std::string& client = "") const {
    const std::string headers_file = head_.path() + "/headers";
    std::string cmd =
        "curl -s -D " + shell_quote(headers_file) + " -w '\\n%{http_code}' -X " + method + " ";
    if (!token.empty()) cmd += "-H " + shell_quote("Authorization: Bearer " + token) + " ";
    if (method == "POST")
      cmd += "-H 'Content-Type: application/json' -d " + shell_quote(body) + " ";
    if (!client.empty()) cmd += "--interface " + client + " ";
    const std::string out = capture(cmd + shell_quote(server_->url(path)));
    const size_t nl = out.rfind('\n');
    Reply r;
    r.status = std::stoi(out.substr(nl + 1));
    r.body = json::parse(out.substr(0, nl), nullptr, false);
    std::ifstream in(headers_file);
    r.headers.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return r;
  }
  int status(const std::string& method, const std::string& path, const std::string& token,
             const std::string& body = "") const {
    return request(method, path, token, body).status;
  }

  json branch() const {
    const json b = request("GET", "/api/repos/app/branches", admin_).body;
    return b.is_array() && b.size() == 1 ? b[0] : json();
  }
  json object(const std::string& name) const {
    const json c = request("GET", "/api/repos/app/commits/" + sha_, admin_).body;
    for (const json& o : c.value("objects", json::array())) {
      if (o["name"] == name) return o;
    }
    return json();
  }
  json workers() const { return request("GET", "/api/workers", admin_).body; }

  // The bytes of the store's files (the database and its write-ahead log).
  std::string store_bytes() const {
    std::string all;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::ifstream in(data() + "/state.db" + suffix, std::ios::binary);
      all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return all;
  }

  TempDir dir_;
  TempDir head_;
  GitFixtureRepo app_;
  std::string sha_;
  std::unique_ptr<ServerProcess> server_;
  std::string admin_;
};

TEST_F(AccessTest, EachRoleAgainstEachKindOfEndpoint) {
  start({"--auth", "token"});
  const std::string viewer = create("view", "viewer");
  const std::string editor = create("edit", "editor");
  const std::string worker = create("pool", "worker");
  ASSERT_FALSE(viewer.empty() || editor.empty() || worker.empty());
  const std::string wrong = "tl_" + std::string(64, '0');

  // A GET: viewers and up; anonymous 401 saying how to authenticate; a worker token is no user.
  const Reply anonymous = request("GET", "/api/repos", "");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_NE(anonymous.headers.find("WWW-Authenticate: Bearer"), std::string::npos)
      << anonymous.headers;
  EXPECT_NE(anonymous.body.value("error", "").find("viewer"), std::string::npos) << anonymous.body;
  EXPECT_EQ(status("GET", "/api/repos", wrong), 401);
  EXPECT_EQ(status("GET", "/api/repos", worker), 403);
  for (const auto& t : {viewer, editor, admin_}) EXPECT_EQ(status("GET", "/api/repos", t), 200);

  // Each editor POST: refused (401/403) for anonymous and viewers, and nothing changed.
  const std::string test = "/api/repos/app/branches/main/test";
  const std::string targets = "/api/repos/app/commits/" + sha_ + "/targets";
  const std::string retry = "/api/repos/app/commits/" + sha_ + "/retry";
  const std::string cancel = "/api/runs/0123456789abcdef/cancel";
  const std::string off = R"({"enabled": false})";
  ASSERT_EQ(status("POST", test, admin_, R"({"enabled": true})"), 200);
  ASSERT_TRUE(eventually([&] { return object("slow/linux")["status"] != "not_enabled"; }, 30));
  const json before = object("slow/linux");
  const std::string three = R"({"name": "slow/linux", "runs": 3})";
  const std::string name = R"({"name": "slow/linux"})";
  for (const auto& [token, expected] : std::vector<std::pair<std::string, int>>{
           {"", 401}, {wrong, 401}, {viewer, 403}, {worker, 403}}) {
    const Reply r = request("POST", test, token, off);
    EXPECT_EQ(r.status, expected) << r.body;
    EXPECT_NE(r.body.value("error", "").find("editor"), std::string::npos) << r.body;
    EXPECT_EQ(status("POST", targets, token, three), expected);
    EXPECT_EQ(status("POST", retry, token, name), expected);
    EXPECT_EQ(status("POST", cancel, token, "{}"), expected);
    EXPECT_EQ(status("POST", "/api/refresh", token, "{}"), expected);
    EXPECT_EQ(status("GET", "/api/audit", token), expected);
  }
  EXPECT_EQ(branch()["under_test"], true) << branch();
  EXPECT_EQ(object("slow/linux")["target_runs"], before["target_runs"]) << object("slow/linux");
  EXPECT_EQ(workers(), json::array());

  // Editors may; the audit log is for admins.
  EXPECT_EQ(status("POST", targets, editor, three), 200);
  EXPECT_TRUE(eventually([&] { return object("slow/linux")["target_runs"] == 3; }, 30));
  EXPECT_EQ(status("POST", retry, editor, name), 200);
  EXPECT_EQ(status("POST", cancel, editor, "{}"), 404);  // allowed; there is no such run
  EXPECT_EQ(status("POST", "/api/refresh", editor, "{}"), 200);
  EXPECT_EQ(status("GET", "/api/audit", editor), 403);
  EXPECT_EQ(status("GET", "/api/audit", admin_), 200);
  EXPECT_EQ(status("POST", test, editor, off), 200);
  EXPECT_EQ(branch()["under_test"], false);

  // Worker endpoints: a worker token and nothing else, not even an admin's (401).
  const std::string source = "/api/source/app/" + sha_;
  for (const auto& t : {std::string(), viewer, editor, admin_}) {
    EXPECT_EQ(status("GET", source, t), 401) << t;
    EXPECT_EQ(status("POST", "/api/artifacts/runs/0123456789abcdef", t, "x"), 401) << t;
    WsClient socket(server_->port(), "/api/worker", t);
    EXPECT_FALSE(socket.connected()) << t;
  }
  EXPECT_EQ(status("GET", source, worker), 200);
  FakeWorker pool(server_->port(), worker, "pool-1", 1, 1);
  ASSERT_TRUE(pool.connected());
  ASSERT_TRUE(eventually([&] { return workers().size() == 1; }, 30));
  EXPECT_EQ(workers()[0]["token"], "pool");

  // The event socket: viewers; the web UI's files and push webhooks: everyone.
  EXPECT_FALSE(WsClient(server_->port(), "/api/events", "").connected());
  EXPECT_FALSE(WsClient(server_->port(), "/api/events", worker).connected());
  EXPECT_TRUE(WsClient(server_->port(), "/api/events", viewer).connected());
  const int page = status("GET", "/", "");
  EXPECT_TRUE(page == 200 || page == 404) << page;  // 404 when web/dist is not built
  EXPECT_EQ(status("POST", "/webhook", "", R"({"ref": "refs/heads/main"})"), 200);
}

TEST_F(AccessTest, PublicReadLetsAnonymousUsersViewOnly) {
  const std::string config = dir_.path() + "/config.json";
  std::ofstream(config) << json{{"source_control", {{"path_to_repos", dir_.path() + "/repos"}}},
                                {"auth", {{"mode", "token"}, {"public_read", true}}}}
                               .dump();
  start({"--config", config});
  EXPECT_EQ(status("GET", "/api/repos", ""), 200);
  EXPECT_EQ(status("GET", "/api/repos/app/commits/" + sha_, ""), 200);
  EXPECT_TRUE(WsClient(server_->port(), "/api/events", "").connected());
  EXPECT_EQ(status("POST", "/api/repos/app/branches/main/test", "", R"({"enabled": true})"), 401);
  EXPECT_EQ(branch()["under_test"], false);
  EXPECT_EQ(status("GET", "/api/audit", ""), 401);
  // A wrong token is an error even where no token is needed.
  EXPECT_EQ(status("GET", "/api/repos", "tl_" + std::string(64, '1')), 401);
}

TEST_F(AccessTest, RevokeTakesEffectAtTheNextRequestAndTokensAreNeverStored) {
  start({"--auth", "token"});
  const std::string editor = create("ed", "editor");
  ASSERT_EQ(editor.size(), 67u);
  EXPECT_EQ(editor.substr(0, 3), "tl_");
  EXPECT_EQ(create("ed", "viewer"), "");  // a name in use
  EXPECT_EQ(
      token_command("create --data " + shell_quote(data()) + " --name ed --role viewer").first, 1);
  EXPECT_EQ(status("GET", "/api/repos", editor), 200);

  const auto [listed, list] = token_command("list --data " + shell_quote(data()));
  EXPECT_EQ(listed, 0);
  // Its last use is kept (at most once a minute).
  const size_t line = list.find("\ned ");
  ASSERT_NE(line, std::string::npos) << list;
  EXPECT_EQ(list.substr(line, list.find('\n', line + 1) - line).find("never"), std::string::npos)
      << list;
  EXPECT_NE(list.find("ed"), std::string::npos) << list;
  EXPECT_NE(list.find("local"), std::string::npos) << list;  // the local workers' token
  EXPECT_EQ(list.find(editor), std::string::npos) << list;
  EXPECT_EQ(list.find(editor.substr(3, 16)), std::string::npos) << list;
  const std::string bytes = store_bytes();
  EXPECT_EQ(bytes.find(editor), std::string::npos);
  EXPECT_EQ(bytes.find(editor.substr(3)), std::string::npos);
  EXPECT_EQ(bytes.find(admin_.substr(3)), std::string::npos);

  EXPECT_EQ(token_command("revoke --data " + shell_quote(data()) + " ed").first, 0);
  EXPECT_EQ(status("GET", "/api/repos", editor), 401);
  EXPECT_EQ(status("POST", "/api/repos/app/branches/main/test", editor, R"({"enabled": true})"),
            401);
  EXPECT_EQ(branch()["under_test"], false);
  EXPECT_EQ(token_command("revoke --data " + shell_quote(data()) + " ed").first, 1);
}

// In every mode, none included: a worker needs a worker token, and loses its connection when
// that token is revoked.
TEST_F(AccessTest, WorkerWithoutAWorkerTokenGetsNoJob) {
  start({"--auth", "none"});
  const std::string viewer = create("view", "viewer");
  const std::string worker = create("pool", "worker");
  ASSERT_EQ(status("POST", "/api/repos/app/branches/main/test", "", R"({"enabled": true})"), 200);
  for (const auto& t : {std::string(), viewer, admin_, "tl_" + std::string(64, '2')}) {
    FakeWorker rogue(server_->port(), t, "rogue", 4, 4);
    EXPECT_FALSE(rogue.connected()) << t;
  }
  EXPECT_EQ(workers(), json::array());

  FakeWorker pool(server_->port(), worker, "pool-1", 4, 4);
  ASSERT_TRUE(pool.connected());
  ASSERT_TRUE(pool.job("build/linux").has_value());
  ASSERT_TRUE(eventually([&] { return workers().size() == 1; }, 30));
  EXPECT_EQ(workers()[0]["token"], "pool");
  EXPECT_EQ(token_command("revoke --data " + shell_quote(data()) + " pool").first, 0);
  // Disconnected at once (the server looks at each connection's token every half second and
  // before every dispatch), with the reason.
  const auto reason = pool.socket().close_reason(30);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("revoked"), std::string::npos) << *reason;
  EXPECT_TRUE(eventually([&] { return workers()[0]["connected"] == false; }, 30)) << workers();
  FakeWorker again(server_->port(), worker, "pool-1", 4, 4);
  EXPECT_FALSE(again.connected());
}

TEST_F(AccessTest, RealWorkerTakesItsTokenFromTheEnvironment) {
  start({"--auth", "token"});
  const std::string worker = create("pool", "worker");
  TempDir worker_dir;
  setenv("TESTLOOPER_TOKEN", worker.c_str(), 1);
  WorkerProcess remote({"--server", server_->url(""), "--dir", worker_dir.path(), "--cores", "1",
                        "--ram-gb", "1", "--id", "remote-1"});
  unsetenv("TESTLOOPER_TOKEN");
  ASSERT_TRUE(eventually(
      [&] {
        const json w = workers();
        return w.size() == 1 && w[0]["connected"] == true;
      },
      60))
      << workers();
  EXPECT_EQ(workers()[0]["id"], "remote-1");
  EXPECT_EQ(workers()[0]["token"], "pool");
}

TEST_F(AccessTest, AuthDisabledMeansNoneAndContradictionsAreRefused) {
  const std::string config = dir_.path() + "/config.json";
  std::ofstream(config) << json{
      {"source_control", {{"path_to_repos", dir_.path() + "/repos"}, {"auth_disabled", true}}},
      {"auth",
       {{"mode", "token"}}}}.dump();
  const std::string out =
      capture(std::string(TL_BINARY) + " serve --port 0 --data " + shell_quote(data()) +
              " --config " + shell_quote(config) + " 2>&1; echo \"rc=$?\"");
  EXPECT_NE(out.find("rc=2"), std::string::npos) << out;
  EXPECT_NE(out.find("auth_disabled"), std::string::npos) << out;
  std::ofstream(config) << json{{"source_control",
                                 {{"path_to_repos", dir_.path() + "/repos"},
                                  {"auth_disabled", true}}}}
                               .dump();
  start({"--config", config});
  EXPECT_EQ(status("GET", "/api/repos", ""), 200);
  EXPECT_EQ(status("POST", "/api/repos/app/branches/main/test", "", R"({"enabled": true})"), 200);
}

// The local workers' token is the one named "local": it cannot be revoked (its workers would
// retry from 127.0.0.1 and trip the failed-authentication limit for every local client), and
// it is the same after a restart.
TEST_F(AccessTest, LocalWorkersTokenCannotBeRevoked) {
  const std::vector<std::string> flags = {"--auth", "token", "--workers", "1"};
  start(flags);
  auto local_connected = [&] {
    const json w = workers();
    return w.size() == 1 && w[0]["connected"] == true && w[0]["token"] == "local";
  };
  ASSERT_TRUE(eventually(local_connected, 60)) << workers();
  EXPECT_EQ(token_command("revoke --data " + shell_quote(data()) + " local").first, 1);
  EXPECT_EQ(status("POST", "/api/tokens/local/revoke", admin_, "{}"), 400);
  EXPECT_NE(token_command("list --data " + shell_quote(data())).second.find("local"),
            std::string::npos);
  server_->stop(SIGTERM);
  start(flags);
  EXPECT_TRUE(eventually(local_connected, 60)) << workers();
}

TEST_F(AccessTest, FailedAuthenticationsAreRateLimitedPerAddress) {
  start({"--auth", "token"});
  const std::string viewer = create("view", "viewer");
  const std::string wrong = "tl_" + std::string(64, '3');
  // Another loopback address is another client.
  ASSERT_EQ(request("GET", "/api/repos", viewer, "", "127.0.0.2").status, 200)
      << "127.0.0.2 should be usable as a loopback source address";
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(request("GET", "/api/repos", wrong, "", "127.0.0.2").status, 401);
  const Reply limited = request("GET", "/api/repos", wrong, "", "127.0.0.2");
  EXPECT_EQ(limited.status, 429);
  EXPECT_NE(limited.headers.find("Retry-After: "), std::string::npos) << limited.headers;
  // Every request with credentials from that address, a good token's too; none from another.
  EXPECT_EQ(request("GET", "/api/repos", viewer, "", "127.0.0.2").status, 429);
  EXPECT_EQ(request("GET", "/api/repos", viewer, "", "127.0.0.1").status, 200);
  EXPECT_EQ(request("GET", "/api/repos", "", "", "127.0.0.2").status, 401);
}

TEST_F(AccessTest, AuditLogRecordsWhoWhatWhereAndNoSecrets) {
  start({"--auth", "token"});
  const std::string editor = create("ed", "editor");
  const std::string viewer = create("view", "viewer");
  ASSERT_EQ(status("POST", "/api/repos/app/branches/main/test", editor, R"({"enabled": true})"),
            200);
  ASSERT_EQ(status("POST", "/api/repos/app/branches/main/test", viewer, R"({"enabled": false})"),
            403);
  ASSERT_EQ(status("POST", "/api/refresh?secret=" + editor, "", "{}"), 401);
  ASSERT_EQ(status("GET", "/api/repos", editor), 200);  // reads are not audited
  const json log = request("GET", "/api/audit?limit=3", admin_).body;
  ASSERT_TRUE(log.is_array() && log.size() == 3) << log;
  EXPECT_EQ(log[0]["who"], "anonymous");
  EXPECT_EQ(log[0]["path"], "/api/refresh");
  EXPECT_EQ(log[0]["status"], 401);
  EXPECT_EQ(log[1]["who"], "token:view");
  EXPECT_EQ(log[1]["role"], "viewer");
  EXPECT_EQ(log[1]["status"], 403);
  EXPECT_EQ(log[2]["who"], "token:ed");
  EXPECT_EQ(log[2]["role"], "editor");
  EXPECT_EQ(log[2]["via"], "token");
  EXPECT_EQ(log[2]["method"], "POST");
  EXPECT_EQ(log[2]["path"], "/api/repos/app/branches/main/test");
  EXPECT_EQ(log[2]["client"], "127.0.0.1");
  EXPECT_EQ(log[2]["status"], 200);
  EXPECT_GT(log[0]["id"].get<int64_t>(), log[1]["id"].get<int64_t>());
  // Paging, and the token commands (who = "cli").
  const json older =
      request("GET", "/api/audit?limit=100&before=" + log[2]["id"].dump(), admin_).body;
  ASSERT_TRUE(older.is_array() && !older.empty()) << older;
  EXPECT_EQ(older[0]["who"], "cli");
  EXPECT_EQ(older[0]["path"], "token create view (viewer)");
  EXPECT_EQ(request("GET", "/api/audit?limit=0", admin_).status, 400);
  EXPECT_EQ(request("GET", "/api/audit", admin_).body.dump().find(editor), std::string::npos);
}

TEST_F(AccessTest, AdminsManageTokensOverHttp) {
  start({"--auth", "token"});
  const std::string editor = create("ed", "editor");
  const std::string make = R"({"name": "bot", "role": "viewer"})";
  EXPECT_EQ(status("POST", "/api/tokens", "", make), 401);
  EXPECT_EQ(status("POST", "/api/tokens", editor, make), 403);
  EXPECT_EQ(status("GET", "/api/tokens", editor), 403);
  EXPECT_EQ(status("POST", "/api/tokens/ed/revoke", editor, "{}"), 403);
  EXPECT_EQ(status("GET", "/api/repos", editor), 200);  // still there

  const Reply made = request("POST", "/api/tokens", admin_, make);
  ASSERT_EQ(made.status, 200) << made.body;
  const std::string bot = made.body.value("token", "");
  EXPECT_EQ(bot.size(), 67u);
  EXPECT_EQ(status("GET", "/api/repos", bot), 200);
  EXPECT_EQ(status("POST", "/api/tokens", admin_, make), 409);
  EXPECT_EQ(status("POST", "/api/tokens", admin_, R"({"name": "local", "role": "admin"})"), 400);
  EXPECT_EQ(status("POST", "/api/tokens", admin_, R"({"name": "a/b", "role": "admin"})"), 400);
  EXPECT_EQ(status("POST", "/api/tokens", admin_, R"({"name": "x", "role": "root"})"), 400);
  const json listed = request("GET", "/api/tokens", admin_).body;
  ASSERT_TRUE(listed.is_array()) << listed;
  EXPECT_EQ(listed.dump().find(bot), std::string::npos);
  EXPECT_NE(listed.dump().find("\"bot\""), std::string::npos) << listed;

  EXPECT_EQ(status("POST", "/api/tokens/bot/revoke", admin_, "{}"), 200);
  EXPECT_EQ(status("GET", "/api/repos", bot), 401);
  EXPECT_EQ(status("POST", "/api/tokens/bot/revoke", admin_, "{}"), 404);
}

}  // namespace
}  // namespace testlooper::server
