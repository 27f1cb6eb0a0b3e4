// Issue 13, "Sources": the real `testlooper serve --config` with GitHub or GitLab as its source,
// against tests/hosting/fake_host.py (REST listing with pagination and git over HTTP through
// git http-backend, on loopback). The server lists the repos, keeps bare mirrors under
// <data>/repos, fetches a repo when a signed push webhook names it (and not before), sees new
// and deleted repos after a refresh, and force pushes and deleted branches after a fetch. Also:
// a repo whose directory is gone leaves /api/repos in local (--repos) mode.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "hosting/fake_host.h"
#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::capture;
using fixtures::eventually;
using fixtures::FakeHost;
using fixtures::GitFixtureRepo;
using fixtures::HostedWork;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using nlohmann::json;

constexpr const char* kToken = "hosted-token-4f1c9e";
constexpr const char* kSecret = "hook-secret";
constexpr const char* kTokenVariable = "TL_HOSTING_TEST_TOKEN";

// POSTs `body` to `path` with `headers`; the HTTP status and the parsed answer.
std::pair<int, json> post(const ServerProcess& server, const std::string& path,
                          const std::string& body, const std::vector<std::string>& headers) {
  std::string command =
      "curl -s --max-time 60 -w '\\n%{http_code}' -X POST -H "
      "'Content-Type: application/json'";
  for (const auto& h : headers) command += " -H " + shell_quote(h);
  command += " --data-binary " + shell_quote(body) + " " + shell_quote(server.url(path));
  const std::string out = capture(command);
  const size_t nl = out.rfind('\n');
  return {std::stoi(out.substr(nl + 1)), json::parse(out.substr(0, nl), nullptr, false)};
}

std::string hmac(const std::string& key, const std::string& body) {
  return capture("printf '%s' " + shell_quote(body) + " | openssl dgst -sha256 -hmac " +
                 shell_quote(key) + " | sed 's/.*= //' | tr -d '\\n'");
}

// A signed GitHub push webhook for `repo`.
std::pair<int, json> github_push(const ServerProcess& server, const std::string& repo,
                                 const std::string& key = kSecret, bool forced = false,
                                 bool deleted = false,
                                 const std::string& path = "/api/webhooks/github") {
  const std::string body = json{{"ref", "refs/heads/main"},
                                {"forced", forced},
                                {"deleted", deleted},
                                {"repository", {{"name", repo}, {"full_name", "acme/" + repo}}}}
                               .dump();
  return post(server, path, body,
              {"X-GitHub-Event: push", "X-Hub-Signature-256: sha256=" + hmac(key, body)});
}

// A signed refresh: lists again and fetches all.
int refresh(const ServerProcess& server) {
  return post(server, "/api/refresh", "{}", {"X-Hub-Signature-256: sha256=" + hmac(kSecret, "{}")})
      .first;
}

// name -> branch -> head, from /api/repos.
std::map<std::string, std::map<std::string, std::string>> repos(const ServerProcess& server) {
  std::map<std::string, std::map<std::string, std::string>> out;
  const json all = server.get("/api/repos");
  if (!all.is_array()) return out;
  for (const auto& r : all) {
    auto& branches = out[r.value("name", "")];
    for (const auto& b : r["branches"]) branches[b.value("name", "")] = b.value("head", "");
  }
  return out;
}

std::string head_of(const ServerProcess& server, const std::string& repo,
                    const std::string& branch) {
  auto all = repos(server);
  auto r = all.find(repo);
  if (r == all.end()) return "";
  auto b = r->second.find(branch);
  return b == r->second.end() ? "" : b->second;
}

// The fake's git requests for repo `name` of `owner` so far.
int git_requests(const FakeHost& fake, const std::string& owner, const std::string& name) {
  return fake.count("/git/" + owner + "/" + name + ".git/");
}

