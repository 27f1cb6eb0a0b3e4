// Content hashing for identities: SHA-256, printed as lowercase hex. Stable across runs,
// machines and builds. Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

namespace testlooper {

// SHA-256 of `data` as 64 lowercase hex characters.
std::string sha256_hex(std::string_view data);

// The first of OpenSSL's queued errors on this thread as text ("" when none), clearing the
// queue: what TLS and certificate errors say.
std::string openssl_reason();

}  // namespace testlooper
