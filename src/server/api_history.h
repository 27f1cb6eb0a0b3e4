// API endpoints of the web UI's test history and run controls (docs/api.md), as free functions
// over ServerState, routed from Api::get and Api::post. Run on the io thread like the rest of the
// API; errors are `{"error": message}` with a 4xx status. A branch's history (Api::history, which
// keeps the size of its last answer) is defined beside them in api_history.cc.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "server/http.h"
#include "server/state.h"

namespace testlooper::server {

// GET /api/repos/{repo}/branches/{branch}/tests/{name}/history?limit=N: one test's (or, with
// name "test::case", one test case's) counts per first-parent commit of the branch, newest first,
// and the changes of its failure rate. `rest` is the path after "/api/repos/{repo}". nullopt when
// the path is not such a request (no known branch followed by "/tests/NAME/history"), so that the
// caller can try its other routes.
std::optional<Response> test_history(ServerState& state, const std::string& repo, const std::string& rest,
                                     const std::map<std::string, std::string>& query);

// POST /api/runs/{id}/cancel: asks the worker running it to stop. 404 for an unknown run, 409 for
// one that is not running.
Response cancel_run(ServerState& state, const std::string& run_id);

}  // namespace testlooper::server