class Hosted : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv(kTokenVariable, kToken, 1);
    fake_ = std::make_unique<FakeHost>(dir_.path() + "/host", kToken, 1);
  }
  void TearDown() override {
    server_.reset();
    fake_.reset();
  }

  // A repo `name` of `owner` on the fake, with a commit on main; its work clone.
  HostedWork& add_repo(const std::string& owner, const std::string& name) {
    auto work =
        std::make_unique<HostedWork>(dir_.path() + "/work/" + name, fake_->bare(owner, name));
    work->repo().write("README", name + "\n");
    work->repo().commit("first of " + name);
    work->push("main");
    works_[name] = std::move(work);
    return *works_[name];
  }

  // Starts the server with the GitHub (or GitLab) form of source_control; the token is $VAR.
  // With `auth_on`, auth.mode is "token" (every API call needs a token; webhooks do not).
  void start(bool gitlab, const std::string& owner, bool auth_on = false) {
    json source = {{"webhook_secret", kSecret}, {"poll_seconds", 3600}, {"timeout_seconds", 30}};
    if (gitlab) {
      source.update({{"private_token", std::string("$") + kTokenVariable},
                     {"group", owner},
                     {"gitlab_url", fake_->url()},
                     {"gitlab_api_url", fake_->gitlab_api()}});
    } else {
      source.update({{"access_token", std::string("$") + kTokenVariable},
                     {"owner", owner},
                     {"github_url", fake_->url()},
                     {"github_api_url", fake_->github_api()}});
    }
    json config = {{"server", {{"path_to_local_data", data()}}},
                   {"source_control", source},
                   {"machine_management", {{"max_workers", 0}}}};
    if (auth_on) config["auth"] = {{"mode", "token"}};
    std::ofstream(dir_.path() + "/config.json") << config.dump(2);
    server_ = std::make_unique<ServerProcess>(std::vector<std::string>{
        "--config", dir_.path() + "/config.json", "--port", "0", "--workers", "0"});
  }

  std::string data() const { return dir_.path() + "/data"; }

  TempDir dir_;
  std::unique_ptr<FakeHost> fake_;
  std::map<std::string, std::unique_ptr<HostedWork>> works_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(Hosted, GitHubListsEveryPageAndFetchesOnASignedWebhookOnly) {
  HostedWork& alpha = add_repo("acme", "alpha");
  alpha.repo().branch("feature");
  alpha.push("feature");
  add_repo("acme", "beta");
  add_repo("acme", "gamma");
  const std::string first = alpha.repo().head();
  start(false, "acme");
  // Three pages of one repo each: all three, with their branches.
  ASSERT_TRUE(eventually([&] { return repos(*server_).size() == 3; }))
      << server_->get("/api/repos");
  ASSERT_TRUE(eventually([&] { return head_of(*server_, "alpha", "feature") == first; }));
  EXPECT_EQ(head_of(*server_, "alpha", "main"), first);
  EXPECT_GE(fake_->count("/api/v3/orgs/acme/repos"), 3);
  EXPECT_TRUE(std::filesystem::exists(data() + "/repos/beta/HEAD"));

  // A push is not seen before the webhook (poll_seconds is an hour) ...
  alpha.repo().write("README", "two\n");
  const std::string second = alpha.repo().commit("second");
  alpha.push("main");
  const int before = git_requests(*fake_, "acme", "alpha");
  ASSERT_GT(before, 0);
  // ... nor after a wrongly signed one, which fetches nothing ...
  auto [bad, bad_body] = github_push(*server_, "alpha", "not-the-secret");
  EXPECT_EQ(bad, 401) << bad_body;
  EXPECT_EQ(post(*server_, "/api/webhooks/github", R"({"repository": {"name": "alpha"}})",
                 {"X-GitHub-Event: push"})
                .first,
            401);
  EXPECT_EQ(git_requests(*fake_, "acme", "alpha"), before);
  EXPECT_EQ(head_of(*server_, "alpha", "main"), first);
  // ... and is after a signed one: that repo alone is fetched.
  const int beta_before = git_requests(*fake_, "acme", "beta");
  auto [status, answer] = github_push(*server_, "alpha");
  EXPECT_EQ(status, 202) << answer;
  EXPECT_EQ(answer, (json{{"repo", "alpha"},
                          {"fetching", true},
                          {"refreshing", false},
                          {"deleted", false},
                          {"forced", false}}));
  ASSERT_TRUE(eventually([&] { return head_of(*server_, "alpha", "main") == second; }));
  EXPECT_GT(git_requests(*fake_, "acme", "alpha"), before);
  EXPECT_EQ(git_requests(*fake_, "acme", "beta"), beta_before);

  // A ping is answered; other events are ignored; a payload without a valid repo is refused.
  const std::string ping = R"({"zen": "Keep it simple."})";
  auto pong = post(*server_, "/api/webhooks/github", ping,
                   {"X-GitHub-Event: ping", "X-Hub-Signature-256: sha256=" + hmac(kSecret, ping)});
  EXPECT_EQ(pong.first, 200) << pong.second;
  const std::string junk = R"({"repository": {"name": "../etc"}})";
  EXPECT_EQ(post(*server_, "/api/webhooks/github", junk,
                 {"X-GitHub-Event: push", "X-Hub-Signature-256: sha256=" + hmac(kSecret, junk)})
                .first,
            400);

  // A force push (main rewritten) and a branch deletion, through the seed's webhook path.
  alpha.repo().run({"reset", "-q", "--hard", first});
  alpha.repo().write("README", "rewritten\n");
  const std::string rewritten = alpha.repo().commit("rewritten");
  alpha.push("+main");
  alpha.push(":feature");
  auto [forced_status, forced] =
      github_push(*server_, "alpha", kSecret, true, false, "/githubReceivedAPush");
  EXPECT_EQ(forced_status, 202) << forced;
  EXPECT_EQ(forced["forced"], true);
  ASSERT_TRUE(eventually([&] {
    auto all = repos(*server_);
    return all["alpha"].count("feature") == 0 && all["alpha"]["main"] == rewritten;
  })) << server_->get("/api/repos");
  EXPECT_EQ(github_push(*server_, "alpha", kSecret, false, true).second["deleted"], true);

  // The token travels as a header only: REST as a bearer token, git as HTTP Basic auth; never
  // in a URL, nor in the server's command line.
  const json requests = fake_->requests();
  int git_with_auth = 0;
  for (const auto& r : requests) {
    EXPECT_EQ(r.value("path", "").find(kToken), std::string::npos);
    EXPECT_EQ(r.value("query", "").find(kToken), std::string::npos);
    if (r.value("path", "").starts_with("/api/v3/")) {
      EXPECT_EQ(r["authorization"], std::string("Bearer ") + kToken);
    }
    if (r.value("path", "").starts_with("/git/") && !r.value("authorization", "").empty())
      ++git_with_auth;
  }
  EXPECT_GT(git_with_auth, 0);
  const std::string cmdline =
      capture("tr '\\0' ' ' < /proc/" + std::to_string(server_->pid()) + "/cmdline");
  EXPECT_EQ(cmdline.find(kToken), std::string::npos);
  EXPECT_EQ(capture("cat " + shell_quote(dir_.path() + "/config.json")).find(kToken),
            std::string::npos);
}

