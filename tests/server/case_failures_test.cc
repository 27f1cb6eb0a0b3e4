// Case failures kept and shown (issue 16 item 7), end to end: a real `testlooper serve`, a real
// remote `testlooper worker` (no shared disk: the run's record, test logs included, is uploaded)
// and a git repo whose test writes a JUnit report and a testSummary.json with messages and logs.
// GET /api/runs/{id} lists each case's message and logs; the log endpoint serves a log as text
// and refuses names outside its grammar and symlinks; all of it survives a restart and a
// `rebuild` from the artifact store alone.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli/case_failures_script.h"
#include "fake_worker.h"
#include "server_fixture.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
using fixtures::capture;
using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using nlohmann::json;

// (A copy: reading a field it lacks is then null, not undefined behaviour.)
json case_named(const json& cases, const std::string& name) {
  for (const json& c : cases) {
    if (c.value("name", "") == name) return c;
  }
  ADD_FAILURE() << "no case " << name << " in " << cases.dump(2);
  return json::object();
}

class CaseFailuresTest : public ::testing::Test {
 protected:
  CaseFailuresTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", ::testlooper::testing::kCaseDefinitions);
    app_.write(::testlooper::testing::kCaseScriptPath, ::testlooper::testing::kCaseScript);
    sha_ = app_.commit("cases");
    start();
  }

  void start() {
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--repos", dir_.path() + "/repos", "--data", data(), "--port", "0",
                                 "--workers", "0", "--poll-seconds", "0.3"});
  }
  std::string data() const { return dir_.path() + "/data"; }

  // `path` fetched with curl as given (--path-as-is: no `..` folded away): status and body.
  std::pair<int, std::string> fetch(const std::string& path) const {
    const std::string body_file = dir_.path() + "/body";
    const std::string code =
        capture("curl -s --path-as-is -o " + shell_quote(body_file) +
                " -w '%{http_code} %{content_type}' " + shell_quote(server_->url(path)));
    std::ifstream in(body_file);
    std::string body(std::istreambuf_iterator<char>(in), {});
    last_content_type_ = code.substr(code.find(' ') + 1);
    return {std::stoi(code), body};
  }

  json the_run() const {
    const json runs = server_->get("/api/repos/app/commits/" + sha_ + "/runs?name=cases/linux");
    return runs.is_array() && runs.size() == 1 ? runs[0] : json();
  }

  TempDir dir_;
  TempDir worker_dir_;
  GitFixtureRepo app_;
  std::string sha_;
  std::unique_ptr<ServerProcess> server_;
  mutable std::string last_content_type_;
};

TEST_F(CaseFailuresTest, MessagesAndLogsAreServedAndSurviveARestartAndARebuild) {
  ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  WorkerProcess worker({"--server", server_->url(""), "--dir", worker_dir_.path(), "--cores", "1",
                        "--ram-gb", "1", "--id", "remote-1", "--token-file",
                        data() + "/worker.token"});
  const auto [status, body] =
      server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_TRUE(eventually(
      [&] {
        const json run = the_run();
        return run.is_object() && run["state"] != "running";
      },
      90))
      << server_->get("/api/repos/app/commits/" + sha_ + "/runs").dump(2);
  const std::string id = the_run()["id"];
  json run = server_->get("/api/runs/" + id);
  ASSERT_EQ(run["state"], "failed") << run.dump(2);
  const json cases = run["cases"];
  EXPECT_EQ(case_named(cases, "pkg.C.bad")["message"],
            "expected 1, got 2\nat C.java:10\nat C.java:20");
  EXPECT_EQ(case_named(cases, "pkg.C.boom")["message"], "NullPointerException");
  // A skipped case keeps why; it is not a run of the case (the commit's case counts lack it).
  EXPECT_EQ(case_named(cases, "pkg.C.later")["message"], "not on Linux");
  EXPECT_EQ(case_named(cases, "pkg.C.later")["skipped"], true);
  EXPECT_EQ(run["detail"].get<std::string>().rfind("5 of 7 test cases failed", 0), 0u)
      << run["detail"];
  json object;
  const json commit = server_->get("/api/repos/app/commits/" + sha_);
  for (const json& o : commit["objects"]) {
    if (o["name"] == "cases/linux") object = o;
  }
  EXPECT_TRUE(object["cases"].contains("pkg.C.bad")) << object.dump(2);
  EXPECT_FALSE(object["cases"].contains("pkg.C.later")) << object.dump(2);
  EXPECT_EQ(case_named(cases, "pkg.C.<i>html")["message"], "<b>not bold</b>");
  EXPECT_EQ(case_named(cases, "pkg.C.ok")["message"], "");
  EXPECT_EQ(case_named(cases, "S::fails")["message"],
            "assertion failed\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7");
  const std::string cut = case_named(cases, "S::long")["message"];
  EXPECT_LE(cut.size(), 4096u);
  EXPECT_NE(cut.find("bytes not kept]"), std::string::npos);
  // A commit's list of runs leaves the messages out (a run holds up to 256 KiB of them).
  EXPECT_FALSE(case_named(the_run()["cases"], "pkg.C.bad").contains("message"));

  // The case's log: named in the record, served as text from the run's record.
  json logs = case_named(cases, "S::fails")["logs"];
  ASSERT_EQ(logs.size(), 1u) << cases.dump(2);
  const std::string url = logs[0]["url"];
  EXPECT_EQ(url, "/api/runs/" + id + "/" + logs[0]["name"].get<std::string>());
  EXPECT_EQ(fetch(url), std::make_pair(200, std::string("the log of S::fails\n")));
  EXPECT_EQ(last_content_type_, "text/plain; charset=utf-8");

  // Names outside the grammar are refused before any file is looked at; nothing says where the
  // server keeps its files.
  const std::string base = "/api/runs/" + id + "/test_logs/";
  const std::string dir = fs::path(logs[0]["name"].get<std::string>()).parent_path().filename();
  for (const std::string& bad : std::vector<std::string>{
           base + "../log.txt", base + dir + "/..", base + "%2e%2e/log.txt",
           base + "%2e%2e/%2e%2e/log.txt", base + "/etc/passwd", base + dir + "/%2Fetc%2Fpasswd",
           base + ".hidden/x", base + dir + "/a%00b", "/api/runs/not-a-run/test_logs/a/b"}) {
    const auto [code, text] = fetch(bad);
    EXPECT_EQ(code, 400) << bad << ": " << text;
    EXPECT_EQ(text.find(dir_.path()), std::string::npos) << text;
  }
  // A name in the grammar that is not there, or that is reached through a symlink: 404.
  const fs::path logs_dir = fs::path(data()) / "artifacts/runs" / id / "test_logs";
  ASSERT_TRUE(fs::is_directory(logs_dir / dir)) << logs_dir;
  fs::create_directory_symlink(logs_dir / dir, logs_dir / "linked");
  fs::create_symlink("/etc/passwd", logs_dir / dir / "passwd");
  const std::string file = fs::path(logs[0]["name"].get<std::string>()).filename();
  for (const std::string& missing : std::vector<std::string>{
           base + dir + "/nothing.log", base + "linked/" + file, base + dir + "/passwd"}) {
    const auto [code, text] = fetch(missing);
    EXPECT_EQ(code, 404) << missing << ": " << text;
    EXPECT_EQ(text.find(dir_.path()), std::string::npos) << text;
  }
  fs::remove(logs_dir / "linked");
  fs::remove(logs_dir / dir / "passwd");

  // A restart keeps them (the database).
  server_->stop(SIGTERM);
  start();
  EXPECT_EQ(server_->get("/api/runs/" + id)["cases"], cases);
  EXPECT_EQ(fetch(url).second, "the log of S::fails\n");

  // So does a rebuild from the artifact store alone.
  server_->stop(SIGTERM);
  for (const char* f : {"/state.db", "/state.db-wal", "/state.db-shm"}) fs::remove(data() + f);
  const std::string out = capture(std::string(TL_BINARY) + " rebuild --trust-unknown-runs --data " +
                                  shell_quote(data()) + " 2>&1");
  EXPECT_NE(out.find("restored"), std::string::npos) << out;
  start();
  EXPECT_EQ(server_->get("/api/runs/" + id)["cases"], cases);
  EXPECT_EQ(fetch(url).second, "the log of S::fails\n");
}

