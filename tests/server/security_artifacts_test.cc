// Issue 10's attacks on the artifact store, through real HTTP against a real `testlooper serve`
// (and a real `testlooper worker` / `testlooper rebuild` where the attack goes through them):
// crafted tars, crafted names, files planted in the store. Uploads come from a malicious but
// authenticated worker (fixtures::FakeWorker: the worker token, and the upload token of a job the
// server really gave it), the strongest attacker these defences must stop. Each test asserts the
// refusal and that nothing on disk or in the store changed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "artifacts/crafted_tar.h"
#include "fake_worker.h"
#include "server_fixture.h"

namespace testlooper::server {
namespace {

namespace fs = std::filesystem;
using fixtures::capture;
using fixtures::eventually;
using fixtures::FakeJob;
using fixtures::FakeWorker;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using fixtures::WorkerProcess;
using nlohmann::json;
using testing::CraftedEntry;
using testing::file_entry;
using testing::hardlink_entry;
using testing::symlink_entry;
using testing::write_crafted_archive;

// Two builds (one attacked, one whose stored file is the target), one with a test that depends
// on it (for the worker's staging), and a test that stays running (for record uploads).
constexpr const char* kDefinitions = R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
builds:
  a/linux:
    stages:
      - command: 'echo a'
  b/linux:
    stages:
      - command: 'mkdir -p $TEST_BUILD_OUTPUT_DIR/bin && echo hi > $TEST_BUILD_OUTPUT_DIR/bin/x'
        artifacts: [{name: bin, directory: bin}]
tests:
  t/linux:
    dependencies: {b: b/linux}
    command: 'true'
  slow/linux:
    command: 'sleep 60'
)";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SecurityArtifactsTest : public ::testing::Test {
 protected:
  SecurityArtifactsTest() : app_(dir_.path() + "/repos/app") {
    app_.write("testlooper.yml", kDefinitions);
    sha_ = app_.commit("first");
    std::ofstream(secret()) << "the secret";
    start_server();
  }

  void start_server() {
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--repos", dir_.path() + "/repos", "--data", data(), "--port", "0",
                                 "--workers", "0", "--poll-seconds", "0.3"});
  }

  std::string data() const { return dir_.path() + "/data"; }
  fs::path store() const { return data() + "/artifacts"; }
  std::string secret() const { return dir_.path() + "/secret"; }

  // The worker secret (issue 10 item 7).
  std::string token() const { return fixtures::worker_token(data()); }
  // The worker secret header.
  std::string auth() const { return "-H " + shell_quote("Authorization: Bearer " + token()) + " "; }

  // A malicious worker with the worker token, connected once the server knows the repo, with the
  // branch put under test: the server then gives it the jobs (there are no other workers).
  std::unique_ptr<FakeWorker> rogue_worker() {
    EXPECT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
    auto rogue = std::make_unique<FakeWorker>(server_->port(), token(), "rogue");
    EXPECT_TRUE(rogue->connected());
    EXPECT_EQ(server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})").first,
              200);
    return rogue;
  }
  // The job for `name` the server gives `rogue`, and the identity hash of its run.
  std::pair<FakeJob, std::string> job_of(FakeWorker& rogue, const std::string& name) const {
    const std::optional<FakeJob> job = rogue.job(name);
    if (!job) {
      ADD_FAILURE() << "no job for " << name;
      return {};
    }
    const json run = server_->get("/api/runs/" + job->run_id);
    EXPECT_EQ(run["name"], name) << run.dump();
    return {*job, run["hash"].is_string() ? run["hash"].get<std::string>() : ""};
  }

  // POSTs file `body` to `path` (already URL-encoded) with the worker token and `upload_token`;
  // the status and the parsed reply.
  std::pair<int, json> upload(const std::string& path, const fs::path& body,
                              const std::string& upload_token) const {
    const auto [status, reply] =
        fixtures::upload_file(server_->url(path), body.string(), token(), upload_token);
    return {status, json::parse(reply, nullptr, false)};
  }

  // GETs `path` into file `to`; the status.
  int download(const std::string& path, const fs::path& to) const {
    return std::stoi(capture("curl -s " + auth() + "-o " + shell_quote(to.string()) +
                             " -w '%{http_code}' " + shell_quote(server_->url(path))));
  }

  // A crafted tar of `entries` under the test's directory.
  fs::path tar_of(const std::vector<CraftedEntry>& entries) const {
    static int counter = 0;
    const fs::path path = dir_.path() + "/crafted-" + std::to_string(counter++) + ".tar";
    write_crafted_archive(path, entries);
    return path;
  }

  fs::path text_file(const std::string& text) const { return tar_of({file_entry("x", text)}); }

  // Every path under the store's builds/ and runs/, with file contents: what must not change.
  std::string store_snapshot() const {
    return capture("cd " + shell_quote(store().string()) +
                   " 2>/dev/null && find builds runs -print 2>/dev/null | sort && "
                   "find builds runs -type f -exec md5sum {} + 2>/dev/null | sort");
  }

  TempDir dir_;
  GitFixtureRepo app_;
  std::string sha_;
  std::unique_ptr<ServerProcess> server_;
};

