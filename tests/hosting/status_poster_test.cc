// Commit statuses posted to a fake GitHub and GitLab (fake_host.py, a real HTTP server): the
// host's JSON, newest wins, never the same twice in a row, retries with back-off, a bounded
// queue, descriptions cut at the host's limit.
#include "hosting/status_poster.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "hosting/fake_host.h"
#include "server/server_fixture.h"

namespace testlooper::hosting {
namespace {

using fixtures::FakeHost;
using fixtures::TempDir;

const std::string kSha = "0123456789abcdef0123456789abcdef01234567";

HostOptions options_for(Kind kind, const FakeHost& fake) {
  HostOptions o;
  o.kind = kind;
  o.token = "secret-token";
  o.owner = "acme";
  o.web_url = fake.url();
  o.api_url = fake.url() + (kind == Kind::kGitHub ? "/api/v3" : "/api/v4");
  o.timeout_seconds = 30;
  return o;
}

CommitStatus status(CommitStatus::State state, const std::string& description,
                    const std::string& context = "testlooper/unit") {
  return {state, context, description, "http://127.0.0.1:1/repos/lib/commits/" + kSha};
}

// A host whose posts wait while the test holds the gate: what the poster does meanwhile is then
// certain.
class GatedHost : public Host {
 public:
  explicit GatedHost(std::unique_ptr<Host> host) : host_(std::move(host)) {}
  void close() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Whether a post waits at the gate.
  bool waiting() {
    std::lock_guard lock(mu_);
    return waiting_ > 0;
  }
  Result<std::vector<HostedRepo>> list_repos() override { return host_->list_repos(); }
  Status post_status(const HostedRepo& repo, const std::string& sha,
                     const CommitStatus& s) override {
    {
      std::unique_lock lock(mu_);
      ++waiting_;
      cv_.wait(lock, [&] { return open_; });
      --waiting_;
    }
    return host_->post_status(repo, sha, s);
  }
  size_t description_limit() const override { return host_->description_limit(); }
  std::string commit_url(const HostedRepo& r, const std::string& sha) const override {
    return host_->commit_url(r, sha);
  }
  GitCredentials credentials() const override { return host_->credentials(); }

 private:
  std::unique_ptr<Host> host_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int waiting_ = 0;
};

TEST(FitDescription, CountsCodePointsAndNeverSplitsOne) {
  EXPECT_EQ(fit_description("short", 140), "short");
  const std::string exact = std::string(139, 'x') + "é";  // 140 code points, 141 bytes
  EXPECT_EQ(fit_description(exact, 140), exact);
  EXPECT_EQ(fit_description(exact + "y", 140), std::string(139, 'x') + "…");
  EXPECT_EQ(fit_description(std::string(138, 'x') + "€€€", 140), std::string(138, 'x') + "€…");
  EXPECT_EQ(fit_description("abc", 0), "");
}

TEST(StatusPoster, GitHubGetsItsJsonAndTheDescriptionCutAt140) {
  TempDir dir;
  FakeHost fake(dir.path() + "/host", "secret-token");
  StatusPoster poster(make_host(options_for(Kind::kGitHub, fake)),
                      options_for(Kind::kGitHub, fake));
  // 138 ASCII characters, then a 2-byte one at the edge: 139 code points and "…" fit in 140.
  const std::string long_text = std::string(138, 'x') + "é" + std::string(20, 'y');
  poster.post("lib", kSha, status(CommitStatus::State::kFailure, long_text));
  ASSERT_TRUE(fixtures::eventually([&] { return poster.pending() == 0; }));
  const auto posted = fake.statuses();
  ASSERT_EQ(posted.size(), 1u);
  EXPECT_EQ(posted[0]["_path"], "/api/v3/repos/acme/lib/statuses/" + kSha);
  EXPECT_EQ(posted[0]["state"], "failure");
  EXPECT_EQ(posted[0]["context"], "testlooper/unit");
  EXPECT_EQ(posted[0]["target_url"], "http://127.0.0.1:1/repos/lib/commits/" + kSha);
  EXPECT_EQ(posted[0]["description"], std::string(138, 'x') + "é…");
  EXPECT_EQ(fake.requests().back()["authorization"], "Bearer secret-token");
}

TEST(StatusPoster, RepoNamesAreEncodedInTheUrl) {
  TempDir dir;
  FakeHost fake(dir.path() + "/host", "secret-token");
  StatusPoster poster(make_host(options_for(Kind::kGitHub, fake)),
                      options_for(Kind::kGitHub, fake));
  poster.post("a b?c", kSha, status(CommitStatus::State::kSuccess, "1 runs"));
  ASSERT_TRUE(fixtures::eventually([&] { return poster.pending() == 0; }));
  const auto posted = fake.statuses();
  ASSERT_EQ(posted.size(), 1u);
  EXPECT_EQ(posted[0]["_path"], "/api/v3/repos/acme/a%20b%3Fc/statuses/" + kSha);
  EXPECT_EQ(hosting::path_segment("app/x y"), "app%2Fx%20y");
}

TEST(StatusPoster, GitLabGetsItsStateNamesAndTheEncodedPath) {
  TempDir dir;
  FakeHost fake(dir.path() + "/host", "secret-token");
  StatusPoster poster(make_host(options_for(Kind::kGitLab, fake)),
                      options_for(Kind::kGitLab, fake));
  poster.post("lib", kSha, status(CommitStatus::State::kFailure, "1 broken"));
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "running", "testlooper/other"));
  ASSERT_TRUE(fixtures::eventually([&] { return poster.pending() == 0; }));
  const auto posted = fake.statuses();
  ASSERT_EQ(posted.size(), 2u);
  for (const auto& p : posted)
    EXPECT_EQ(p["_path"], "/api/v4/projects/acme%2Flib/statuses/" + kSha);
  EXPECT_EQ(posted[0]["state"], "failed");
  EXPECT_EQ(posted[0]["name"], "testlooper/unit");
  EXPECT_EQ(posted[1]["state"], "pending");
  EXPECT_EQ(posted[1]["name"], "testlooper/other");
  EXPECT_EQ(fake.requests().back()["private_token"], "secret-token");
}

