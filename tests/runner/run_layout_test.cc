#include "runner/run_layout.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "artifacts/temp_dir.h"

namespace testlooper::runner {
namespace {

using definitions::ObjectKind;
using definitions::ResolvedObject;

TEST(SubstituteRuntime, ReplacesKnownBracedNamesOnly) {
  const std::map<std::string, std::string> vars = {{"TEST_OUTPUT_DIR", "/o"}, {"X", "${Y}"}};
  EXPECT_EQ(substitute_runtime("cp a ${TEST_OUTPUT_DIR}/b $TEST_OUTPUT_DIR ${OTHER} ${X}", vars),
            "cp a /o/b $TEST_OUTPUT_DIR ${OTHER} ${Y}");
  EXPECT_EQ(substitute_runtime("unclosed ${TEST_OUTPUT_DIR", vars), "unclosed ${TEST_OUTPUT_DIR");
  EXPECT_EQ(substitute_runtime("", vars), "");
}

TEST(RunLayout, ClaimsEmptyDirectoriesAndEmptiesThemAfterwards) {
  testing::TempDir dir;
  WorkDirPool pool(dir / "work");
  std::filesystem::path root;
  {
    Result<RunLayout> layout = RunLayout::create(pool, dir / "ccache");
    ASSERT_TRUE(layout.ok());
    root = layout->root;
    EXPECT_TRUE(std::filesystem::is_empty(layout->inputs));
    EXPECT_TRUE(std::filesystem::is_empty(layout->scratch));
    EXPECT_TRUE(std::filesystem::is_empty(layout->control));
    testing::write_file(layout->output / "deep/file", "x");
  }
  EXPECT_TRUE(std::filesystem::is_empty(root / "output"));
  EXPECT_TRUE(std::filesystem::exists(dir / "ccache"));
  Result<RunLayout> again = RunLayout::create(pool, dir / "ccache");
  EXPECT_EQ(again->root, root);
}

// A released slot is handed to the next claim as it is: release() must leave it as a fresh one,
// whatever the run did to it (files beside the standard directories, one of them removed).
TEST(WorkDirPool, ReleaseLeavesTheSlotReadyForTheNextClaim) {
  testing::TempDir dir;
  WorkDirPool pool(dir / "work");
  Result<std::filesystem::path> slot = pool.claim();
  ASSERT_TRUE(slot.ok());
  testing::write_file(*slot / "stray/file", "x");
  testing::write_file(*slot / "inputs/src/file", "x");
  testing::write_file(*slot / "control/test_list.txt", "x");
  std::filesystem::remove_all(*slot / "scratch");
  pool.release(*slot);
  Result<std::filesystem::path> again = pool.claim();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *slot);
  std::vector<std::string> entries;
  for (const auto& entry : std::filesystem::directory_iterator(*again)) {
    entries.push_back(entry.path().filename().string());
    EXPECT_TRUE(entry.is_directory());
    EXPECT_TRUE(std::filesystem::is_empty(entry.path())) << entry.path();
  }
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"control", "inputs", "output", "scratch"}));
}

// A standard directory a command replaced by a link is removed as a link (what it points to is
// left alone), and a directory with more entries than one read of the directory returns is
// emptied whole.
TEST(WorkDirPool, ReleaseRemovesLinksAsLinksAndEmptiesLargeDirectories) {
  testing::TempDir dir;
  WorkDirPool pool(dir / "work");
  Result<std::filesystem::path> slot = pool.claim();
  ASSERT_TRUE(slot.ok());
  testing::write_file(dir / "elsewhere/kept", "x");
  std::filesystem::remove_all(*slot / "output");
  std::filesystem::create_directory_symlink(dir / "elsewhere", *slot / "output");
  std::filesystem::create_directory_symlink(dir / "elsewhere", *slot / "scratch/link");
  for (int i = 0; i < 1000; ++i) {
    testing::write_file(*slot / "inputs" / ("a-long-enough-file-name-" + std::to_string(i)), "x");
  }
  pool.release(*slot);
  EXPECT_TRUE(std::filesystem::exists(dir / "elsewhere/kept"));
  for (const char* name : {"inputs", "output", "scratch", "control"}) {
    EXPECT_FALSE(std::filesystem::is_symlink(*slot / name)) << name;
    EXPECT_TRUE(std::filesystem::is_directory(*slot / name)) << name;
    EXPECT_TRUE(std::filesystem::is_empty(*slot / name)) << name;
  }
}

TEST(WorkDirPool, GivesEachClaimItsOwnSlotAcrossPools) {
  testing::TempDir dir;
  WorkDirPool first(dir / "work");
  WorkDirPool second(dir / "work");  // as another process would
  Result<std::filesystem::path> a = first.claim();
  Result<std::filesystem::path> b = first.claim();
  Result<std::filesystem::path> c = second.claim();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(*a, *b);
  EXPECT_NE(*c, *a);
  EXPECT_NE(*c, *b);
}

