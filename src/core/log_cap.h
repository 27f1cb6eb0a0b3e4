// The cap on a run's kept log (`serve --max-log-mb`), shared by the runner that writes the log
// and the server that stores what workers send of it.
#pragma once

#include <cstdint>
#include <string>

namespace testlooper {

// How much of a run's log is kept by default (`serve --max-log-mb` 64).
constexpr int64_t kDefaultMaxLogBytes = int64_t{64} << 20;

// The last line of a log cut at `max_bytes` after which `dropped` bytes were not kept:
// "[testlooper: log cut at 64 MiB; 123 bytes not kept]" (the cap in bytes when it is not a
// whole number of MiB).
std::string log_cut_line(int64_t max_bytes, int64_t dropped);

}  // namespace testlooper
