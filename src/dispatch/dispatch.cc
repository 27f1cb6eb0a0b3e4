#include "dispatch/dispatch.h"

#include <algorithm>
#include <fmt/format.h>

namespace testlooper::dispatch {
namespace {

bool could_ever_run(const planner::Job& job, const std::vector<WorkerCapacity>& workers) {
  return std::any_of(workers.begin(), workers.end(), [&](const WorkerCapacity& w) {
    return w.total_cores >= job.min_cores && w.total_ram_gb >= job.min_ram_gb;
  });
}

}  // namespace

DispatchResult assign(const std::vector<planner::Job>& jobs, std::vector<WorkerCapacity> workers) {
  DispatchResult out;
  for (const auto& job : jobs) {
    if (!workers.empty() && !could_ever_run(job, workers)) {
      out.unrunnable.push_back({job, fmt::format("needs {} cores and {} GB of RAM; no worker has that",
                                                 job.min_cores, job.min_ram_gb)});
      continue;
    }
    for (int n = 0; n < job.runs; ++n) {
      auto fits = std::find_if(workers.begin(), workers.end(), [&](const WorkerCapacity& w) {
        return w.free_cores >= job.min_cores && w.free_ram_gb >= job.min_ram_gb;
      });
      if (fits == workers.end()) break;
      const int cores = std::min(std::max(job.min_cores, job.max_cores), fits->free_cores);
      fits->free_cores -= cores;
      fits->free_ram_gb -= job.min_ram_gb;
      out.assignments.push_back({fits->id, job, cores, job.min_ram_gb});
    }
  }
  return out;
}

}  // namespace testlooper::dispatch