TEST(StatusPoster, NewestWinsAndTheSameIsNeverPostedTwiceInARow) {
  TempDir dir;
  FakeHost fake(dir.path() + "/host", "secret-token");
  auto gated = std::make_shared<GatedHost>(make_host(options_for(Kind::kGitHub, fake)));
  StatusPoster poster(gated, options_for(Kind::kGitHub, fake));
  gated->close();
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "running: 0/4 runs"));
  ASSERT_TRUE(fixtures::eventually([&] { return gated->waiting(); }));
  // While the first is under way, three more come: only the newest is posted after it.
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "running: 1/4 runs"));
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "running: 2/4 runs"));
  poster.post("lib", kSha, status(CommitStatus::State::kSuccess, "4 runs"));
  EXPECT_EQ(poster.pending(), 2u);
  gated->open();
  ASSERT_TRUE(fixtures::eventually([&] { return poster.pending() == 0; }));
  // The same again: nothing to post.
  poster.post("lib", kSha, status(CommitStatus::State::kSuccess, "4 runs"));
  EXPECT_EQ(poster.pending(), 0u);
  const auto posted = fake.statuses();
  ASSERT_EQ(posted.size(), 2u);
  EXPECT_EQ(posted[0]["description"], "running: 0/4 runs");
  EXPECT_EQ(posted[1]["state"], "success");
  EXPECT_EQ(posted[1]["description"], "4 runs");
}

TEST(StatusPoster, TheFirstStatusOfAKeyIsPostedEvenWhenANewerFollowsAtOnce) {
  TempDir dir;
  FakeHost fake(dir.path() + "/host", "secret-token");
  auto gated = std::make_shared<GatedHost>(make_host(options_for(Kind::kGitHub, fake)));
  StatusPoster poster(gated, options_for(Kind::kGitHub, fake));
  gated->close();
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "a", "testlooper/other"));
  ASSERT_TRUE(fixtures::eventually([&] { return gated->waiting(); }));
  // Both wait while "other" is under way: the first (pending) is kept, the newest follows it.
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "running: 0/2 runs"));
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "running: 1/2 runs"));
  poster.post("lib", kSha, status(CommitStatus::State::kSuccess, "2 runs · all passed"));
  gated->open();
  ASSERT_TRUE(fixtures::eventually([&] { return poster.pending() == 0; }));
  std::vector<std::string> descriptions;
  for (const auto& p : fake.statuses()) {
    if (p["context"] == "testlooper/unit") descriptions.push_back(p["description"]);
  }
  EXPECT_EQ(descriptions, (std::vector<std::string>{"running: 0/2 runs", "2 runs · all passed"}));
}

