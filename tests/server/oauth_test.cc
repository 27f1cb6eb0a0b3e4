// Issue 12, part C: sign-in with GitHub and GitLab (OAuth 2), sessions and CSRF, through the
// real server and a fake provider (fake_oauth.py) on loopback, driven over real HTTP with curl
// and a cookie jar per "browser".
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::capture;
using fixtures::shell_quote;
using nlohmann::json;

// tests/server/fake_oauth.py (GitHub or GitLab) on a kernel-chosen loopback port; killed and
// waited for on destruction.
class FakeProvider {
 public:
  FakeProvider(const std::string& kind, const std::string& org) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      setpgid(0, 0);
      execlp("python3", "python3", FAKE_OAUTH, "--kind", kind.c_str(), "--client-id", "the-app",
             "--client-secret", "the-secret", "--org", org.c_str(), "--user", "alice:11", "--user",
             "bob:12", "--user", "carol:13", "--member", "alice", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[128] = {0};
    if (fgets(line, sizeof(line), f) == nullptr)
      throw std::runtime_error("fake_oauth did not start");
    fclose(f);
    port_ = std::stoi(std::string(line).substr(5));
  }
  ~FakeProvider() {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  json control(const std::string& what) const {
    return json::parse(capture("curl -s --max-time 30 " + shell_quote(url() + "/_control/" + what)),
                       nullptr, false);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

struct Reply {
  int status = 0;
  std::string head;  // the status line and header fields
  json body;
  std::string header(const std::string& name) const {
    std::string lower_head = head;
    for (auto& c : lower_head) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    std::string key = name;
    for (auto& c : key) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    const size_t at = lower_head.find("\n" + key + ": ");
    if (at == std::string::npos) return "";
    const size_t from = at + key.size() + 3;
    return head.substr(from, head.find('\r', from) - from);
  }
};

// `curl` with `args`: the status, head and body (parsed as JSON) of the answer.
Reply curl(const std::string& args) {
  const std::string out = capture("curl -s -i --max-time 60 " + args);
  Reply r;
  const size_t split = out.find("\r\n\r\n");
  r.head = out.substr(0, split);
  if (r.head.size() > 12) r.status = std::atoi(r.head.substr(9, 3).c_str());
  if (split != std::string::npos) r.body = json::parse(out.substr(split + 4), nullptr, false);
  return r;
}

// The first column of each row `sql` selects in the SQLite database `path`, one a line.
std::string query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_exec(
        db, sql.c_str(),
        [](void* to, int, char** values, char**) {
          *static_cast<std::string*>(to) += std::string(values[0] ? values[0] : "") + "\n";
          return 0;
        },
        &out, nullptr);
  }
  sqlite3_close(db);
  return out;
}

// A browser: a cookie jar of its own.
class Browser {
 public:
  explicit Browser(const std::string& jar) : jar_(jar) {}
  Reply get(const std::string& url) const { return curl(cookies() + shell_quote(url)); }
  Reply post(const std::string& url, const std::string& body, const std::string& csrf = "") const {
    return curl(cookies() + "-X POST -H 'Content-Type: application/json' " +
                (csrf.empty() ? "" : "-H " + shell_quote("X-CSRF-Token: " + csrf) + " ") + "-d " +
                shell_quote(body) + " " + shell_quote(url));
  }
  const std::string& jar() const { return jar_; }

