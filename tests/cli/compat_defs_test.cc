// Issue 17, definitions, through `testlooper run` over a real git repo: a test with neither
// command nor stages (the original accepted it) runs nothing and succeeds. Its environment here
// is an AMI, which cannot run locally: the test needs none.
#include <gtest/gtest.h>

#include "cli/run_fixture.h"

namespace testlooper::cli {
namespace {

using nlohmann::json;
using testing::object_named;

using CompatDefinitionsRun = testing::RunFixture;

TEST_F(CompatDefinitionsRun, ATestWithoutCommandOrStagesRunsNothingAndSucceeds) {
  commit(
      "looper_version: 5\n"
      "environments: {cloud: {platform: linux, image: {base_ami: ami-123}}}\n"
      "tests:\n"
      "  nothing/cloud: {}\n"
      "  with_sources/cloud: {dependencies: {src: HEAD}}\n");
  const json report = run_json("--runs 2", 0);
  for (const char* name : {"nothing/cloud", "with_sources/cloud"}) {
    const json& o = object_named(report, name);
    EXPECT_EQ(o["runs"], 2) << o.dump();
    EXPECT_EQ(o["failures"], 0);
    EXPECT_EQ(o["infra_errors"], 0);
    EXPECT_EQ(o["runs_detail"][0]["outcome"], "success");
    EXPECT_NE(testing::read_text(o["runs_detail"][0]["log"]).find("nothing to run"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace testlooper::cli