TEST_F(Hosted, NewAndDeletedReposWithoutARestart) {
  add_repo("acme", "alpha");
  add_repo("acme", "beta");
  start(false, "acme");
  ASSERT_TRUE(eventually([&] { return repos(*server_).size() == 2; }))
      << server_->get("/api/repos");
  // A new repository on the host: there after a refresh.
  HostedWork& delta = add_repo("acme", "delta");
  EXPECT_EQ(refresh(*server_), 200);
  ASSERT_TRUE(eventually([&] { return head_of(*server_, "delta", "main") == delta.repo().head(); }))
      << server_->get("/api/repos");
  // A repository deleted on the host: its mirror goes, and so does the repo from /api/repos.
  std::filesystem::remove_all(fake_->bare("acme", "beta"));
  EXPECT_EQ(refresh(*server_), 200);
  ASSERT_TRUE(eventually([&] { return repos(*server_).count("beta") == 0; }))
      << server_->get("/api/repos");
  EXPECT_FALSE(std::filesystem::exists(data() + "/repos/beta"));
  EXPECT_EQ(repos(*server_).size(), 2u);
  // A push webhook naming a repo the last listing did not have lists again first.
  HostedWork& epsilon = add_repo("acme", "epsilon");
  EXPECT_EQ(github_push(*server_, "epsilon").first, 202);
  ASSERT_TRUE(eventually([&] {
    return head_of(*server_, "epsilon", "main") == epsilon.repo().head();
  })) << server_->get("/api/repos");
}