 private:
  std::string cookies() const {
    return "-b " + shell_quote(jar_) + " -c " + shell_quote(jar_) + " ";
  }
  std::string jar_;
};

// A server in mode oauth signing in with `provider`; `auth` is more of the auth section.
class SignInServer {
 public:
  SignInServer(const std::string& kind, const std::string& org, const std::string& auth = "",
               const std::string& server_keys = "")
      : provider(kind, org) {
    fixtures::GitFixtureRepo app(dir.path() + "/repos/app");
    app.write("testlooper.yml",
              "looper_version: 5\n"
              "environments: {linux: {platform: linux, image: {host: true}}}\n"
              "tests:\n"
              "  one/linux: {command: 'true'}\n");
    app.commit("tests");
    const std::string p = provider.url();
    json source = {{"path_to_repos", dir.path() + "/repos"},
                   {"oauth_key", "the-app"},
                   {"oauth_secret", "the-secret"}};
    if (kind == "github") {
      source.update({{"github_login_url", p}, {"github_api_url", p}, {"owner", org}});
    } else {
      source.update({{"gitlab_login_url", p}, {"gitlab_api_url", p + "/api/v4"}, {"group", org}});
    }
    json auth_section = {{"mode", "oauth"}, {"admins", {"Carol"}}};
    if (!auth.empty()) auth_section.update(json::parse(auth));
    json server_section = {{"path_to_local_data", dir.path() + "/data"}, {"poll_seconds", 0.3}};
    if (!server_keys.empty()) server_section.update(json::parse(server_keys));
    const json config = {{"server", server_section},
                         {"source_control", source},
                         {"auth", auth_section},
                         {"machine_management", {{"max_workers", 0}}}};
    std::ofstream(dir.path() + "/config.json") << config.dump(2);
    start();
  }
  void start() {
    server = std::make_unique<fixtures::ServerProcess>(
        std::vector<std::string>{"--config", dir.path() + "/config.json", "--port", "0"});
  }
  Browser browser(const std::string& name) const {
    return Browser(dir.path() + "/" + name + ".jar");
  }

  // Signs `who` in from `browser`: /auth/login, the provider's authorize (approved at once), and
  // the callback. The callback's reply.
  Reply sign_in(const Browser& b, const std::string& who) const {
    const Reply login = b.get(server->url("/auth/login"));
    EXPECT_EQ(login.status, 302) << login.head;
    const Reply authorize = curl(shell_quote(login.header("Location") + "&auto=1&as=" + who));
    EXPECT_EQ(authorize.status, 302) << authorize.head;
    return b.get(authorize.header("Location"));
  }
  json session(const Browser& b) const { return b.get(server->url("/api/session")).body; }

