// hosting::Mirrors against the fake GitHub (tests/hosting/fake_host.py): clones into place,
// retries a failing host with back-off (one attempt per back-off step, never a tight loop),
// fetches one repo on request, lists again for a name it does not know, removes the mirror of a
// repo gone from the listing, and stops at once even while a fetch hangs.
#include "hosting/mirrors.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>

#include "hosting/fake_host.h"

namespace testlooper::hosting {
namespace {

using fixtures::FakeHost;
using fixtures::HostedWork;
using fixtures::TempDir;

constexpr const char* kToken = "mirror-token";

template <class F>
bool eventually(F done, double seconds = 60) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

class MirrorsTest : public ::testing::Test {
 protected:
  MirrorsTest() : fake_(dir_.path() + "/host", kToken, 0) {
    options_.kind = Kind::kGitHub;
    options_.token = kToken;
    options_.owner = "acme";
    options_.api_url = fake_.github_api();
    host_ = make_host(options_);
    std::filesystem::create_directories(repos_dir());
  }
  std::string repos_dir() const { return dir_.path() + "/data/repos"; }
  HostedWork& add(const std::string& name) {
    works_.push_back(
        std::make_unique<HostedWork>(dir_.path() + "/work/" + name, fake_.bare("acme", name)));
    works_.back()->repo().commit("first");
    works_.back()->push("main");
    return *works_.back();
  }
  // The next `count` requests whose path contains `path_contains` get HTTP `status` (-1: no
  // answer at all).
  void fail(const std::string& path_contains, int count, int status = 500) {
    FakeHost::run("curl -s -X POST --data-binary " +
                  fixtures::shell_quote(nlohmann::json{
                      {"path_contains", path_contains},
                      {"count", count},
                      {"status", status}}.dump()) +
                  " " + fixtures::shell_quote(fake_.url() + "/_fake/fail"));
  }
  std::string head(const std::string& name) {
    return FakeHost::run("git -C " + fixtures::shell_quote(repos_dir() + "/" + name) +
                         " rev-parse -q --verify refs/heads/main 2>/dev/null | tr -d '\\n'");
  }
  std::unique_ptr<Mirrors> start(double fetch_timeout = 120) {
    MirrorOptions o;
    o.poll_seconds = 3600;
    o.first_retry = 0.2;
    o.fetch_timeout = fetch_timeout;
    return std::make_unique<Mirrors>(*host_, repos_dir(), o, [this](const std::string& name) {
      std::lock_guard<std::mutex> lock(mutex_);
      changed_.push_back(name);
    });
  }
  int changes(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(std::count(changed_.begin(), changed_.end(), name));
  }

  TempDir dir_;
  FakeHost fake_;
  HostOptions options_;
  std::unique_ptr<Host> host_;
  std::vector<std::unique_ptr<HostedWork>> works_;
  std::mutex mutex_;
  std::vector<std::string> changed_;
};

TEST_F(MirrorsTest, FailuresAreRetriedWithBackOff) {
  HostedWork& alpha = add("alpha");
  fail("/api/v3/orgs/acme/repos", 2);        // the listing fails twice
  fail("/git/acme/alpha.git/info/refs", 3);  // then the clone's fetch thrice
  auto mirrors = start();
  ASSERT_TRUE(eventually([&] { return head("alpha") == alpha.repo().head(); }));
  EXPECT_EQ(fake_.count("/api/v3/orgs/acme/repos"), 3);  // two failures, one success
  // Three failed attempts and the one that worked: one request each, no tight loop.
  EXPECT_EQ(fake_.count("/git/acme/alpha.git/info/refs"), 4);
  // Each retry waited at least its back-off (0.2 s doubling): a lower bound, whatever the load.
  const auto listings = fake_.times("/api/v3/orgs/acme/repos");
  const auto fetches = fake_.times("/git/acme/alpha.git/info/refs");
  ASSERT_EQ(listings.size(), 3u);
  ASSERT_EQ(fetches.size(), 4u);
  for (size_t i = 1; i < listings.size(); ++i)
    EXPECT_GE(listings[i] - listings[i - 1], 0.2 * (1 << (i - 1)) - 0.01);
  for (size_t i = 1; i < fetches.size(); ++i)
    EXPECT_GE(fetches[i] - fetches[i - 1], 0.2 * (1 << (i - 1)) - 0.01);
  EXPECT_EQ(changes("alpha"), 1);
  ASSERT_TRUE(mirrors->repo("alpha").has_value());
  EXPECT_EQ(mirrors->repo("alpha")->full_name, "acme/alpha");
  EXPECT_FALSE(std::filesystem::exists(repos_dir() + ".tmp/alpha"));
}

TEST_F(MirrorsTest, FetchOneNewOnesAndGoneOnes) {
  HostedWork& alpha = add("alpha");
  add("beta");
  auto mirrors = start();
  ASSERT_TRUE(eventually([&] { return changes("alpha") == 1 && changes("beta") == 1; }));
  const int listings = fake_.count("/api/v3/orgs/acme/repos");
  const int beta_fetches = fake_.count("/git/acme/beta.git/info/refs");
  // fetch(name): that repo alone, with no listing.
  const std::string second = alpha.repo().commit("second");
  alpha.push("main");
  mirrors->fetch("alpha");
  ASSERT_TRUE(eventually([&] { return head("alpha") == second; }));
  EXPECT_EQ(fake_.count("/api/v3/orgs/acme/repos"), listings);
  EXPECT_EQ(fake_.count("/git/acme/beta.git/info/refs"), beta_fetches);
  // A name the listing did not have: listed again, then cloned.
  HostedWork& gamma = add("gamma");
  mirrors->fetch("gamma");
  ASSERT_TRUE(eventually([&] { return head("gamma") == gamma.repo().head(); }));
  EXPECT_EQ(mirrors->repos().size(), 3u);
  // Gone from the listing: the mirror is removed at the next refresh.
  std::filesystem::remove_all(fake_.bare("acme", "beta"));
  mirrors->refresh();
  ASSERT_TRUE(eventually([&] { return !std::filesystem::exists(repos_dir() + "/beta"); }));
  EXPECT_FALSE(mirrors->repo("beta").has_value());
  EXPECT_TRUE(eventually([&] { return changes("beta") == 2; }));
  mirrors->fetch("../etc");  // not a repo name: nothing
  mirrors.reset();
  EXPECT_TRUE(std::filesystem::exists(repos_dir() + "/alpha/HEAD"));
}

// A fetch that hangs (fetch_timeout an hour) does not hold up stopping: git is killed.
TEST_F(MirrorsTest, StopsWhileAFetchHangs) {
  add("alpha");
  fail("/git/acme/alpha.git/info/refs", 1, -1);
  auto mirrors = start(3600);
  ASSERT_TRUE(eventually([&] { return fake_.count("/git/acme/alpha.git/info/refs") == 1; }));
  mirrors.reset();  // returns: the test would time out otherwise
  EXPECT_FALSE(std::filesystem::exists(repos_dir() + "/alpha"));
}

}  // namespace
}  // namespace testlooper::hosting
