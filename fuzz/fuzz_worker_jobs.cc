// libFuzzer target over what the worker takes from the server (worker/jobs.h): a message's type
// and run id, a job's acks, and a job's or deployment's fields, read only once is_job accepted
// them (read_job must then never throw: an uncaught exception aborts, which libFuzzer reports),
// its "s3" and its resolved object. Input: one message's text.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "core/ids.h"
#include "definitions/definitions_json.h"
#include "worker/jobs.h"

namespace worker = testlooper::worker;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const json m = json::parse(data, data + size, nullptr, false);
  if (!worker::is_server_message(m)) return 0;
  for (const std::string& id : worker::job_acks(m)) {
    if (!testlooper::is_run_id(id)) std::abort();  // it becomes a file name in the journal
  }
  if (!worker::is_job(m)) return 0;
  const worker::Job job = worker::read_job(m);
  if (!testlooper::is_run_id(job.run_id)) std::abort();
  if (job.cores < 1 || job.ram_gb < 0 || job.max_log_bytes <= 0) std::abort();
  if (!(job.max_seconds >= 1 && job.max_seconds <= 1e7)) std::abort();
  if (job.s3) (void)worker::s3_options(*job.s3);
  (void)testlooper::definitions::object_from_json(job.object.dump());
  return 0;
}
