// Secrets shared between the server and its workers: made from the system's CSPRNG, kept in
// files only their owner can read, and compared in constant time. Thread-safe (no state).
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace testlooper {

// `bytes` random bytes from OpenSSL's CSPRNG as lowercase hex (2 * bytes characters).
// Aborts only if the CSPRNG cannot be seeded (nothing secret could be made then).
std::string random_hex(size_t bytes);

// A new API token (`testlooper token create`): "tl_" and 64 hex digits (256 bits from the
// CSPRNG); it passes is_token_text, so a worker may be given it.
std::string new_api_token();

// Whether `given` equals `expected`, in time that depends only on their lengths.
bool same_secret(std::string_view expected, std::string_view given);

// A token as written in a token file: 32 to 1024 visible ASCII characters (no spaces).
bool is_token_text(std::string_view text);

// Reads the token in `path`: the file's content without trailing whitespace. The file must be a
// regular file (not followed through a symlink) of at most 4 KiB holding a token (is_token_text).
Result<std::string> read_token_file(const std::string& path);

}  // namespace testlooper
