#include "dispatch/dispatch.h"

#include <gtest/gtest.h>

namespace testlooper::dispatch {
namespace {

planner::Job job(const std::string& name, int runs, int min_cores, int max_cores, int ram = 0) {
  planner::Job j;
  j.hash = name;
  j.name = name;
  j.runs = runs;
  j.min_cores = min_cores;
  j.max_cores = max_cores;
  j.min_ram_gb = ram;
  return j;
}

TEST(Dispatch, PacksABuildAndTwoTestsOnFourCoresWithoutOvercommitting) {
  const auto result = assign({job("build", 1, 2, 2), job("test", 5, 1, 1)}, {{"w", 4, 8, 4, 8}});
  ASSERT_EQ(result.assignments.size(), 3u);
  int cores = 0;
  for (const auto& a : result.assignments) cores += a.cores;
  EXPECT_EQ(cores, 4);
  EXPECT_EQ(result.assignments[0].job.name, "build");
}

TEST(Dispatch, RespectsRamAndReportsWhatNoWorkerCanRun) {
  const auto result = assign({job("huge", 1, 64, 64), job("ram", 3, 1, 1, 3)}, {{"w", 4, 8, 4, 8}});
  ASSERT_EQ(result.unrunnable.size(), 1u);
  EXPECT_EQ(result.unrunnable[0].job.name, "huge");
  EXPECT_EQ(result.assignments.size(), 2u);  // 2 x 3 GB fit in 8 GB
}

TEST(Dispatch, GivesJobsOnlyToWorkersThatCanRunThem) {
  planner::Job docker = job("docker", 2, 1, 1);
  docker.docker = true;
  planner::Job ami = job("ami", 1, 1, 1);
  ami.ami = true;
  planner::Job windows = job("windows", 1, 1, 1);
  windows.platform = "windows";
  WorkerCapacity plain{"plain", 4, 8, 4, 8};
  WorkerCapacity engine{"engine", 1, 8, 4, 8};
  engine.docker = true;
  const auto result = assign({docker, ami, windows, job("t", 1, 1, 1)}, {plain, engine});
  ASSERT_EQ(result.unrunnable.size(), 2u);
  EXPECT_EQ(result.unrunnable[0].job.name, "ami");
  EXPECT_NE(result.unrunnable[0].reason.find("AMI"), std::string::npos);
  EXPECT_EQ(result.unrunnable[1].job.name, "windows");
  EXPECT_NE(result.unrunnable[1].reason.find("windows"), std::string::npos);
  ASSERT_EQ(result.assignments.size(), 2u);  // one docker run (engine has 1 free core), then t
  EXPECT_EQ(result.assignments[0].worker, "engine");
  EXPECT_EQ(result.assignments[1].job.name, "t");
  EXPECT_EQ(result.assignments[1].worker, "plain");
  EXPECT_NE(cannot_run(docker, plain).find("docker"), std::string::npos);
}

TEST(Dispatch, GivesUpToMaxCores) {
  const auto result = assign({job("wide", 1, 1, 8)}, {{"w", 4, 8, 4, 8}});
  ASSERT_EQ(result.assignments.size(), 1u);
  EXPECT_EQ(result.assignments[0].cores, 4);
}

TEST(Dispatch, AnAmiJobGoesOnlyToAMachineBootedFromItsImage) {
  planner::Job ami = job("ami", 1, 1, 1);
  ami.ami = true;
  ami.image = "ami-1";
  WorkerCapacity other{"other", 2, 2, 2, 2};
  other.ami = true, other.image = "ami-2";
  WorkerCapacity mine{"mine", 2, 2, 2, 2};
  mine.ami = true, mine.image = "ami-1";
  EXPECT_EQ(cannot_run(ami, other), "needs a machine booted from ami-1; no connected worker is");
  const auto result = assign({ami}, {other, mine});
  ASSERT_EQ(result.assignments.size(), 1u);
  EXPECT_EQ(result.assignments[0].worker, "mine");
}

}  // namespace
}  // namespace testlooper::dispatch