const std::string kHashA(64, 'a');

TEST_F(SecurityArtifactsTest, FilesUpload_HardLinksAndEscapingLinksAreRefused) {
  auto rogue = rogue_worker();
  const auto [a, hash_a] = job_of(*rogue, "a/linux");
  const auto [b, hash_b] = job_of(*rogue, "b/linux");
  ASSERT_FALSE(hash_a.empty() || hash_b.empty() || hash_a == hash_b);
  // Another build's stored @.tar, the target of the attack, as its own run uploaded it.
  const fs::path good = tar_of({file_entry("tool", "genuine")});
  ASSERT_EQ(upload("/api/artifacts/builds/" + hash_b + "/@.tar", good, b.upload_token).first, 200);
  const std::string genuine = slurp(store() / "builds" / hash_b / "@.tar");
  const std::string before = store_snapshot();

  const std::vector<std::vector<CraftedEntry>> attacks = {
      {hardlink_entry("h", secret(), "pwned"), file_entry("h", "pwned")},
      // Relative to where uploads unpack: <data>/artifacts/tmp/import-*/files/.
      {hardlink_entry("h", "../../../builds/" + hash_b + "/@.tar", "pwned"),
       file_entry("h", "pwned")},
      {hardlink_entry("h", "../../../../../secret", ""), file_entry("h", "pwned")},
      {symlink_entry("l", "../../../builds/" + hash_b), file_entry("l/@.tar", "pwned")},
      {symlink_entry("l", secret())},
      {file_entry("../../../builds/" + hash_b + "/@.tar", "pwned")},
      {{CraftedEntry::Kind::kCharDevice, "null", "", ""}},
  };
  for (size_t i = 0; i < attacks.size(); ++i) {
    const auto [status, body] =
        upload("/api/artifacts/builds/" + hash_a + "/evil" + std::to_string(i) + ".files",
               tar_of(attacks[i]), a.upload_token);
    EXPECT_EQ(status, 400) << i << ": " << body.dump();
    EXPECT_TRUE(body.contains("error")) << body.dump();
    EXPECT_EQ(body.dump().find(dir_.path()), std::string::npos) << "reveals a path: " << body;
  }
  EXPECT_EQ(slurp(secret()), "the secret");
  EXPECT_EQ(slurp(store() / "builds" / hash_b / "@.tar"), genuine);
  EXPECT_EQ(store_snapshot(), before);

  // A build's relative in-tree symlink is fine, and comes back as a link.
  const fs::path legit =
      tar_of({file_entry("lib/libfoo.so.1", "ELF"), symlink_entry("lib/libfoo.so", "libfoo.so.1")});
  const auto [status, body] =
      upload("/api/artifacts/builds/" + hash_a + "/lib.files", legit, a.upload_token);
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_TRUE(fs::is_symlink(store() / "builds" / hash_a / "lib.files/lib/libfoo.so"));
}

