// Issue 11's reliability suite, the data disk: a `testlooper serve` whose --data fills up while a
// real worker runs tests, and a state.db that is damaged or truncated before a start.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

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

constexpr const char* kDefinitions =
    "looper_version: 5\n"
    "environments: {linux: {platform: linux, image: {host: true}}}\n"
    "tests:\n"
    "  tiny/linux:\n"
    "    command: 'sleep 0.1 && echo {\\\"a\\\": true} > $TEST_OUTPUT_DIR/testSummary.json'\n";

// A tmpfs of `size` mounted on `dir` for the life of the object (unmounted even when the test
// fails). ok() is false, with the reason, where mounting is not permitted.
class Tmpfs {
 public:
  Tmpfs(std::string dir, const std::string& size) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    ok_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    if (!ok_) error_ = std::strerror(errno);
  }
  ~Tmpfs() {
    if (ok_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool ok_ = false;
  std::string error_;
};

// While it lives, this process's stderr (and so that of children started meanwhile) goes to
// `file`.
class StderrTo {
 public:
  explicit StderrTo(const std::string& file) : saved_(dup(STDERR_FILENO)) {
    fflush(stderr);
    const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  ~StderrTo() {
    fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
  }

 private:
  int saved_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The rows of `sql` on the database `path`, each row's columns joined by '|'.
std::vector<std::string> query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::string> out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return {"cannot open " + path};
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    out.push_back(std::string("error: ") + sqlite3_errmsg(db));
  }
  while (s != nullptr && sqlite3_step(s) == SQLITE_ROW) {
    std::string row;
    for (int i = 0; i < sqlite3_column_count(s); ++i) {
      const auto* text = sqlite3_column_text(s, i);
      row += (i ? "|" : "") + std::string(text ? reinterpret_cast<const char*>(text) : "NULL");
    }
    out.push_back(row);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

class ReliabilityTest : public testing::Test {
 protected:
  ReliabilityTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kDefinitions);
    sha_ = app_.commit("first");
  }

  std::vector<std::string> serve_args() const {
    return {"--repos", dir_.path() + "/repos", "--data", data(), "--port", "0", "--poll-seconds",
            "0.3",     "--worker-timeout",     "5"};
  }
  std::string data() const { return dir_.path() + "/data"; }
  // serve_args() without local workers: "--workers", "0" added.
  std::vector<std::string> no_workers() const {
    std::vector<std::string> args = serve_args();
    args.insert(args.end(), {"--workers", "0"});
    return args;
  }
  void full_disk(bool local_worker);

  // The runs of tiny/linux as the API lists them (a JSON array; null when it did not answer).
  json runs(const ServerProcess& server) const {
    return server.get("/api/repos/app/commits/" + sha_ + "/runs?name=tiny/linux");
  }
  static int count_state(const json& runs, const std::string& state) {
    int n = 0;
    for (const auto& r : runs) n += r.value("state", "") == state;
    return n;
  }

  TempDir dir_;
  GitFixtureRepo app_;
  std::string sha_;
};

// Item 8: the data disk fills while a worker runs tests. The server says so (a log line naming
// what it could not write, 507 for a write), keeps serving reads, backs off instead of starting
// run after run, leaves no run `running`; once space is back every run completes and the store
// is intact, each wanted run counted once.
// With an external worker (its files go up over HTTP) or a local one (it works on the full disk).
void ReliabilityTest::full_disk(bool local_worker) {
  const std::string err = dir_.path() + "/serve.err";
  std::unique_ptr<ServerProcess> server;
  std::vector<std::string> args = serve_args();
  if (local_worker) {
    args.insert(args.end(), {"--workers", "1", "--worker-cores", "2", "--worker-ram-gb", "2"});
  } else {
    args.insert(args.end(), {"--workers", "0"});
  }
  {
    StderrTo redirect(err);
    server = std::make_unique<ServerProcess>(args);
  }
  ASSERT_TRUE(eventually([&] { return server->get("/api/repos").size() == 1; }, 30));
  ASSERT_EQ(server->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  constexpr int kTarget = 30;
  ASSERT_EQ(server
                ->post("/api/repos/app/commits/" + sha_ + "/targets",
                       R"({"name": "tiny/linux", "runs": 30})")
                .first,
            200);
  std::unique_ptr<WorkerProcess> worker;
  if (!local_worker) {
    worker = std::make_unique<WorkerProcess>(
        std::vector<std::string>{"--server", server->url(""), "--cores", "2", "--ram-gb", "2",
                                 "--dir", dir_.path() + "/worker", "--id", "w1", "--token-file",
                                 data() + "/worker.token"},
        SIGKILL);
  }
  ASSERT_TRUE(eventually([&] { return count_state(runs(*server), "succeeded") >= 4; }, 60));

  // Fill the disk.
  capture("dd if=/dev/zero of=" + shell_quote(data() + "/fill") + " bs=64k 2>/dev/null");
  const size_t runs_when_full = runs(*server).size();
  ASSERT_TRUE(
      eventually([&] { return read_file(err).find("cannot write") != std::string::npos; }, 60))
      << read_file(err);
  // Reads are served; a write is refused with a clear JSON error or, when the database still
  // had room, done.
  EXPECT_EQ(server->get("/api/repos").size(), 1u);
  EXPECT_TRUE(server->get("/api/repos/app/branches/main/history").is_object());
  EXPECT_TRUE(runs(*server).is_array());
  const auto [status, body] = server->post("/api/repos/app/commits/" + sha_ + "/targets",
                                           R"({"name": "tiny/linux", "runs": 30})");
  EXPECT_TRUE(status == 200 || status == 507) << status << " " << body.dump();
  if (status == 507) {
    EXPECT_TRUE(body["error"].is_string());
    EXPECT_EQ(body.dump().find(dir_.path()), std::string::npos) << body.dump();
  }
  // Back-off, not a loop: waiting 2 + 4 + 8 s for the attempt that backs off 16 s started only a
  // few runs (it was 16 runs in 40 s, issue 11).
  ASSERT_TRUE(
      eventually([&] { return read_file(err).find("retrying in 16 s") != std::string::npos; }, 120))
      << read_file(err);
  const json during = runs(*server);
  ASSERT_TRUE(during.is_array());
  EXPECT_LE(during.size(), runs_when_full + 10) << during.dump(1);
  std::cout << "runs started while the disk was full: " << during.size() - runs_when_full << "\n";
  EXPECT_EQ(count_state(during, "failed"), 0) << "a full disk is never a test failure";

  // Space is back: every wanted run completes and none stays running.
  fs::remove(data() + "/fill");
  ASSERT_TRUE(eventually(
      [&] {
        const json r = runs(*server);
        return count_state(r, "succeeded") == kTarget && count_state(r, "running") == 0;
      },
      180))
      << runs(*server).dump(1) << read_file(err);
  EXPECT_NE(read_file(err).find("writable again"), std::string::npos) << read_file(err);
  const int stopped = server->stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(stopped) && WEXITSTATUS(stopped) == 0) << stopped;

  const std::string db = data() + "/state.db";
  EXPECT_EQ(query(db, "PRAGMA integrity_check"), std::vector<std::string>{"ok"});
  EXPECT_EQ(query(db, "SELECT COUNT(*) FROM runs WHERE state = 'running'"),
            std::vector<std::string>{"0"});
  EXPECT_EQ(query(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded' AND kind = 'test'"),
            std::vector<std::string>{std::to_string(kTarget)});
  // Each counted run has its one case; runs that are not counted keep theirs apart (an
  // infrastructure failure's cases are never counted, store::Store::case_counts).
  EXPECT_EQ(query(db,
                  "SELECT COUNT(*), COUNT(DISTINCT c.run_id) FROM cases c JOIN runs r "
                  "ON r.id = c.run_id WHERE r.state = 'succeeded'"),
            std::vector<std::string>{std::to_string(kTarget) + "|" + std::to_string(kTarget)});
  EXPECT_EQ(query(db,
                  "SELECT COUNT(*) FROM cases c JOIN runs r ON r.id = c.run_id "
                  "WHERE r.state NOT IN ('succeeded', 'infra_failed')"),
            std::vector<std::string>{"0"});
  EXPECT_EQ(query(db, "SELECT COUNT(*) FROM cases WHERE run_id NOT IN (SELECT id FROM runs)"),
            std::vector<std::string>{"0"});
  std::cout << "runs by state: ";
  for (const auto& row : query(db, "SELECT state, COUNT(*) FROM runs GROUP BY state")) {
    std::cout << row << " ";
  }
  std::cout << "\nserve's stderr:\n" << read_file(err);
}

TEST_F(ReliabilityTest, Reliability_FullDataDiskBacksOffServesReadsAndLosesNothing) {
  Tmpfs tmpfs(data(), "24m");
  if (!tmpfs.ok())
    GTEST_SKIP() << "skipped: cannot mount a tmpfs for --data (" << tmpfs.error() << ")";
  full_disk(false);
}

TEST_F(ReliabilityTest, Reliability_FullDataDiskWithALocalWorkerBacksOffToo) {
  Tmpfs tmpfs(data(), "24m");
  if (!tmpfs.ok())
    GTEST_SKIP() << "skipped: cannot mount a tmpfs for --data (" << tmpfs.error() << ")";
  full_disk(true);
}

// A damaged state.db: serve exits 2 naming the file and how to recreate it, instead of starting
// on it (or, truncated below one page, starting empty as if new).
TEST_F(ReliabilityTest, Reliability_DamagedStateDbStopsServeNamingItAndRebuild) {
  {
    ServerProcess server(no_workers());
    ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
    ASSERT_EQ(server.post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
    ASSERT_EQ(server.stop(SIGTERM), 0);
  }
  const std::string db = data() + "/state.db";
  const std::string intact = read_file(db);
  ASSERT_GT(intact.size(), 8192u);
  const size_t half_pages = intact.size() / 2 / 4096 * 4096;
  std::mt19937 random(11);
  std::string noisy = intact;
  for (size_t i = 0; i < 4096; ++i) noisy[intact.size() / 2 + i] = static_cast<char>(random());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"random bytes in the middle", noisy},
      {"truncated below one page", intact.substr(0, 100)},
      {"truncated mid-file, on a page boundary", intact.substr(0, half_pages)},
      {"truncated mid-file, mid-page", intact.substr(0, half_pages + 1000)},
      {"not a SQLite file", std::string(20000, 'x')},
  };
  for (const auto& [what, content] : cases) {
    std::ofstream(db, std::ios::binary | std::ios::trunc) << content;
    fs::remove(db + "-wal");
    fs::remove(db + "-shm");
    std::string command = shell_quote(TL_BINARY) + " serve";
    for (const auto& a : no_workers()) command += " " + shell_quote(a);
    // A server that starts anyway is stopped by the timeout (exit 124).
    const std::string out = capture("timeout 30 " + command + " 2>&1 >/dev/null; echo exit=$?");
    EXPECT_NE(out.find("exit=2"), std::string::npos) << what << ": " << out;
    EXPECT_NE(out.find(db), std::string::npos) << what << ": " << out;
    EXPECT_NE(out.find("testlooper rebuild --data"), std::string::npos) << what << ": " << out;
  }
  // The intact file still starts (the checks refuse only damage).
  std::ofstream(db, std::ios::binary | std::ios::trunc) << intact;
  ServerProcess server(no_workers());
  EXPECT_EQ(server.get("/api/repos/app/branches")[0]["under_test"], true);
}

// One server per data dir: a second `serve` on the same --data exits 2 naming the first's pid and
// changes nothing, however the first ends (here SIGKILL) the next one starts.
TEST_F(ReliabilityTest, Reliability_ASecondServerOnTheSameDataDirIsRefused) {
  auto first = std::make_unique<ServerProcess>(no_workers());
  ASSERT_TRUE(eventually([&] { return first->get("/api/repos").size() == 1; }, 30));
  ASSERT_EQ(first->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  std::string command = shell_quote(TL_BINARY) + " serve";
  for (const auto& a : no_workers()) command += " " + shell_quote(a);
  // A server that starts anyway is stopped by the timeout (exit 124).
  const std::string out = capture("timeout 30 " + command + " 2>&1 >/dev/null; echo exit=$?");
  EXPECT_NE(out.find("exit=2"), std::string::npos) << out;
  EXPECT_NE(
      out.find("in use by another testlooper serve (pid " + std::to_string(first->pid()) + ")"),
      std::string::npos)
      << out;
  EXPECT_EQ(first->get("/api/repos/app/branches")[0]["under_test"], true);
  first->stop(SIGKILL);
  first.reset();
  ServerProcess second(no_workers());
  EXPECT_EQ(second.get("/api/repos/app/branches")[0]["under_test"], true);
}

}  // namespace
}  // namespace testlooper::server
