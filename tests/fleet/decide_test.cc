// decide(): what the fleet boots and terminates, from demand and machines (pure).
#include <gtest/gtest.h>

#include "fleet/fleet.h"

namespace testlooper::fleet {
namespace {

FleetOptions options() {
  FleetOptions o;
  o.enabled = true;
  o.worker_name = "tl";
  o.linux_ami = "ami-linux";
  o.instance_types = {{"c.xlarge32", 32, 64},
                      {"c.large", 2, 4},
                      {"c.xlarge", 4, 8},
                      {"c.xlarge-mem", 4, 32},
                      {"c.2xlarge", 8, 16}};
  o.idle_shutdown_seconds = 60;
  o.boot_timeout_seconds = 300;
  return o;
}

Demand linux_runs(int runs, int cores, int ram_gb = 0) {
  Demand d;
  d.runs = runs, d.cores = cores, d.ram_gb = ram_gb;
  return d;
}

int cores_booted(const FleetDecision& d) {
  int n = 0;
  for (const auto& b : d.boots) n += b.type.cores;
  return n;
}

TEST(Decide, CheapestFittingTypeFewestCoresThenLeastRam) {
  auto o = options();
  EXPECT_EQ(cheapest_fitting(o.instance_types, 3, 0)->name, "c.xlarge");
  EXPECT_EQ(cheapest_fitting(o.instance_types, 4, 16)->name, "c.xlarge-mem");
  EXPECT_EQ(cheapest_fitting(o.instance_types, 32, 0)->name, "c.xlarge32");
  EXPECT_EQ(cheapest_fitting(o.instance_types, 33, 0), nullptr);
}

TEST(Decide, A32CoreBuildBootsThe32CoreType) {
  auto d = decide(options(), {linux_runs(1, 32)}, {}, 1000);
  ASSERT_EQ(d.boots.size(), 1u);
  EXPECT_EQ(d.boots[0].type.name, "c.xlarge32");
  EXPECT_EQ(d.boots[0].ami, "ami-linux");
  EXPECT_EQ(d.boots[0].runs, 1);
}

TEST(Decide, RunsArePackedOntoTheCheapestType) {
  auto d = decide(options(), {linux_runs(5, 1)}, {}, 1000);
  ASSERT_EQ(d.boots.size(), 3u);  // c.large holds 2 runs of 1 core: 2 + 2 + 1
  for (const auto& b : d.boots) EXPECT_EQ(b.type.name, "c.large");
  EXPECT_EQ(d.boots[0].runs + d.boots[1].runs + d.boots[2].runs, 5);
}

TEST(Decide, MaxCoresLimitsWhatIsBooted) {
  auto o = options();
  o.max_cores = 16;
  auto d = decide(o, {linux_runs(30, 4)}, {}, 1000);
  EXPECT_EQ(d.boots.size(), 4u);
  EXPECT_EQ(cores_booted(d), 16);
  EXPECT_EQ(d.waiting_reasons[0], "max_cores (16) reached");
  // With 8 cores of machines already up, only 8 more.
  Machine busy{.id = "m1",
               .type = "c.2xlarge",
               .cores = 8,
               .ram_gb = 16,
               .ami = "ami-linux",
               .state = MachineState::kBusy};
  d = decide(o, {linux_runs(30, 4)}, {busy}, 1000);
  EXPECT_EQ(cores_booted(d), 8);
}

TEST(Decide, MaxWorkersAndRamLimit) {
  auto o = options();
  o.max_workers = 1;
  EXPECT_EQ(decide(o, {linux_runs(30, 4)}, {}, 0).boots.size(), 1u);
  o.max_workers = -1;
  o.max_ram_gb = 15;
  auto d = decide(o, {linux_runs(30, 4)}, {}, 0);
  EXPECT_EQ(d.boots.size(), 1u);  // 8 GB each
  EXPECT_EQ(d.waiting_reasons[0], "max_ram_gb (15) reached");
}

TEST(Decide, NeverBootsForRunsABootingOrIdleMachineWillTake) {
  Machine booting{.id = "m1",
                  .type = "c.xlarge",
                  .cores = 4,
                  .ram_gb = 8,
                  .ami = "ami-linux",
                  .state = MachineState::kBooting,
                  .booted_at = 990};
  auto d = decide(options(), {linux_runs(2, 2)}, {booting}, 1000);
  EXPECT_TRUE(d.boots.empty());
  EXPECT_EQ(d.waiting_reasons[0], "");
  d = decide(options(), {linux_runs(3, 2)}, {booting}, 1000);
  ASSERT_EQ(d.boots.size(), 1u);  // one run more than the booting machine holds
  Machine idle{.id = "m2",
               .type = "c.xlarge",
               .cores = 4,
               .ram_gb = 8,
               .ami = "ami-linux",
               .state = MachineState::kIdle,
               .idle_since = 990,
               .free_cores = 4,
               .free_ram_gb = 8};
  EXPECT_TRUE(decide(options(), {linux_runs(2, 2)}, {idle}, 1000).boots.empty());
  // A machine of another image does not count.
  idle.ami = "ami-other";
  EXPECT_EQ(decide(options(), {linux_runs(2, 2)}, {idle}, 1000).boots.size(), 2u);  // 2 x c.large
}

TEST(Decide, TerminatesIdleOneJobAndTimedOutMachines) {
  auto o = options();
  std::vector<Machine> m = {
      {.id = "idle-long",
       .cores = 4,
       .ami = "ami-linux",
       .state = MachineState::kIdle,
       .idle_since = 900},
      {.id = "idle-short",
       .cores = 4,
       .ami = "ami-linux",
       .state = MachineState::kIdle,
       .idle_since = 990},
      {.id = "one-job-done",
       .cores = 4,
       .ami = "ami-x",
       .one_job = true,
       .state = MachineState::kIdle,
       .idle_since = 999,
       .jobs_started = 1},
      {.id = "one-job-new",
       .cores = 4,
       .ami = "ami-x",
       .one_job = true,
       .state = MachineState::kIdle,
       .idle_since = 999},
      {.id = "boot-late", .cores = 4, .state = MachineState::kBooting, .booted_at = 600},
      {.id = "boot-ok", .cores = 4, .state = MachineState::kBooting, .booted_at = 800},
      {.id = "busy", .cores = 4, .state = MachineState::kBusy, .idle_since = 0},
      {.id = "going", .cores = 4, .state = MachineState::kTerminating},
  };
  auto d = decide(o, {}, m, 1000);
  EXPECT_EQ(d.terminate, (std::vector<std::string>{"idle-long", "one-job-done", "boot-late"}));
  EXPECT_NE(d.reasons["idle-long"].find("idle_shutdown_seconds"), std::string::npos);
  EXPECT_NE(d.reasons["boot-late"].find("boot_timeout_seconds"), std::string::npos);
  // What is terminated does not count against the limits.
  o.max_workers = 5;
  d = decide(o, {linux_runs(10, 4)}, m, 1000);
  EXPECT_EQ(d.boots.size(), 1u);  // 4 staying (idle-short, one-job-new, boot-ok, busy) + 1
}

TEST(Decide, PlatformsAndAmis) {
  auto o = options();
  Demand win = linux_runs(1, 2);
  win.platform = "windows";
  auto d = decide(o, {win}, {}, 0);
  EXPECT_TRUE(d.boots.empty());
  EXPECT_EQ(d.waiting_reasons[0], "no windows_ami is configured in machine_management");
  o.windows_ami = "ami-win";
  d = decide(o, {win}, {}, 0);
  ASSERT_EQ(d.boots.size(), 1u);
  EXPECT_EQ(d.boots[0].ami, "ami-win");
  EXPECT_EQ(d.boots[0].platform, "windows");

  Demand ami = linux_runs(3, 1);
  ami.ami = "ami-env", ami.one_job = true, ami.setup_script = "echo hi";
  d = decide(o, {ami}, {}, 0);
  ASSERT_EQ(d.boots.size(), 3u);  // one machine per run
  EXPECT_EQ(d.boots[0].ami, "ami-env");
  EXPECT_TRUE(d.boots[0].one_job);
  EXPECT_EQ(d.boots[0].setup_script, "echo hi");
  EXPECT_EQ(d.boots[0].runs, 1);

  auto none = options();
  none.linux_ami = "";
  EXPECT_TRUE(decide(none, {linux_runs(1, 1)}, {}, 0).boots.empty());
  EXPECT_EQ(decide(none, {linux_runs(1, 99)}, {}, 0).waiting_reasons[0],
            "no linux_ami is configured in machine_management");
  EXPECT_EQ(decide(options(), {linux_runs(1, 99)}, {}, 0).waiting_reasons[0],
            "no instance type has 99 cores and 0 GB of RAM");
}

}  // namespace
}  // namespace testlooper::fleet
