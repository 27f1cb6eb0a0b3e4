// Issue 17, tl.py's way of working: `testlooper checkout --repos-root DIR` makes a workspace of
// the repos a repo's definitions reference, `status` shows it, `fetch` updates it, and `run` in
// it uses the referenced repos as they are checked out, uncommitted changes included. Real git
// repos in a temp dir (an "upstream" folder the workspace clones from), the real binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "git/git_fixture.h"

namespace testlooper::cli {
namespace {

using fixtures::GitFixtureRepo;
using fixtures::shell_quote;
using fixtures::TempDir;

struct Output {
  int status = -1;
  std::string text;  // stdout and stderr
};

Output sh(const std::string& command) {
  Output out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.text.append(buf.data(), n);
  const int status = pclose(p);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

Output testlooper(const std::string& args) { return sh(std::string(TL_BINARY) + " " + args); }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string lib_definitions(const std::string& extra) {
  return "looper_version: 5\n"
         "environments: {linux: {platform: linux, image: {host: true}}}\n"
         "builds:\n"
         "  libbuild/linux:\n"
         "    command: 'cp src/value.txt $TEST_BUILD_OUTPUT_DIR/value.txt" +
         extra +
         "'\n"
         "    dependencies: {src: HEAD}\n";
}

class Workspace : public ::testing::Test {
 protected:
  Workspace() : lib_(dir_.path() + "/upstream/lib"), app_(dir_.path() + "/upstream/app") {
    lib_.write("testlooper.yml", lib_definitions(""));
    lib_.write("value.txt", "lib-1\n");
    pinned_ = lib_.commit("lib 1");
    lib_.write("value.txt", "lib-newer\n");
    newer_ = lib_.commit("lib after the pin");  // the clone's default branch is past the pin
    app_.write("testlooper.yml",
               "looper_version: 5\n"
               "repos: {lib: lib/" +
                   pinned_ +
                   "}\n"
                   "environments: {linux: {platform: linux, image: {host: true}}}\n"
                   "tests:\n"
                   "  both/linux:\n"
                   "    command: 'cat libb/value.txt src/app.txt > " +
                   seen() +
                   "'\n"
                   "    dependencies: {libb: lib/libbuild/linux, src: HEAD}\n");
    app_.write("app.txt", "app-1\n");
    app_.commit("app 1");
    app_.run({"clone", "-q", app_.path(), ws("app")});
  }

  std::string ws(const std::string& name = "") const {
    return dir_.path() + "/ws" + (name.empty() ? "" : "/" + name);
  }
  std::string seen() const { return dir_.path() + "/seen.txt"; }
  Output run() const {
    return testlooper("run --repo " + shell_quote(ws("app")) + " --store " +
                      shell_quote(dir_.path() + "/store") + " --on-host");
  }

  TempDir dir_;
  GitFixtureRepo lib_;
  GitFixtureRepo app_;
  std::string pinned_, newer_;
};

TEST_F(Workspace, TwoRepoWorkspaceEditedInBothReposIsRunAsCheckedOut) {
  // checkout: lib cloned beside app (from beside app's origin), at app's pin, and the marker.
  const Output checkout = testlooper("checkout --repo " + shell_quote(ws("app")) +
                                     " --repos-root " + shell_quote(ws()));
  ASSERT_EQ(checkout.status, 0) << checkout.text;
  ASSERT_TRUE(std::filesystem::exists(ws(".testlooper-workspace"))) << checkout.text;
  GitFixtureRepo lib(ws("lib"));  // (git init on a clone changes nothing)
  EXPECT_EQ(lib.head(), pinned_);
  EXPECT_EQ(read_text(ws("lib/value.txt")), "lib-1\n");

  Output status = testlooper("status --repo " + shell_quote(ws("app")));
  ASSERT_EQ(status.status, 0) << status.text;
  EXPECT_NE(status.text.find("lib                  " + pinned_.substr(0, 12) + "  " +
                             pinned_.substr(0, 12) + "  clean"),
            std::string::npos)
      << status.text;

  Output ran = run();
  ASSERT_EQ(ran.status, 0) << ran.text;
  EXPECT_EQ(read_text(seen()), "lib-1\napp-1\n") << ran.text;
  EXPECT_NE(ran.text.find("workspace: lib at " + pinned_.substr(0, 12)), std::string::npos)
      << ran.text;

  // Edit both repos: app by a commit, lib in its working tree (a changed file and changed
  // definitions), uncommitted.
  GitFixtureRepo app(ws("app"));
  app.write("app.txt", "app-2\n");
  app.commit("app 2");
  write_text(ws("lib/value.txt"), "lib-2\n");
  write_text(ws("lib/testlooper.yml"), lib_definitions(" && echo from-the-working-tree >> "
                                                       "$TEST_BUILD_OUTPUT_DIR/value.txt"));
  status = testlooper("status --repo " + shell_quote(ws("app")));
  EXPECT_NE(status.text.find("lib                  " + pinned_.substr(0, 12) + "  " +
                             pinned_.substr(0, 12) + "  dirty"),
            std::string::npos)
      << status.text;

  ran = run();
  ASSERT_EQ(ran.status, 0) << ran.text;
  EXPECT_EQ(read_text(seen()), "lib-2\nfrom-the-working-tree\napp-2\n") << ran.text;
  EXPECT_NE(
      ran.text.find("workspace: lib at " + pinned_.substr(0, 12) + " with uncommitted changes"),
      std::string::npos)
      << ran.text;
  // The user's index and files are as they were: nothing was staged or committed on a branch.
  EXPECT_EQ(lib.run({"status", "--porcelain"}), " M testlooper.yml\n M value.txt\n");
  EXPECT_EQ(lib.head(), pinned_);

  // Undo lib's edits: the pinned build is reused from the store, not the working tree's.
  lib.run({"checkout", "--", "."});
  ran = run();
  ASSERT_EQ(ran.status, 0) << ran.text;
  EXPECT_EQ(read_text(seen()), "lib-1\napp-2\n") << ran.text;

  // fetch: the clones learn upstream's new commits.
  lib_.write("value.txt", "lib-3\n");
  const std::string third = lib_.commit("lib 3");
  EXPECT_NE(sh("git -C " + shell_quote(ws("lib")) + " cat-file -e " + third).status, 0);
  const Output fetched = testlooper("fetch --repo " + shell_quote(ws("app")));
  ASSERT_EQ(fetched.status, 0) << fetched.text;
  EXPECT_EQ(sh("git -C " + shell_quote(ws("lib")) + " cat-file -e " + third).status, 0)
      << fetched.text;
}

TEST_F(Workspace, CheckoutLeavesADirtyCloneAloneAndStatusNeedsAWorkspace) {
  const Output none = testlooper("status --repo " + shell_quote(ws("app")));
  EXPECT_EQ(none.status, 2) << none.text;
  EXPECT_NE(none.text.find("no workspace here"), std::string::npos) << none.text;

  ASSERT_EQ(testlooper("checkout --repo " + shell_quote(ws("app"))).status, 0);
  // The user moves lib and edits it; a checkout does not throw the edit away.
  GitFixtureRepo lib(ws("lib"));
  lib.run({"checkout", "-q", newer_});
  write_text(ws("lib/value.txt"), "mine\n");
  const Output again = testlooper("checkout --repo " + shell_quote(ws("app")));
  EXPECT_EQ(again.status, 1) << again.text;
  EXPECT_NE(again.text.find("has uncommitted changes"), std::string::npos) << again.text;
  EXPECT_EQ(read_text(ws("lib/value.txt")), "mine\n");
  EXPECT_EQ(lib.head(), newer_);
  const Output status = testlooper("status --repo " + shell_quote(ws("app")));
  EXPECT_NE(status.text.find("dirty, not at the pin"), std::string::npos) << status.text;
}

}  // namespace
}  // namespace testlooper::cli
