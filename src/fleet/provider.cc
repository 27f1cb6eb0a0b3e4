// Stub: helper B implements (issue 14).
#include "fleet/provider.h"

namespace testlooper::fleet {

std::string boot_script(const FleetOptions&, const BootTicket&) { return ""; }
Result<std::unique_ptr<Provider>> make_ec2_provider(const FleetOptions&) {
  return Error{"machine_management", "the ec2 provider is not implemented yet"};
}

}  // namespace testlooper::fleet