TEST_F(SecurityArtifactsTest, BuildUpload_NamesMustBeTheStoresOwnSpelling) {
  auto rogue = rogue_worker();
  const auto [a, hash_a] = job_of(*rogue, "a/linux");
  ASSERT_FALSE(hash_a.empty());
  const fs::path body = text_file("x");
  for (const char* name : {"a%25zz.tar", "a%25.tar", "a%252f.tar", "a%2541.tar",
                           "complete.json%00.tar", "a%00b.tar", "%2E%2E.tar", "a%20b.tar"}) {
    const auto [status, reply] =
        upload("/api/artifacts/builds/" + hash_a + "/" + name, body, a.upload_token);
    EXPECT_EQ(status, 400) << name << ": " << reply.dump();
    EXPECT_TRUE(reply.contains("error")) << name;
  }
  EXPECT_FALSE(fs::exists(store() / "builds" / hash_a / "complete.json"));
  EXPECT_TRUE(!fs::exists(store() / "builds" / hash_a) ||
              fs::is_empty(store() / "builds" / hash_a));
  // What the store writes for artifact "a/b" is accepted, and listed under that name.
  ASSERT_EQ(upload("/api/artifacts/builds/" + hash_a + "/a%252Fb.tar", body, a.upload_token).first,
            200);
  const json listing = json::parse(
      capture("curl -s " + auth() + shell_quote(server_->url("/api/artifacts/builds/" + hash_a))),
      nullptr, false);
  ASSERT_EQ(listing["artifacts"].size(), 1u) << listing.dump();
  EXPECT_EQ(listing["artifacts"][0]["name"], "a/b");
}

TEST_F(SecurityArtifactsTest, CompleteBuild_IsImmutableAndListsExactlyItsArtifacts) {
  auto rogue = rogue_worker();
  const auto [a, hash_a] = job_of(*rogue, "a/linux");
  const auto [b, hash_b] = job_of(*rogue, "b/linux");
  ASSERT_FALSE(hash_a.empty() || hash_b.empty());
  const fs::path bin = text_file("genuine");
  const fs::path extra = text_file("extra");
  const std::string base = "/api/artifacts/builds/" + hash_a + "/";
  ASSERT_EQ(upload(base + "bin.tar", bin, a.upload_token).first, 200);
  ASSERT_EQ(upload(base + "extra.tar", extra, a.upload_token).first, 200);
  auto complete = [&](const std::string& text) {
    const fs::path file = dir_.path() + "/complete.json";
    std::ofstream(file) << text;
    return upload(base + "complete.json", file, a.upload_token);
  };
  // Not listing a stored artifact (smuggled in beside), a bad directory, a wrong type.
  EXPECT_EQ(complete(R"({"artifacts": [{"name": "bin"}]})").first, 400);
  EXPECT_EQ(complete(R"({"artifacts": [{"name": "bin"}, {"name": "extra"}, {"name": "x"}]})").first,
            400);
  EXPECT_EQ(
      complete(R"({"artifacts": [{"name": "bin", "directory": "../../x"}, {"name": "extra"}]})")
          .first,
      400);
  EXPECT_EQ(complete(R"({"artifacts": [{"name": 5}, {"name": "extra"}]})").first, 400);
  EXPECT_FALSE(fs::exists(store() / "builds" / hash_a / "complete.json"));
  const auto [status, reply] = complete(R"({"artifacts": [{"name": "bin"}, {"name": "extra"}]})");
  ASSERT_EQ(status, 200) << reply.dump();

  // Complete: nothing can be added or replaced, even by the build's own run while it is active.
  const std::string before = store_snapshot();
  const std::vector<std::string> names = {"bin.tar", "other.tar", "other.files", "complete.json",
                                          "bin.zip"};
  for (const std::string& name : names) {
    const auto [s, r] = upload(base + name, tar_of({file_entry("x", "pwned")}), a.upload_token);
    EXPECT_EQ(s, 409) << name << ": " << r.dump();
    EXPECT_TRUE(r.contains("error")) << name;
  }
  // Another build's active run may not touch it at all.
  EXPECT_EQ(upload(base + "other.tar", text_file("pwned"), b.upload_token).first, 403);
  // Once the run has ended, its upload token opens nothing.
  ASSERT_TRUE(rogue->report(a.run_id, "success"));
  EXPECT_EQ(server_->get("/api/runs/" + a.run_id)["state"], "succeeded");
  for (const std::string& name : names) {
    const auto [s, r] = upload(base + name, tar_of({file_entry("x", "pwned")}), a.upload_token);
    EXPECT_EQ(s, 403) << name << ": " << r.dump();
    EXPECT_TRUE(r.contains("error")) << name;
  }
  EXPECT_EQ(store_snapshot(), before);
  EXPECT_EQ(slurp(store() / "builds" / hash_a / "bin.tar"), slurp(bin));
}

