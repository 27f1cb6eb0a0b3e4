// Dispatch: packs runnable jobs onto workers' free cores and RAM (FORMAT.md §13), highest
// priority first, never over-committing a worker. Pure: plain data in, assignments out.
#pragma once

#include <string>
#include <vector>

#include "planner/planner.h"

namespace testlooper::dispatch {

// A connected worker's free capacity now, and what it can run (its hello).
struct WorkerCapacity {
  std::string id;
  int free_cores = 0;
  int free_ram_gb = 0;
  int total_cores = 0;
  int total_ram_gb = 0;
  std::vector<std::string> platforms = {"linux"};
  bool docker = false;  // runs Dockerfile environments
  bool ami = false;     // runs AMI environments: those of `image`
  std::string image;    // the AMI it was booted from (worker --ami)
};

// Why `worker` can never run `job` whatever its load ("" when it can): a platform, docker or an
// AMI it lacks, or fewer cores or less RAM than the job needs.
std::string cannot_run(const planner::Job& job, const WorkerCapacity& worker);

// One run to start: the job's identity on a worker with the cores and RAM it is given.
struct Assignment {
  std::string worker;
  planner::Job job;
  int cores = 1;
  int ram_gb = 0;
};

// A job no connected worker could ever run, and why.
struct Unrunnable {
  planner::Job job;
  std::string reason;
};

struct DispatchResult {
  std::vector<Assignment> assignments;
  std::vector<Unrunnable> unrunnable;
};

// Assigns as many of `jobs` (highest priority first, each wanting job.runs runs) as fit, each on
// a worker that can run it (cannot_run). A run gets between min_cores and max_cores cores (as
// many as are free) and min_ram_gb of RAM. A job no worker can run is unrunnable, with the
// first worker's reason.
DispatchResult assign(const std::vector<planner::Job>& jobs, std::vector<WorkerCapacity> workers);

}  // namespace testlooper::dispatch
