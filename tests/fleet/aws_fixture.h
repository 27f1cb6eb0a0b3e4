// What the fleet's AWS tests share: one moto_server per test process (started on first use) and
// environment variables set for one test.
#pragma once

#include <stdlib.h>

#include <optional>
#include <string>

#include "artifacts/temp_dir.h"
#include "fleet/aws.h"
#include "fleet/moto.h"

namespace testlooper::fixtures {

// The moto_server of this test process, started on first use, killed at exit.
inline Moto& shared_moto() {
  struct Shared {
    testing::TempDir dir;
    Moto moto{dir.path().string()};
  };
  static Shared shared;
  return shared.moto;
}

// The credentials moto's environment gives (fake ones).
inline fleet::Credentials moto_credentials() {
  shared_moto();
  auto credentials = fleet::load_credentials();
  if (!credentials.ok()) throw std::runtime_error(credentials.error().to_string());
  return *credentials;
}

inline fleet::Endpoint moto_endpoint(const std::string& service) {
  return fleet::Endpoint{.service = service, .region = "us-east-1", .url = shared_moto().url()};
}

// Sets (or with nullopt, unsets) an environment variable until destroyed.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = getenv(name_.c_str())) old_ = old;
    if (value)
      setenv(name_.c_str(), value->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace testlooper::fixtures