TEST(WorkDirPool, EmptiesLeftoversOfACrashedOwner) {
  testing::TempDir dir;
  testing::write_file(dir / "work/0/output/stale", "old");
  testing::write_file(dir / "work/0/junk/x", "old");
  WorkDirPool pool(dir / "work");
  Result<std::filesystem::path> slot = pool.claim();
  ASSERT_TRUE(slot.ok());
  EXPECT_EQ(*slot, dir / "work/0");
  EXPECT_TRUE(std::filesystem::is_empty(*slot / "output"));
  EXPECT_FALSE(std::filesystem::exists(*slot / "junk"));
}

// The slots a pool was asked to reclaim, in order.
struct Reclaimed {
  std::vector<std::filesystem::path> slots;
  WorkDirPool::Reclaim reclaim() {
    return [this](const std::vector<std::filesystem::path>& s) {
      slots.insert(slots.end(), s.begin(), s.end());
    };
  }
};

// A process's pool that used one slot and ended normally.
void use_one_slot_and_end(const std::filesystem::path& work) {
  WorkDirPool pool(work);
  Result<std::filesystem::path> slot = pool.claim();
  ASSERT_TRUE(slot.ok());
  pool.release(*slot);
}

TEST(WorkDirPool, ASlotReleasedByAPoolThatEndedIsNotReclaimedAgain) {
  testing::TempDir dir;
  use_one_slot_and_end(dir / "work");
  Reclaimed reclaimed;
  WorkDirPool next(dir / "work", reclaimed.reclaim());
  Result<std::filesystem::path> slot = next.claim();
  ASSERT_TRUE(slot.ok());
  EXPECT_EQ(*slot, dir / "work/0");
  EXPECT_TRUE(reclaimed.slots.empty());
}

TEST(WorkDirPool, ASlotInUseWhenItsOwnerEndedIsReclaimed) {
  testing::TempDir dir;
  {
    WorkDirPool pool(dir / "work");
    Result<std::filesystem::path> released = pool.claim();
    Result<std::filesystem::path> held = pool.claim();  // its run never released it (a crash)
    ASSERT_TRUE(released.ok() && held.ok());
    pool.release(*released);
  }
  Reclaimed at_start;
  WorkDirPool next(dir / "work", at_start.reclaim());
  EXPECT_EQ(at_start.slots, std::vector<std::filesystem::path>{dir / "work/1"});
}

TEST(WorkDirPool, ACleanSlotTakenByAPoolThatDiesIsReclaimedByTheNext) {
  testing::TempDir dir;
  use_one_slot_and_end(dir / "work");
  {
    WorkDirPool dying(dir / "work");
    ASSERT_TRUE(dying.claim().ok());  // never released: its process "died" with it
  }
  Reclaimed reclaimed;
  WorkDirPool next(dir / "work", reclaimed.reclaim());
  EXPECT_EQ(reclaimed.slots, std::vector<std::filesystem::path>{dir / "work/0"});
}

TEST(RunVariables, RuntimeWinsOverObjectWhichWinsOverEnvironment) {
  testing::TempDir dir;
  WorkDirPool pool(dir / "work");
  Result<RunLayout> layout = RunLayout::create(pool, dir / "ccache");
  ResolvedObject object;
  object.kind = ObjectKind::kTest;
  object.environment.variables = {{"A", "env"}, {"B", "env"}};
  object.variables = {{"B", "object"}, {"OUT", "${TEST_OUTPUT_DIR}/x"}, {"HOSTNAME", "mine"}};
  RunRequest request{&object, "r1", 3, 5, nullptr, {}};
  const std::map<std::string, std::string> vars = run_variables(request, *layout);
  EXPECT_EQ(vars.at("A"), "env");
  EXPECT_EQ(vars.at("B"), "object");
  EXPECT_EQ(vars.at("OUT"), layout->output.string() + "/x");
  EXPECT_EQ(vars.at("HOSTNAME"), "testlooperworker");
  EXPECT_EQ(vars.at("TEST_CORES_AVAILABLE"), "3");
  EXPECT_EQ(vars.at("TEST_RAM_GB_AVAILABLE"), "5");
  EXPECT_EQ(vars.at("TEST_LOOPER_TEST_ID"), "r1");
  EXPECT_EQ(vars.at("PYTHONUNBUFFERED"), "TRUE");
  EXPECT_EQ(vars.at("TEST_INPUTS"), layout->inputs.string());
  EXPECT_EQ(vars.at("TEST_SCRATCH_DIR"), layout->scratch.string());
  EXPECT_EQ(vars.at("TEST_CCACHE_DIR"), (dir / "ccache").string());
  EXPECT_FALSE(vars.count("TEST_BUILD_OUTPUT_DIR"));
  object.kind = ObjectKind::kBuild;
  EXPECT_EQ(run_variables(request, *layout).at("TEST_BUILD_OUTPUT_DIR"), layout->output.string());
}

}  // namespace
}  // namespace testlooper::runner
