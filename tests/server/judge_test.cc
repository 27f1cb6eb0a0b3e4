// Issue 16, "the server's judgement", through the real `testlooper serve`: after a change is
// localised the branch's head keeps getting extra runs until its own rate is bounded; each
// change that reaches the confidence is posted once to the `notify` webhooks (signed), even
// across a restart; and `serve --log-format json` logs the operator's events one object a line.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "fake_worker.h"
#include "server/config.h"
#include "server/event_log.h"
#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::capture;
using fixtures::eventually;
using fixtures::FakeWorker;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using nlohmann::json;

// The value of the unlabelled Prometheus sample `name` (summed over its labels), -1 when absent.
double metric(const ServerProcess& server, const std::string& name) {
  std::istringstream text(capture("curl -s " + shell_quote(server.url("/metrics"))));
  double sum = -1;
  for (std::string line; std::getline(text, line);) {
    if (line.rfind(name, 0) != 0 || (line[name.size()] != ' ' && line[name.size()] != '{'))
      continue;
    sum = std::max(sum, 0.0) + std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

json find_object(const json& objects, const std::string& name) {
  for (const auto& o : objects) {
    if (o["name"] == name) return o;
  }
  return json();
}

// A branch of 12 commits whose test breaks (fails every run) at commit 5 and is fixed at the head,
// commit 12; every commit under test with one target run. The search localises both changes; the
// fix at the head then gets runs until the 95% interval of its own rate is at most 0.1 wide
// (PlanInput::head_width), and no more: the budget is left unspent.
TEST(JudgeConfirm, AfterTheChangesAreLocalisedTheHeadRunsUntilItsRateIsBoundedThenStops) {
  TempDir dir;
  GitFixtureRepo repo(dir.path() + "/repos/app");
  repo.write("testlooper.yml",
             "looper_version: 5\n"
             "environments: {linux: {platform: linux, image: {host: true}}}\n"
             "tests: {fixme/linux: {command: 'sh src/check.sh', dependencies: {src: HEAD}}}\n");
  repo.write("check.sh", "test ! -e src/broken\n");
  std::string culprit;
  for (int i = 1; i <= 12; ++i) {
    repo.write("counter", std::to_string(i));
    if (i == 5) repo.write("broken", "yes");
    if (i == 12) repo.remove("broken");
    const std::string sha = repo.commit("commit " + std::to_string(i));
    if (i == 5) culprit = sha;
  }
  const std::string head = repo.head();
  constexpr int kBudget = 300;
  ServerProcess server({"--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port",
                        "0", "--workers", "2", "--worker-cores", "4", "--worker-ram-gb", "2",
                        "--poll-seconds", "0.3", "--extra-runs", std::to_string(kBudget)});
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  ASSERT_EQ(
      server.post("/api/repos/app/branches/main/test", R"({"enabled": true, "depth": 11})").first,
      200);
  json at_head, changes;
  auto bounded = [&] {
    at_head = find_object(server.get("/api/repos/app/commits/" + head)["objects"], "fixme/linux");
    if (!at_head.is_object() || !at_head["failure_rate"].is_object()) return false;
    const double width = at_head["failure_rate"]["high"].get<double>() -
                         at_head["failure_rate"]["low"].get<double>();
    return width <= 0.1;
  };
  auto idle = [&] {
    return metric(server, "testlooper_queue_runs") == 0 &&
           metric(server, "testlooper_runs_active") == 0;
  };
  // Idle at a bounded head: nothing more was wanted once it was bounded.
  const bool done = eventually([&] { return bounded() && idle(); }, 240);
  changes = server.get("/api/repos/app/branches/main/changes");
  const json branches = server.get("/api/repos/app/branches");
  ASSERT_TRUE(done) << "head: " << at_head.dump() << "\nchanges: " << changes.dump()
                    << "\nbranches: " << branches.dump();
  bool broke = false, fixed = false;
  for (const auto& c : changes) {
    broke = broke || (c["commit"] == culprit && c["probability"].get<double>() >= 0.95);
    fixed = fixed || (c["commit"] == head && c["probability"].get<double>() >= 0.95);
  }
  EXPECT_TRUE(broke && fixed) << changes.dump();
  EXPECT_EQ(at_head["failures"], 0) << at_head.dump();
  const int64_t used = branches[0]["extra_runs_used"].get<int64_t>();
  EXPECT_LT(used, kBudget) << "the head stops getting runs once bounded";
  std::cout << "[confirm] extra runs used: " << used << ", runs at the head: " << at_head["runs"]
            << "\n";
}

// tests/server/notify_receiver.py on a kernel-chosen loopback port, checking signatures with
// `secret` and failing the first `fail_first` posts; killed and waited for on destruction.
class Receiver {
 public:
  Receiver(const std::string& secret, int fail_first) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      setpgid(0, 0);
      const std::string fail = std::to_string(fail_first);
      execlp("python3", "python3", NOTIFY_RECEIVER, "--secret", secret.c_str(), "--fail-first",
             fail.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[128] = {0};
    if (fgets(line, sizeof(line), f) == nullptr) throw std::runtime_error("receiver did not start");
    fclose(f);
    port_ = std::stoi(std::string(line).substr(5));
  }
  ~Receiver() {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  json posts() const {
    return json::parse(capture("curl -s --max-time 30 " + shell_quote(url("/_deliveries"))),
                       nullptr, false);
  }
  // The posts to `path` the receiver accepted (answered 200).
  std::vector<json> accepted(const std::string& path) const {
    std::vector<json> out;
    const json all = posts();
    if (!all.is_array()) return out;
    for (const auto& p : all) {
      if (p["path"] == path && p["status"] == 200) out.push_back(p);
    }
    return out;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A test that passes until src/broken exists and fails every run from then on: `commits`
// commits, the file added by commit `culprit` (1-based). Returns the culprit's sha.
std::string plant_breakage(GitFixtureRepo& repo, int commits, int culprit) {
  repo.write("testlooper.yml",
             "looper_version: 5\n"
             "environments: {linux: {platform: linux, image: {host: true}}}\n"
             "tests: {fixme/linux: {command: 'sh src/check.sh', dependencies: {src: HEAD}}}\n");
  repo.write("check.sh", "test ! -e src/broken\n");
  std::string sha;
  for (int i = 1; i <= commits; ++i) {
    repo.write("counter", std::to_string(i));
    if (i == culprit) repo.write("broken", "yes");
    const std::string made = repo.commit("commit " + std::to_string(i));
    if (i == culprit) sha = made;
  }
  return sha;
}

// A breakage planted at commit 5 of 8, localised by the server's own search: one signed
// delivery to the webhook (its first try answered 500, so it is retried), and none again after
// a restart, while a target added at the restart gets the change (so the restarted server did
// look at it).
TEST(JudgeNotify, AChangeAtTheConfidenceIsPostedOnceSignedAndNotAgainAfterARestart) {
  TempDir dir;
  GitFixtureRepo repo(dir.path() + "/repos/app");
  const std::string culprit = plant_breakage(repo, 8, 5);
  const std::string secret = "a webhook's secret";
  Receiver receiver(secret, 1);
  auto config = [&](bool second) {
    json targets = json::array({{{"url", receiver.url("/hook")}, {"secret", secret}}});
    if (second) targets.push_back({{"url", receiver.url("/second")}, {"secret", secret}});
    const std::string path = dir.path() + "/config.json";
    std::ofstream(path) << json{
        {"source_control", {{"path_to_repos", dir.path() + "/repos"}}},
        {"notify", targets}}.dump();
    return path;
  };
  const std::vector<std::string> args = {"--data",          dir.path() + "/data",
                                         "--port",          "0",
                                         "--workers",       "2",
                                         "--worker-cores",  "4",
                                         "--worker-ram-gb", "2",
                                         "--poll-seconds",  "0.3",
                                         "--extra-runs",    "200",
                                         "--log-format",    "json"};
  const std::string err = dir.path() + "/serve.err";
  auto with_config = [&](bool second) {
    std::vector<std::string> a = {"--config", config(second)};
    a.insert(a.end(), args.begin(), args.end());
    return a;
  };
  {
    ServerProcess server(with_config(false), err);
    ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
    ASSERT_EQ(
        server.post("/api/repos/app/branches/main/test", R"({"enabled": true, "depth": 7})").first,
        200);
    ASSERT_TRUE(eventually([&] { return receiver.accepted("/hook").size() == 1; }, 240))
        << receiver.posts().dump() << "\n"
        << read_file(err);
    const json post = receiver.accepted("/hook")[0];
    EXPECT_TRUE(post["signature_ok"].get<bool>()) << post.dump();
    EXPECT_EQ(post["event"], "change");
    const json& body = post["body"];
    EXPECT_EQ(body["delivery"], post["delivery"]);
    EXPECT_EQ(body["repo"], "app");
    EXPECT_EQ(body["branch"], "main");
    EXPECT_EQ(body["test"], "fixme/linux");
    EXPECT_TRUE(body["case"].is_null());
    EXPECT_EQ(body["commit"]["sha"], culprit);
    EXPECT_EQ(body["commit"]["subject"], "commit 5");
    EXPECT_TRUE(body["commit"]["author"].is_string());
    EXPECT_GE(body["probability"].get<double>(), 0.95);
    EXPECT_LT(body["before"]["high"].get<double>(), body["after"]["low"].get<double>())
        << "0% before, 100% after";
    EXPECT_NE(body["url"].get<std::string>().find("/repos/app/branches/main/changes"),
              std::string::npos);
    const json all = receiver.posts();
    EXPECT_EQ(all[0]["status"], 500) << "the first try failed";
    EXPECT_EQ(all[0]["delivery"], post["delivery"]) << "the retry is the same delivery";
    // Idle: every run wanted is done, so every look at the changes has been made.
    ASSERT_TRUE(eventually(
        [&] {
          return metric(server, "testlooper_queue_runs") == 0 &&
                 metric(server, "testlooper_runs_active") == 0;
        },
        240));
    ASSERT_EQ(server.stop(SIGTERM), 0);
  }
  EXPECT_EQ(receiver.accepted("/hook").size(), 1u) << receiver.posts().dump();
  std::string log = read_file(err);
  size_t localised = 0;
  for (size_t at = 0; (at = log.find("\"change_localised\"", at)) != std::string::npos; ++at)
    ++localised;
  EXPECT_EQ(localised, 1u) << log;

  ServerProcess again(with_config(true), err);
  ASSERT_TRUE(eventually([&] { return receiver.accepted("/second").size() == 1; }, 60))
      << receiver.posts().dump();
  EXPECT_EQ(receiver.accepted("/hook").size(), 1u) << "not sent again: " << receiver.posts().dump();
  EXPECT_EQ(receiver.accepted("/second")[0]["body"]["commit"]["sha"], culprit);
  log = read_file(err);
  EXPECT_EQ(log.find("\"change_localised\""), std::string::npos)
      << "the restarted server does not announce it again: " << log;
}

// The `notify` targets are checked when the config is read: http(s) URLs with a host, and a
// secret to sign with.
TEST(JudgeNotify, TheConfigAcceptsOnlyHttpTargetsWithASecret) {
  TempDir dir;
  auto load = [&](const json& notify, ServerOptions& options) {
    const std::string path = dir.path() + "/config.json";
    std::ofstream(path) << json{
        {"source_control", {{"path_to_repos", dir.path()}}},
        {"notify", notify}}.dump();
    return load_config(path, options);
  };
  ServerOptions options;
  ASSERT_TRUE(
      load(json::array({{{"url", "https://hooks.example.com/tl?x=1"}, {"secret", "s"}}}), options)
          .ok());
  ASSERT_EQ(options.notify.size(), 1u);
  EXPECT_EQ(options.notify[0].url, "https://hooks.example.com/tl?x=1");
  EXPECT_EQ(options.notify[0].secret, "s");
  for (const json& bad :
       {json::array({{{"url", "file:///etc/passwd"}, {"secret", "s"}}}),
        json::array({{{"url", "ftp://example.com/"}, {"secret", "s"}}}),
        json::array({{{"url", "http://"}, {"secret", "s"}}}),
        json::array({{{"url", "http://a b/"}, {"secret", "s"}}}),
        json::array({{{"url", "http://u:p@example.com/"}, {"secret", "s"}}}),
        json::array({{{"url", "http://example.com/"}}}),
        json::array({{{"url", "http://example.com/"}, {"secret", 3}}}),
        json::array({{{"url", "http://example.com/"}, {"secret", "s"}, {"x", 1}}}),
        json::array({"http://example.com/"}), json("http://example.com/")}) {
    ServerOptions o;
    const Status s = load(bad, o);
    EXPECT_FALSE(s.ok()) << bad.dump();
    if (!s.ok()) {
      EXPECT_NE(s.error().to_string().find("notify"), std::string::npos) << s.error().to_string();
    }
  }
}

// One line per event: text quotes a value only when it must (as a JSON string), json is one
// object.
TEST(JudgeLog, EventLinesInTextAndJson) {
  const LogFields fields = {{"repo", "app"}, {"error", "a \"quoted\" word"}, {"empty", ""}};
  EXPECT_EQ(
      format_event(LogFormat::kText, 1796047200.7, "warn", "definitions_error", fields),
      R"(2026-11-30T14:00:00Z warn definitions_error repo=app error="a \"quoted\" word" empty="")");
  const json line =
      json::parse(format_event(LogFormat::kJson, 1796047200, "warn", "definitions_error", fields));
  EXPECT_EQ(line, (json{{"time", "2026-11-30T14:00:00Z"},
                        {"level", "warn"},
                        {"event", "definitions_error"},
                        {"repo", "app"},
                        {"error", "a \"quoted\" word"},
                        {"empty", ""}}));
  const std::string odd = format_event(LogFormat::kJson, 0, "info", "x", {{"bad", "\xff\n"}});
  EXPECT_TRUE(json::accept(odd)) << "invalid UTF-8 is replaced: " << odd;
  EXPECT_EQ(odd.find('\n'), std::string::npos) << "a newline stays escaped inside the line";
  LogFormat format;
  EXPECT_TRUE(parse_log_format("json", &format) && format == LogFormat::kJson);
  EXPECT_FALSE(parse_log_format("yaml", &format));
}

json find_event(const std::vector<json>& lines, const std::string& event) {
  for (const auto& line : lines) {
    if (line["event"] == event) return line;
  }
  return json();
}

// serve --log-format json: every line of its stderr is a JSON object with "time", "level" and
// "event", and the operator's events are there: a branch put under test, new commits, a
// definitions error, a worker coming and going, an infrastructure failure.
TEST(JudgeLog, ServeLogsTheOperatorsEventsOneJsonObjectALine) {
  TempDir dir;
  GitFixtureRepo repo(dir.path() + "/repos/app");
  repo.write("testlooper.yml", "looper_version: 5\ntests: [this is not a map\n");
  const std::string bad = repo.commit("definitions with an error");
  repo.write("testlooper.yml",
             "looper_version: 5\n"
             "environments: {linux: {platform: linux, image: {host: true}}}\n"
             "tests: {t/linux: {command: 'true'}}\n");
  repo.commit("definitions fixed");
  const std::string err = dir.path() + "/serve.err";
  ServerProcess server({"--repos", dir.path() + "/repos", "--data", dir.path() + "/data", "--port",
                        "0", "--workers", "0", "--poll-seconds", "0.3", "--log-format", "json"},
                       err);
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  ASSERT_EQ(
      server.post("/api/repos/app/branches/main/test", R"({"enabled": true, "depth": 0})").first,
      200);
  {
    FakeWorker worker(server.port(), fixtures::worker_token(dir.path() + "/data"), "fake-1");
    ASSERT_TRUE(worker.connected());
    const auto job = worker.job("t/linux");
    ASSERT_TRUE(job.has_value());
    ASSERT_TRUE(worker.report(job->run_id, "infra"));
  }
  repo.write("more", "x");
  const std::string newest = repo.commit("one more");
  std::vector<json> lines;
  std::string text;
  auto has_all = [&] {
    text = read_file(err);
    lines.clear();
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      lines.push_back(json::parse(line, nullptr, false));
    for (const char* event :
         {"branch_under_test", "new_commits", "definitions_error", "worker_connected",
          "worker_disconnected", "infra_failure", "branch_moved"}) {
      if (find_event(lines, event).is_null()) return false;
    }
    return true;
  };
  ASSERT_TRUE(eventually(has_all, 60)) << text;
  for (const auto& line : lines) {
    ASSERT_TRUE(line.is_object()) << "not a JSON object: " << text;
    EXPECT_TRUE(line["time"].is_string() && line["level"].is_string() && line["event"].is_string())
        << line.dump();
    EXPECT_EQ(line["time"].get<std::string>().size(), 20u) << line.dump();  // 2026-11-30T14:00:00Z
  }
  const json under_test = find_event(lines, "branch_under_test");
  EXPECT_EQ(under_test["repo"], "app");
  EXPECT_EQ(under_test["branch"], "main");
  const json definitions = find_event(lines, "definitions_error");
  EXPECT_EQ(definitions["commit"], bad);
  EXPECT_EQ(definitions["level"], "warn");
  EXPECT_EQ(find_event(lines, "worker_connected")["worker"], "fake-1");
  EXPECT_EQ(find_event(lines, "worker_disconnected")["worker"], "fake-1");
  const json infra = find_event(lines, "infra_failure");
  EXPECT_EQ(infra["name"], "t/linux");
  EXPECT_EQ(infra["worker"], "fake-1");
  EXPECT_EQ(find_event(lines, "branch_moved")["head"], newest);
}

}  // namespace
}  // namespace testlooper::server
