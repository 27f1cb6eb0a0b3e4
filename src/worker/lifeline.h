// The worker's lifeline: a small process forked when the worker starts that outlives it. While
// the worker lives it only reads a pipe, on which the worker names the runs whose processes must
// not outlive it (its deployments: their command, the stage that keeps them alive, their
// terminal). When the pipe ends, the worker is gone however it went (SIGKILL and the OOM killer
// included): the lifeline kills every process that still carries one of those runs' marker
// (TESTLOOPER_RUN_ID=<run id>, or TESTLOOPER_TERMINAL=<run id> for what their terminal started;
// whatever its process group or session), removes their containers
// (label testlooper.run=<run id>) and what their scoped docker made, and exits.
#pragma once

#include <string>

namespace testlooper::worker {

// Forks the lifeline (once; before the worker starts threads). `docker`: the docker CLI. False
// when it could not be started (the worker runs without it).
bool start_lifeline(const std::string& docker = "docker");

// Run `run_id`'s processes die with the worker from now on / no longer need to (it ended).
// Thread-safe; nothing without a lifeline.
void lifeline_hold(const std::string& run_id);
void lifeline_release(const std::string& run_id);

}  // namespace testlooper::worker