  fixtures::TempDir dir;
  FakeProvider provider;
  std::unique_ptr<fixtures::ServerProcess> server;
};

void expect_roles(const std::string& kind, const std::string& org) {
  SignInServer s(kind, org);
  const Browser anonymous = s.browser("anonymous");
  json session = s.session(anonymous);
  EXPECT_EQ(session["mode"], "oauth") << session.dump();
  EXPECT_EQ(session["provider"], kind);
  EXPECT_EQ(session["login_url"], "/auth/login");
  EXPECT_EQ(session["user"], nullptr);
  EXPECT_EQ(session["role"], "anonymous");
  EXPECT_EQ(session["csrf"], nullptr);
  for (const auto& [who, role] : std::vector<std::pair<std::string, std::string>>{
           {"alice", "editor"}, {"bob", "viewer"}, {"carol", "admin"}}) {
    const Browser b = s.browser(who);
    const Reply done = s.sign_in(b, who);
    EXPECT_EQ(done.status, 302) << who << ": " << done.head << done.body.dump();
    EXPECT_EQ(done.header("Location"), "/");
    const std::string cookie = done.header("Set-Cookie");
    EXPECT_NE(cookie.find("testlooper_session="), std::string::npos) << done.head;
    EXPECT_NE(done.head.find("HttpOnly; SameSite=Lax"), std::string::npos) << done.head;
    session = s.session(b);
    EXPECT_EQ(session["user"], who) << session.dump();
    EXPECT_EQ(session["role"], role) << who << ": " << session.dump();
    EXPECT_EQ(session["via"], "session");
    ASSERT_TRUE(session["csrf"].is_string()) << session.dump();
    EXPECT_EQ(session["csrf"].get<std::string>().size(), 64u);
  }
  // The cookie's value is not what the store keeps.
  const std::string jar = capture("cat " + shell_quote(s.dir.path() + "/alice.jar"));
  const size_t at = jar.find("testlooper_session\t");
  ASSERT_NE(at, std::string::npos) << jar;
  const std::string key = jar.substr(at + 19, 64);
  const std::string db = query(s.dir.path() + "/data/state.db", "SELECT key_hash FROM sessions");
  EXPECT_EQ(std::count(db.begin(), db.end(), '\n'), 3) << db;
  EXPECT_EQ(db.find(key), std::string::npos) << db;
}

TEST(OAuth, GitHubMembersEditOthersViewAdminsFromConfig) { expect_roles("github", "acme"); }

TEST(OAuth, GitLabMembersEditOthersViewAdminsFromConfig) { expect_roles("gitlab", "acme/dev"); }

TEST(OAuth, BadReplayedAndForeignStatesAreRefused) {
  SignInServer s("github", "acme");
  const Browser a = s.browser("a");
  const Browser b = s.browser("b");
  // A state the server never made.
  Reply r = a.get(s.server->url("/auth/callback?code=x&state=" + std::string(64, 'a')));
  EXPECT_EQ(r.status, 400) << r.head;
  EXPECT_NE(r.body.value("error", "").find("state"), std::string::npos) << r.body.dump();
  r = a.get(s.server->url("/auth/callback?code=x"));
  EXPECT_EQ(r.status, 400);
  // A replayed callback: the state was used.
  const Reply login = a.get(s.server->url("/auth/login"));
  const Reply authorize = curl(shell_quote(login.header("Location") + "&auto=1&as=alice"));
  const std::string callback = authorize.header("Location");
  EXPECT_EQ(a.get(callback).status, 302);
  r = a.get(callback);
  EXPECT_EQ(r.status, 400) << r.body.dump();
  // A callback brought to another browser (an attacker's sign-in planted in a victim's).
  const Reply login2 = a.get(s.server->url("/auth/login"));
  const Reply authorize2 = curl(shell_quote(login2.header("Location") + "&auto=1&as=bob"));
  r = b.get(authorize2.header("Location"));
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_NE(r.body.value("error", "").find("another browser"), std::string::npos) << r.body.dump();
  EXPECT_EQ(s.session(b)["role"], "anonymous");
  // ... and it is used up: not even the browser that started it can finish it now.
  EXPECT_EQ(a.get(authorize2.header("Location")).status, 400);
  // One address cannot fill the server with sign-ins that never come back.
  int started = 0;
  while (started < 100 && a.get(s.server->url("/auth/login")).status == 302) ++started;
  EXPECT_LT(started, 100);
  r = a.get(s.server->url("/auth/login"));
  EXPECT_EQ(r.status, 429) << r.body.dump();
  // The provider's refusal shows as a message.
  r = a.get(s.server->url("/auth/callback?error=access_denied&state=x"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.value("error", "").find("access_denied"), std::string::npos) << r.body.dump();
}

TEST(OAuth, AProviderAnsweringGarbageIsAClearError) {
  SignInServer s("github", "acme");
  s.provider.control("mode?set=garbage");
  const Browser a = s.browser("a");
  const Reply r = s.sign_in(a, "alice");
  EXPECT_EQ(r.status, 502) << r.head;
  const std::string message = r.body.value("error", "");
  EXPECT_NE(message.find("not a JSON object"), std::string::npos) << message;
  EXPECT_EQ(message.find("the-secret"), std::string::npos) << message;
  EXPECT_EQ(s.session(a)["role"], "anonymous");
  // The server goes on.
  s.provider.control("mode?set=normal");
  EXPECT_EQ(s.sign_in(a, "alice").status, 302);
  EXPECT_EQ(s.session(a)["role"], "editor");
}

TEST(OAuth, BehindAnHttpsPublicUrlCookiesAreSecureAndTheCallbackIsThere) {
  SignInServer s("github", "acme", "", R"({"public_url": "https://ci.example.test/ci"})");
  const Reply login = s.browser("a").get(s.server->url("/auth/login"));
  EXPECT_EQ(login.status, 302);
  EXPECT_NE(login.header("Location")
                .find("redirect_uri=https%3A%2F%2Fci.example.test%2Fci%2Fauth%2Fcallback&"),
            std::string::npos)
      << login.head;
  EXPECT_NE(login.header("Set-Cookie").find("; Secure"), std::string::npos) << login.head;
}

TEST(OAuth, AHangingProviderDoesNotStopTheServer) {
  SignInServer s("github", "acme", R"({"provider_timeout_seconds": 120})");
  s.provider.control("mode?set=hang");
  const Browser a = s.browser("a");
  std::atomic<bool> answered{false};
  Reply callback;
  std::thread signing_in([&] {
    callback = s.sign_in(a, "alice");
    answered = true;
  });
  // The server is waiting for the provider...
  ASSERT_TRUE(fixtures::eventually([&] { return s.provider.control("calls")["calls"] == 1; }, 60));
  // ... and answers everyone else meanwhile: its io thread is not blocked.
  const Reply other = s.browser("b").get(s.server->url("/api/session"));
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(s.server->get("/api/repos").value("error", "").empty(), false);  // a 401, answered
  EXPECT_FALSE(answered) << "the callback was answered before the provider was";
  s.provider.control("release");
  signing_in.join();
  EXPECT_EQ(callback.status, 502) << callback.head;
}

TEST(OAuth, StoppingDuringASignInExitsCleanly) {
  SignInServer s("github", "acme", R"({"provider_timeout_seconds": 120})");
  s.provider.control("mode?set=hang");
  const Browser a = s.browser("a");
  Reply callback;
  std::thread signing_in([&] { callback = s.sign_in(a, "alice"); });
  ASSERT_TRUE(fixtures::eventually([&] { return s.provider.control("calls")["calls"] == 1; }, 60));
  // The sign-in's thread is stopped and joined: the server exits 0 without waiting for the
  // provider (120 s).
  const int status = s.server->stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  signing_in.join();
  EXPECT_NE(callback.status, 302);
  s.provider.control("release");
}

TEST(OAuth, AProviderThatNeverAnswersTimesOut) {
  SignInServer s("gitlab", "acme", R"({"provider_timeout_seconds": 1})");
  s.provider.control("mode?set=hang");
  const Browser a = s.browser("a");
  const Reply r = s.sign_in(a, "alice");
  s.provider.control("release");
  EXPECT_EQ(r.status, 502) << r.head;
  EXPECT_NE(r.body.value("error", "").find("no answer within 1 s"), std::string::npos)
      << r.body.dump();
}

TEST(OAuth, CookiePostsNeedTheCsrfToken) {
  SignInServer s("github", "acme");
  const std::string url = s.server->url("/api/repos/app/branches/main/test");
  const Browser alice = s.browser("alice");
  ASSERT_EQ(s.sign_in(alice, "alice").status, 302);
  ASSERT_TRUE(fixtures::eventually(
      [&] {
        const Reply repos = alice.get(s.server->url("/api/repos"));
        return repos.status == 200 && repos.body.is_array() && repos.body.size() == 1;
      },
      30));
  // Read as alice: anonymous users may not view (no auth.public_read).
  auto under_test = [&] {
    const Reply branches = alice.get(s.server->url("/api/repos/app/branches"));
    if (branches.status != 200 || !branches.body.is_array()) return false;
    for (const auto& b : branches.body) {
      if (b["name"] == "main") return b["under_test"].get<bool>();
    }
    return false;
  };
  EXPECT_EQ(s.server->get("/api/repos/app/branches").value("error", "").empty(), false)
      << "anonymous users may not view without auth.public_read";
  const std::string csrf = s.session(alice)["csrf"].get<std::string>();
  Reply r = alice.post(url, R"({"enabled": true})");
  EXPECT_EQ(r.status, 403) << r.body.dump();
  EXPECT_NE(r.body.value("error", "").find("X-CSRF-Token"), std::string::npos) << r.body.dump();
  r = alice.post(url, R"({"enabled": true})", std::string(64, '0'));
  EXPECT_EQ(r.status, 403) << r.body.dump();
  EXPECT_FALSE(under_test()) << "a refused request changed something";
  r = alice.post(url, R"({"enabled": true})", csrf);
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_TRUE(under_test());
  // A viewer's token is right, the role is not; no cookie at all is not signed in.
  const Browser bob = s.browser("bob");
  ASSERT_EQ(s.sign_in(bob, "bob").status, 302);
  r = bob.post(url, R"({"enabled": false})", s.session(bob)["csrf"].get<std::string>());
  EXPECT_EQ(r.status, 403) << r.body.dump();
  r = s.browser("nobody").post(url, R"({"enabled": false})");
  EXPECT_EQ(r.status, 401) << r.body.dump();
  EXPECT_TRUE(under_test());
}

TEST(OAuth, LogoutEndsTheSession) {
  SignInServer s("github", "acme");
  const Browser alice = s.browser("alice");
  ASSERT_EQ(s.sign_in(alice, "alice").status, 302);
  const std::string csrf = s.session(alice)["csrf"].get<std::string>();
  // The cookie as it was, kept by someone who copied it.
  capture("cp " + shell_quote(alice.jar()) + " " + shell_quote(s.dir.path() + "/copy.jar"));
  const Browser copy = s.browser("copy");
  Reply r = alice.post(s.server->url("/auth/logout"), "{}");
  EXPECT_EQ(r.status, 403) << "a logout by cookie needs the CSRF token too";
  r = alice.post(s.server->url("/auth/logout"), "{}", csrf);
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_NE(r.header("Set-Cookie").find("testlooper_session=; Max-Age=0"), std::string::npos)
      << r.head;
  EXPECT_EQ(s.session(alice)["role"], "anonymous");
  const json copied = s.session(copy);
  EXPECT_EQ(copied["role"], "anonymous") << copied.dump();
  EXPECT_EQ(copied["user"], nullptr);
}

TEST(OAuth, SessionsSurviveARestart) {
  SignInServer s("github", "acme");
  const Browser alice = s.browser("alice");
  ASSERT_EQ(s.sign_in(alice, "alice").status, 302);
  const json before = s.session(alice);
  s.server->stop(SIGTERM);
  s.start();
  const json after = s.session(alice);
  EXPECT_EQ(after["user"], "alice") << after.dump();
  EXPECT_EQ(after["role"], "editor");
  EXPECT_EQ(after["csrf"], before["csrf"]);
}

TEST(OAuth, AnExpiredSessionIsRefused) {
  SignInServer s("gitlab", "acme", R"({"session_hours": 0.002})");  // 7.2 s
  const Browser alice = s.browser("alice");
  ASSERT_EQ(s.sign_in(alice, "alice").status, 302);
  // Curl drops an expired cookie itself: send it by hand past its Max-Age.
  const std::string jar = capture("cat " + shell_quote(alice.jar()));
  const size_t at = jar.find("testlooper_session\t");
  ASSERT_NE(at, std::string::npos) << jar;
  const std::string cookie = "testlooper_session=" + jar.substr(at + 19, 64);
  auto role = [&] {
    return curl("-H " + shell_quote("Cookie: " + cookie) + " " +
                shell_quote(s.server->url("/api/session")))
        .body["role"];
  };
  EXPECT_EQ(role(), "editor");
  EXPECT_TRUE(fixtures::eventually([&] { return role() == "anonymous"; }, 60));
  const std::string db = query(s.dir.path() + "/data/state.db", "SELECT count(*) FROM sessions");
  EXPECT_EQ(db, "0\n") << "an expired session is pruned";
}

TEST(OAuth, AWrongSignInConfigStopsTheStartSayingWhy) {
  fixtures::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/repos");
  auto start = [&](const json& source, const json& auth) {
    json full = source;
    full["path_to_repos"] = dir.path() + "/repos";
    const json config = {{"server", {{"path_to_local_data", dir.path() + "/data"}}},
                         {"source_control", full},
                         {"auth", auth}};
    std::ofstream(dir.path() + "/config.json") << config.dump();
    return capture(std::string(TL_BINARY) + " serve --port 0 --config " +
                   shell_quote(dir.path() + "/config.json") + " 2>&1; echo status $?");
  };
  std::string out = start(json::object(), {{"mode", "oauth"}});
  EXPECT_NE(out.find("needs source_control.oauth_key"), std::string::npos) << out;
  EXPECT_NE(out.find("status 2"), std::string::npos) << out;
  out = start({{"oauth_key", "k"}, {"oauth_secret", "s"}, {"github_api_url", "ftp://x"}},
              {{"mode", "oauth"}});
  EXPECT_NE(out.find("github_api_url: must be an http:// or https:// URL"), std::string::npos)
      << out;
  out =
      start({{"oauth_key", "k"}, {"oauth_secret", "s"}}, {{"mode", "oauth"}, {"provider", "svn"}});
  EXPECT_NE(out.find("auth.provider"), std::string::npos) << out;
  out =
      start({{"oauth_key", "k"}, {"oauth_secret", "s"}}, {{"mode", "oauth"}, {"admins", "alice"}});
  EXPECT_NE(out.find("auth.admins: expected a list of strings"), std::string::npos) << out;
}

}  // namespace
}  // namespace testlooper::server