TEST_F(SecurityArtifactsTest, ServedFiles_AreRegularFilesNeverThroughALink) {
  const std::string run = "0123456789abcdef";
  const fs::path record = store() / "runs" / run;
  fs::create_directories(record / "artifacts");
  fs::create_directories(dir_.path() + "/outside");
  std::ofstream(dir_.path() + "/outside/file") << "the secret";
  // As a record uploaded before the fix could have left them.
  fs::create_symlink(secret(), record / "artifacts/leak.tar");
  fs::create_directory_symlink(dir_.path() + "/outside", record / "artifacts/dir");
  fs::create_directory_symlink(record / "artifacts", store() / "runs/fedcba9876543210");
  const fs::path build = store() / "builds" / kHashA;
  fs::create_directories(build / "ok.files");
  fs::create_symlink(secret(), build / "leak.tar");
  fs::create_directory_symlink(dir_.path() + "/outside", build / "dir.files");
  fs::create_symlink(secret(), build / "ok.files/s");

  const fs::path got = dir_.path() + "/got";
  for (const std::string& path : std::vector<std::string>{
           "/api/runs/" + run + "/artifacts/leak.tar", "/api/runs/" + run + "/artifacts/dir",
           "/api/runs/fedcba9876543210/artifacts/leak.tar",
           "/api/artifacts/builds/" + kHashA + "/leak.tar",
           "/api/artifacts/builds/" + kHashA + "/dir.files"}) {
    const int status = download(path, got);
    EXPECT_GE(status, 400) << path;
    EXPECT_LT(status, 500) << path;
    EXPECT_EQ(slurp(got).find("the secret"), std::string::npos) << path;
  }
  // A Files artifact holding a link is served as a tar holding the link, not what it points at.
  ASSERT_EQ(download("/api/artifacts/builds/" + kHashA + "/ok.files", got), 200);
  EXPECT_EQ(slurp(got).find("the secret"), std::string::npos);
  EXPECT_EQ(capture("tar -tvf " + shell_quote(got.string()) + " | grep -c -- '^l'"), "1\n");
}

TEST_F(SecurityArtifactsTest, WorkerStaging_BadStoredNameFailsTheRunNotTheWorker) {
  ASSERT_TRUE(eventually([&] { return server_->get("/api/repos").size() == 1; }, 30));
  std::string hash;
  ASSERT_TRUE(eventually([&] {
    const json commit = server_->get("/api/repos/app/commits/" + sha_);
    if (!commit.contains("objects")) return false;
    for (const json& object : commit["objects"]) {
      if (object["name"] == "b/linux" && object["hash"].is_string()) hash = object["hash"];
    }
    return !hash.empty();
  }));
  // The worker's store as a pre-fix download of "x%zz.tar" left it: a name the store would never
  // write. Staging or uploading that build used to abort the worker (std::stoi), every time.
  TempDir worker_dir;
  const fs::path build = fs::path(worker_dir.path()) / "store/builds" / hash;
  fs::create_directories(build);
  fs::copy_file(text_file("x"), build / "x%zz.tar");

  WorkerProcess worker({"--server", server_->url(""), "--dir", worker_dir.path(), "--cores", "2",
                        "--ram-gb", "2", "--id", "remote-1", "--token-file",
                        data() + "/worker.token"});
  ASSERT_TRUE(eventually([&] { return server_->get("/api/workers").size() == 1; }, 30));
  server_->post("/api/repos/app/branches/main/test", R"({"enabled": true})");
  json run;
  ASSERT_TRUE(eventually(
      [&] {
        const json runs = server_->get("/api/repos/app/commits/" + sha_ + "/runs?name=b/linux");
        if (!runs.is_array()) return false;
        for (const json& r : runs) {
          if (r["state"] != "running") run = r;
        }
        return run.is_object();
      },
      90))
      << server_->get("/api/repos/app/commits/" + sha_ + "/runs").dump(2)
      << server_->get("/api/workers").dump(2);
  EXPECT_NE(run["detail"].get<std::string>().find("x%zz.tar"), std::string::npos) << run.dump(2);
  EXPECT_EQ(run["state"], "infra_failed") << run.dump(2);
  // The worker is still there (it used to abort, over and over).
  const json workers = server_->get("/api/workers");
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0]["connected"], true) << workers.dump();
}

