// hosting::Host::list_repos against the fake GitHub and GitLab (tests/hosting/fake_host.py):
// every page followed, fields mapped, clone URLs rewritten, a bad token refused.
#include <gtest/gtest.h>

#include "hosting/fake_host.h"
#include "hosting/hosting.h"

namespace testlooper::hosting {
namespace {

using fixtures::FakeHost;
using fixtures::TempDir;

constexpr const char* kToken = "sekrit-token-123";

// Three bare repos (and a name that is no valid repo name) under `owner`.
void make_repos(const FakeHost& fake, const std::string& owner) {
  for (const char* name : {"alpha", "beta", "gamma", ".hidden"}) {
    FakeHost::run("git init -q --bare " + fixtures::shell_quote(fake.bare(owner, name)));
  }
}

HostOptions options(Kind kind, const FakeHost& fake, const std::string& owner,
                    const std::string& token = kToken) {
  HostOptions o;
  o.kind = kind;
  o.token = token;
  o.owner = owner;
  o.web_url = fake.url();
  o.api_url = kind == Kind::kGitHub ? fake.github_api() : fake.gitlab_api();
  o.timeout_seconds = 30;
  return o;
}

std::vector<std::string> names(const std::vector<HostedRepo>& repos) {
  std::vector<std::string> out;
  for (const auto& r : repos) out.push_back(r.name);
  return out;
}

TEST(Listing, GitHubFollowsEveryPage) {
  TempDir dir;
  FakeHost fake(dir.path() + "/root", kToken, 1);
  make_repos(fake, "acme");
  auto host = make_host(options(Kind::kGitHub, fake, "acme"));
  auto repos = host->list_repos();
  ASSERT_TRUE(repos.ok()) << repos.error().to_string();
  EXPECT_EQ(names(*repos), (std::vector<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_EQ((*repos)[0].full_name, "acme/alpha");
  EXPECT_EQ((*repos)[0].clone_url, fake.url() + "/git/acme/alpha.git");
  EXPECT_EQ((*repos)[0].web_url, fake.url() + "/acme/alpha");
  EXPECT_EQ((*repos)[0].default_branch, "main");
  // One page per repo (four, the hidden one included), each with the token as a header.
  EXPECT_EQ(fake.count("/api/v3/orgs/acme/repos"), 4);
  for (const auto& r : fake.requests()) {
    EXPECT_EQ(r["authorization"], std::string("Bearer ") + kToken);
    EXPECT_EQ(r["query"].get<std::string>().find(kToken), std::string::npos);
  }
}

TEST(Listing, GitHubUserWhenNoOrganisation) {
  TempDir dir;
  FakeHost fake(dir.path() + "/root", kToken, 2);
  make_repos(fake, "user-ada");
  auto repos = make_host(options(Kind::kGitHub, fake, "user-ada"))->list_repos();
  ASSERT_TRUE(repos.ok()) << repos.error().to_string();
  EXPECT_EQ(names(*repos), (std::vector<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_EQ(fake.count("/api/v3/users/user-ada/repos"), 2);
}

TEST(Listing, GitLabFollowsEveryPage) {
  TempDir dir;
  FakeHost fake(dir.path() + "/root", kToken, 1);
  make_repos(fake, "team");
  auto repos = make_host(options(Kind::kGitLab, fake, "team"))->list_repos();
  ASSERT_TRUE(repos.ok()) << repos.error().to_string();
  EXPECT_EQ(names(*repos), (std::vector<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_EQ((*repos)[1].full_name, "team/beta");
  EXPECT_EQ((*repos)[1].clone_url, fake.url() + "/git/team/beta.git");
  EXPECT_FALSE((*repos)[1].id.empty());
  EXPECT_EQ(fake.count("/api/v4/groups/team/projects", "include_subgroups=true"), 1);  // the first
  EXPECT_EQ(fake.count("/api/v4/groups/team/projects"), 4);
  for (const auto& r : fake.requests()) EXPECT_EQ(r["private_token"], kToken);
}

TEST(Listing, CloneUrlOption) {
  TempDir dir;
  FakeHost fake(dir.path() + "/root", kToken, 0);
  make_repos(fake, "acme");
  auto o = options(Kind::kGitHub, fake, "acme");
  o.clone_url = "https://mirror.example/";
  auto repos = make_host(o)->list_repos();
  ASSERT_TRUE(repos.ok()) << repos.error().to_string();
  EXPECT_EQ((*repos)[0].clone_url, "https://mirror.example/acme/alpha.git");
  o.clone_url = "git@ssh.example";
  repos = make_host(o)->list_repos();
  ASSERT_TRUE(repos.ok()) << repos.error().to_string();
  EXPECT_EQ((*repos)[2].clone_url, "git@ssh.example:acme/gamma.git");
}

TEST(Listing, BadTokenIsAnError) {
  TempDir dir;
  FakeHost fake(dir.path() + "/root", kToken, 0);
  make_repos(fake, "acme");
  for (Kind kind : {Kind::kGitHub, Kind::kGitLab}) {
    auto repos = make_host(options(kind, fake, "acme", "wrong"))->list_repos();
    ASSERT_FALSE(repos.ok());
    EXPECT_NE(repos.error().to_string().find("401"), std::string::npos)
        << repos.error().to_string();
    EXPECT_EQ(repos.error().to_string().find("wrong"), std::string::npos);
  }
}

}  // namespace
}  // namespace testlooper::hosting
