// Content hashing for identities: SHA-256, printed as lowercase hex. Stable across runs,
// machines and builds. Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

namespace testlooper {

// SHA-256 of `data` as 64 lowercase hex characters.
std::string sha256_hex(std::string_view data);

}  // namespace testlooper