TEST(StatusPoster, AFailedPostIsRetriedWithBackOffThenSucceeds) {
  TempDir dir;
  FakeHost fake(dir.path() + "/host", "secret-token");
  fake.fail("/statuses/", 2, 500);
  StatusPoster poster(make_host(options_for(Kind::kGitHub, fake)), options_for(Kind::kGitHub, fake),
                      nullptr, {0.05, 0.2, 100});
  poster.post("lib", kSha, status(CommitStatus::State::kSuccess, "3 runs"));
  ASSERT_TRUE(fixtures::eventually([&] { return poster.pending() == 0; }));
  EXPECT_EQ(poster.failures(), 2);
  const auto posted = fake.statuses(true);
  ASSERT_EQ(posted.size(), 3u);
  for (const auto& p : posted) EXPECT_EQ(p["description"], "3 runs");
}

TEST(StatusPoster, AFailedFirstStatusIsRetriedBeforeTheNewerOne) {
  TempDir dir;
  FakeHost fake(dir.path() + "/host", "secret-token");
  fake.fail("/statuses/", 1, 502);
  auto gated = std::make_shared<GatedHost>(make_host(options_for(Kind::kGitHub, fake)));
  StatusPoster poster(gated, options_for(Kind::kGitHub, fake), nullptr, {0.05, 0.2, 100});
  gated->close();
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "running: 0/2 runs"));
  ASSERT_TRUE(fixtures::eventually([&] { return gated->waiting(); }));
  poster.post("lib", kSha, status(CommitStatus::State::kSuccess, "2 runs · all passed"));
  gated->open();  // the pending fails (502) while the success waits
  ASSERT_TRUE(fixtures::eventually([&] { return poster.pending() == 0; }));
  std::vector<std::string> descriptions;
  for (const auto& p : fake.statuses()) descriptions.push_back(p["description"]);
  EXPECT_EQ(descriptions, (std::vector<std::string>{"running: 0/2 runs", "2 runs · all passed"}));
  EXPECT_EQ(fake.statuses(true).size(), 3u);
}

TEST(StatusPoster, AFullQueueDropsTheOldestWaiting) {
  TempDir dir;
  FakeHost fake(dir.path() + "/host", "secret-token");
  auto gated = std::make_shared<GatedHost>(make_host(options_for(Kind::kGitHub, fake)));
  StatusPoster poster(gated, options_for(Kind::kGitHub, fake), nullptr, {2, 300, 2});
  gated->close();
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "a", "testlooper/a"));
  ASSERT_TRUE(fixtures::eventually([&] { return gated->waiting(); }));
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "b", "testlooper/b"));
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "c", "testlooper/c"));
  poster.post("lib", kSha, status(CommitStatus::State::kPending, "d", "testlooper/d"));
  gated->open();
  ASSERT_TRUE(fixtures::eventually([&] { return poster.pending() == 0; }));
  std::vector<std::string> contexts;
  for (const auto& p : fake.statuses()) contexts.push_back(p["context"]);
  EXPECT_EQ(contexts, (std::vector<std::string>{"testlooper/a", "testlooper/c", "testlooper/d"}));
}

TEST(StatusPoster, StopsPromptlyWithStatusesWaitingOnBackOff) {
  TempDir dir;
  FakeHost fake(dir.path() + "/host", "secret-token");
  fake.fail("/statuses/", 100, 503);
  auto poster = std::make_unique<StatusPoster>(make_host(options_for(Kind::kGitHub, fake)),
                                               options_for(Kind::kGitHub, fake), nullptr,
                                               StatusPoster::Options{300, 300, 100});
  poster->post("lib", kSha, status(CommitStatus::State::kPending, "a"));
  ASSERT_TRUE(fixtures::eventually([&] { return poster->failures() == 1; }));
  poster.reset();  // waits 300 s unless the destructor wakes the thread
  EXPECT_EQ(fake.statuses(true).size(), 1u);
}

}  // namespace
}  // namespace testlooper::hosting
