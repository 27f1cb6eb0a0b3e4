#include "core/hmac.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace testlooper {

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : hmac_sha256(key, data)) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace testlooper
