#include "core/hash.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <array>

namespace testlooper {

namespace {

// Fetched once: EVP_sha256() makes EVP_Digest look the algorithm up in the provider on every
// call, 40% of the cost of hashing a token (issue 18: a run's upload token is hashed when it
// starts). Never freed; EVP_MD objects are shared between threads.
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &size, sha256_md(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

std::string openssl_reason() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "";
  char text[256] = {0};
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

}  // namespace testlooper
