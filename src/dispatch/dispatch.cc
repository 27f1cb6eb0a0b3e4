#include "dispatch/dispatch.h"

#include <algorithm>
#include <fmt/format.h>

namespace testlooper::dispatch {
namespace {

// "" when some worker can run `job`, else why the first one cannot.
std::string why_none_can(const planner::Job& job, const std::vector<WorkerCapacity>& workers) {
  std::string first;
  for (const auto& w : workers) {
    std::string why = cannot_run(job, w);
    if (why.empty()) return "";
    if (first.empty()) first = std::move(why);
  }
  return first;
}

}  // namespace

std::string cannot_run(const planner::Job& job, const WorkerCapacity& w) {
  if (std::find(w.platforms.begin(), w.platforms.end(), job.platform) == w.platforms.end()) {
    return fmt::format("needs a {} worker; no connected worker runs {}", job.platform,
                       job.platform);
  }
  if (job.ami && !w.ami) return "needs an AMI (a cloud worker); no connected worker runs AMIs";
  if (job.ami && w.image != job.image)
    return fmt::format("needs a machine booted from {}; no connected worker is", job.image);
  if (job.docker && !w.docker) return "needs docker; no connected worker has a docker engine";
  if (w.total_cores < job.min_cores || w.total_ram_gb < job.min_ram_gb) {
    return fmt::format("needs {} cores and {} GB of RAM; no worker has that", job.min_cores,
                       job.min_ram_gb);
  }
  return "";
}

DispatchResult assign(const std::vector<planner::Job>& jobs, std::vector<WorkerCapacity> workers) {
  DispatchResult out;
  for (const auto& job : jobs) {
    if (!workers.empty()) {
      if (std::string why = why_none_can(job, workers); !why.empty()) {
        out.unrunnable.push_back({job, std::move(why)});
        continue;
      }
    }
    for (int n = 0; n < job.runs; ++n) {
      auto fits = std::find_if(workers.begin(), workers.end(), [&](const WorkerCapacity& w) {
        return w.free_cores >= job.min_cores && w.free_ram_gb >= job.min_ram_gb &&
               cannot_run(job, w).empty();
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