TEST_F(SecurityArtifactsTest, RecordUpload_LinksAreRefusedAndNothingIsServed) {
  auto rogue = rogue_worker();
  const auto [slow, hash] = job_of(*rogue, "slow/linux");
  const std::string& id = slow.run_id;
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(server_->get("/api/runs/" + id)["state"], "running");
  const std::vector<std::vector<CraftedEntry>> attacks = {
      {file_entry("test_result.json", "{}"), symlink_entry("artifacts/leak.tar", secret())},
      {file_entry("test_result.json", "{}"), symlink_entry("artifacts/leak.tar", "../log.txt")},
      {file_entry("test_result.json", "{}"), hardlink_entry("artifacts/leak.tar", secret(), "")},
      {file_entry("test_result.json", "{}"),
       hardlink_entry("artifacts/leak.tar", "../../../../../secret", "pwned")},
  };
  const fs::path got = dir_.path() + "/got";
  for (size_t i = 0; i < attacks.size(); ++i) {
    const auto [status, body] =
        upload("/api/artifacts/runs/" + id, tar_of(attacks[i]), slow.upload_token);
    EXPECT_EQ(status, 400) << i << ": " << body.dump();
    EXPECT_TRUE(body.contains("error")) << body.dump();
    EXPECT_EQ(body.dump().find(dir_.path()), std::string::npos) << "reveals a path: " << body;
    EXPECT_FALSE(fs::exists(store() / "runs" / id)) << i;
    download("/api/runs/" + id + "/artifacts/leak.tar", got);
    EXPECT_EQ(slurp(got).find("the secret"), std::string::npos) << i;
  }
  EXPECT_EQ(slurp(secret()), "the secret");
  EXPECT_EQ(server_->get("/api/runs/" + id)["state"], "running");
}

TEST_F(SecurityArtifactsTest, Rebuild_RestoresOnlyRecordsItCanTrust) {
  server_->stop(SIGTERM);
  auto record = [&](const std::string& dir, const json& result) {
    fs::create_directories(store() / "runs" / dir);
    std::ofstream(store() / "runs" / dir / "test_result.json") << result.dump();
  };
  const json genuine = {{"id", "00000000000000aa"},
                        {"name", "app/" + sha_ + "/t/linux"},
                        {"hash", kHashA},
                        {"kind", "test"},
                        {"outcome", "success"}};
  record("00000000000000aa", genuine);
  json wrong_id = genuine;
  wrong_id["id"] = "00000000000000cc";
  record("00000000000000bb", wrong_id);
  json bad_type = genuine;
  bad_type["id"] = "00000000000000dd";
  bad_type["exit_code"] = "zero";
  record("00000000000000dd", bad_type);
  record("..evil", genuine);
  fs::create_directories(store() / "runs/00000000000000ee");
  fs::create_symlink(store() / "runs/00000000000000aa/test_result.json",
                     store() / "runs/00000000000000ee/test_result.json");

  const std::string rebuild = std::string(TL_BINARY) + " rebuild --data " + shell_quote(data());
  // The database knows none of these runs: nothing is restored, and each one is named.
  std::string out = capture(rebuild + " 2>&1");
  EXPECT_NE(out.find("restored 0 runs (5 records skipped)"), std::string::npos) << out;
  EXPECT_NE(out.find("skipped 00000000000000aa: the database does not know"), std::string::npos)
      << out;
  // Trusting unknown runs still refuses the malformed ones.
  out = capture(rebuild + " --trust-unknown-runs 2>&1");
  EXPECT_NE(out.find("restored 1 runs (4 records skipped)"), std::string::npos) << out;
  for (const char* skipped :
       {"00000000000000bb", "00000000000000dd", "..evil", "00000000000000ee"}) {
    EXPECT_NE(out.find(std::string("skipped ") + skipped + ": "), std::string::npos) << out;
  }
  start_server();
  EXPECT_EQ(server_->get("/api/runs/00000000000000aa")["state"], "succeeded");
  EXPECT_TRUE(server_->get("/api/runs/00000000000000bb").contains("error"));
}

}  // namespace
}  // namespace testlooper::server
