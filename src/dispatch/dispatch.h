// Dispatch: packs runnable jobs onto workers' free cores and RAM (FORMAT.md §13), highest
// priority first, never over-committing a worker. Pure: plain data in, assignments out.
#pragma once

#include <string>
#include <vector>

#include "planner/planner.h"

namespace testlooper::dispatch {

// A connected worker's free capacity now.
struct WorkerCapacity {
  std::string id;
  int free_cores = 0;
  int free_ram_gb = 0;
  int total_cores = 0;
  int total_ram_gb = 0;
};

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

// Assigns as many of `jobs` (highest priority first, each wanting job.runs runs) as fit. A run
// gets between min_cores and max_cores cores (as many as are free) and min_ram_gb of RAM.
DispatchResult assign(const std::vector<planner::Job>& jobs, std::vector<WorkerCapacity> workers);

}  // namespace testlooper::dispatch
