// Stub: helper B implements (issue 14).
#include "fleet/fleet.h"

namespace testlooper::fleet {

FleetDecision decide(const FleetOptions&, const std::vector<Demand>&, const std::vector<Machine>&,
                     double) {
  return {};
}

}  // namespace testlooper::fleet
