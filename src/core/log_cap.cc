#include "core/log_cap.h"

namespace testlooper {

std::string log_cut_line(int64_t max_bytes, int64_t dropped) {
  const int64_t mib = int64_t{1} << 20;
  const std::string cap = max_bytes % mib == 0 ? std::to_string(max_bytes / mib) + " MiB"
                                               : std::to_string(max_bytes) + " bytes";
  return "[testlooper: log cut at " + cap + "; " + std::to_string(dropped) + " bytes not kept]";
}

}  // namespace testlooper