TEST_F(Hosted, GitLabListsEveryPageAndFetchesOnItsWebhook) {
  HostedWork& one = add_repo("team", "one");
  one.repo().branch("topic");
  one.push("topic");
  add_repo("team", "two");
  add_repo("team", "three");
  start(true, "team");
  ASSERT_TRUE(eventually([&] { return repos(*server_).size() == 3; }))
      << server_->get("/api/repos");
  ASSERT_TRUE(eventually([&] { return !head_of(*server_, "one", "topic").empty(); }));
  EXPECT_GE(fake_->count("/api/v4/groups/team/projects"), 3);
  for (const auto& r : fake_->requests()) {
    if (r.value("path", "").starts_with("/api/v4/")) {
      EXPECT_EQ(r["private_token"], kToken);
    }
  }

  one.repo().write("README", "pushed\n");
  const std::string pushed = one.repo().commit("pushed");
  one.push("main");
  const int before = git_requests(*fake_, "team", "one");
  const std::string body =
      json{{"object_kind", "push"}, {"after", pushed}, {"project", {{"path", "one"}}}}.dump();
  auto wrong = post(*server_, "/api/webhooks/gitlab", body,
                    {"X-Gitlab-Event: Push Hook", "X-Gitlab-Token: wrong"});
  EXPECT_EQ(wrong.first, 401) << wrong.second;
  EXPECT_EQ(git_requests(*fake_, "team", "one"), before);
  auto [status, answer] =
      post(*server_, "/api/webhooks/gitlab", body,
           {"X-Gitlab-Event: Push Hook", std::string("X-Gitlab-Token: ") + kSecret});
  EXPECT_EQ(status, 202) << answer;
  EXPECT_EQ(answer["repo"], "one");
  EXPECT_EQ(answer["deleted"], false);
  ASSERT_TRUE(eventually([&] { return head_of(*server_, "one", "main") == pushed; }));

  // A branch deletion: `after` all zeros.
  one.push(":topic");
  const std::string deletion =
      json{{"object_kind", "push"}, {"after", std::string(40, '0')}, {"project", {{"path", "one"}}}}
          .dump();
  auto [deleted_status, deleted] =
      post(*server_, "/api/webhooks/gitlab", deletion,
           {"X-Gitlab-Event: Push Hook", std::string("X-Gitlab-Token: ") + kSecret});
  EXPECT_EQ(deleted_status, 202) << deleted;
  EXPECT_EQ(deleted["deleted"], true);
  ASSERT_TRUE(eventually([&] { return repos(*server_)["one"].count("topic") == 0; }))
      << server_->get("/api/repos");
}

// With authentication on, a webhook needs its signature and no token (api_access.cc is_webhook).
TEST_F(Hosted, WebhooksNeedNoTokenWithAuthenticationOn) {
  HostedWork& alpha = add_repo("acme", "alpha");
  start(false, "acme", true);
  ASSERT_TRUE(eventually([&] { return git_requests(*fake_, "acme", "alpha") > 0; }));
  EXPECT_EQ(post(*server_, "/api/refresh", "{}", {}).first, 401);  // no token, no signature
  alpha.repo().commit("second");
  alpha.push("main");
  const int before = git_requests(*fake_, "acme", "alpha");
  EXPECT_EQ(github_push(*server_, "alpha", "wrong").first, 401);
  EXPECT_EQ(github_push(*server_, "alpha").first, 202);
  EXPECT_TRUE(eventually([&] { return git_requests(*fake_, "acme", "alpha") > before; }));
  const std::string body = json{{"project", {{"path", "alpha"}}}}.dump();
  EXPECT_EQ(post(*server_, "/api/webhooks/gitlab", body,
                 {"X-Gitlab-Event: Push Hook", std::string("X-Gitlab-Token: ") + kSecret})
                .first,
            202);
}