// What a worker sends is capped, not refused (a refused result would be resent at every hello and
// lock the worker out); a log name outside its grammar is refused.
TEST_F(CaseFailuresTest, AWorkersMessagesAreCappedAndBadLogNamesRefused) {
  ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  fixtures::FakeWorker worker(server_->port(), fixtures::worker_token(data()), "fake-1");
  ASSERT_TRUE(worker.connected());
  ASSERT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  const std::optional<fixtures::FakeJob> job = worker.job("cases/linux");
  ASSERT_TRUE(job.has_value());
  // 100 cases of 8 KiB (the first of 2 MiB, more than any other text field may hold): 4 KiB each
  // is kept until the run's 256 KiB are spent.
  json cases = json::array();
  for (int i = 0; i < 100; ++i) {
    cases.push_back({{"name", "c" + std::to_string(i)},
                     {"success", false},
                     {"message", std::string(i == 0 ? 2 << 20 : 8192, 'y')}});
  }
  cases[0]["logs"] = {"test_logs/c0/0-out.log"};
  ASSERT_TRUE(worker.report(job->run_id, "failure", 60, {{"cases", cases}}));
  json run = server_->get("/api/runs/" + job->run_id);
  ASSERT_EQ(run["cases"].size(), 100u) << run.dump().substr(0, 2000);
  size_t total = 0;
  for (const json& c : run["cases"]) {
    const std::string message = c.value("message", "");
    EXPECT_LE(message.size(), 4096u);
    EXPECT_NE(message.find("bytes not kept]"), std::string::npos) << c["name"];
    total += message.size();
  }
  EXPECT_LE(total, 256u * 1024 + 100 * 48);
  EXPECT_EQ(run["cases"][0]["logs"],
            json::parse(R"([{"name": "test_logs/c0/0-out.log", "url": "/api/runs/)" + job->run_id +
                        R"(/test_logs/c0/0-out.log"}])"));
  // The last case's message is past the run's budget: a few bytes and the marker.
  EXPECT_LE(run["cases"][99].value("message", "").size(), 48u);

  // A log name that could leave the record closes the connection; the stored run is unchanged.
  const json bad = {{"type", "result"},
                    {"run_id", job->run_id},
                    {"outcome", "failure"},
                    {"cases", {{{"name", "x"}, {"success", false}, {"logs", {"../../state.db"}}}}}};
  ASSERT_TRUE(worker.socket().send(bad.dump()));
  const std::optional<std::string> reason = worker.socket().close_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("logs"), std::string::npos) << *reason;
  EXPECT_EQ(server_->get("/api/runs/" + job->run_id)["cases"], run["cases"]);
}

}  // namespace
}  // namespace testlooper::server
