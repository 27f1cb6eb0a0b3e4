// HMAC-SHA256 (RFC 2104), for signatures of webhooks in and out and AWS's request signing.
// Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

namespace testlooper {

// HMAC-SHA256 of `data` with `key`: its 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);
// The same as 64 lowercase hex characters (GitHub's X-Hub-Signature-256 after "sha256=").
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace testlooper
