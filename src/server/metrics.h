// GET /metrics: the server's state in Prometheus' text format (prometheus-cpp's serializer), for
// an operator's scraper. Names are prefixed `testlooper_` (docs/api.md "Metrics").
#pragma once

#include <string>

#include "server/fleet_controller.h"
#include "server/state.h"

namespace testlooper::server {

// The metrics of `state` now (and of `fleet`'s machines when there is a fleet). Called on the io
// thread.
std::string metrics_text(const ServerState& state, const FleetController* fleet);

}  // namespace testlooper::server