// Local mode (--repos): a repo whose directory is gone leaves /api/repos and the planner; its
// stored commits stay, and it is the same repo when it comes back (its branch under test too).
TEST(LocalRepos, ADeletedRepoDisappearsAndComesBack) {
  TempDir dir;
  const std::string repos_dir = dir.path() + "/repos";
  GitFixtureRepo a(repos_dir + "/a");
  a.commit("a1");
  GitFixtureRepo b(repos_dir + "/b");
  const std::string b1 = b.commit("b1");
  ServerProcess server({"--repos", repos_dir, "--data", dir.path() + "/data", "--port", "0",
                        "--workers", "0", "--poll-seconds", "3600"});
  ASSERT_TRUE(eventually([&] { return repos(server).size() == 2; })) << server.get("/api/repos");
  EXPECT_EQ(
      server.post("/api/repos/b/branches/main/test", R"({"enabled": true, "depth": 0})").first,
      200);
  std::filesystem::rename(repos_dir + "/b", dir.path() + "/b-away");
  EXPECT_EQ(server.post("/api/refresh", "{}").first, 200);
  ASSERT_TRUE(eventually([&] { return repos(server).count("b") == 0; }))
      << server.get("/api/repos");
  EXPECT_EQ(server.get("/api/repos/b/branches").value("error", "").empty(), false);
  std::filesystem::rename(dir.path() + "/b-away", repos_dir + "/b");
  EXPECT_EQ(server.post("/api/refresh", "{}").first, 200);
  ASSERT_TRUE(eventually([&] { return head_of(server, "b", "main") == b1; }))
      << server.get("/api/repos");
  // Its commit was kept while it was away.
  EXPECT_EQ(server.get("/api/repos/b/commits/" + b1).value("sha", ""), b1);
  // And its branch is under test as it was.
  const json branches = server.get("/api/repos/b/branches");
  ASSERT_TRUE(branches.is_array() && branches.size() == 1) << branches;
  EXPECT_EQ(branches[0]["under_test"], true);
}

// libgit2 1.5 opens a repository's object database at the first lookup and leaks it whenever that
// open fails; a repo whose objects cannot be read (here objects/info/alternates is a folder) is
// looked up at every scan. Under the sanitizer build the server's exit reports any such leak.
TEST(LocalRepos, ARepoWhoseObjectsCannotBeReadHasItsCommitsOnceTheyCan) {
  TempDir dir;
  const std::string repos_dir = dir.path() + "/repos";
  GitFixtureRepo a(repos_dir + "/a");
  const std::string a1 = a.commit("a1");
  const std::string alternates = repos_dir + "/a/.git/objects/info/alternates";
  std::filesystem::create_directories(alternates);
  ServerProcess server({"--repos", repos_dir, "--data", dir.path() + "/data", "--port", "0",
                        "--workers", "0", "--poll-seconds", "3600"});
  // Not listed while none of its commits can be read.
  EXPECT_EQ(server.post("/api/refresh", "{}").first, 200);
  EXPECT_EQ(server.get("/api/repos/a/commits/" + a1).value("sha", ""), "");
  EXPECT_EQ(repos(server).count("a"), 0u);
  std::filesystem::remove(alternates);
  EXPECT_EQ(server.post("/api/refresh", "{}").first, 200);
  ASSERT_TRUE(eventually([&] {
    return server.get("/api/repos/a/commits/" + a1).value("sha", "") == a1;
  })) << server.get("/api/repos");
}

}  // namespace
}  // namespace testlooper::server
