// The limit on failed authentications per client address (docs/api.md "Access"): after
// kMaxFailures failures within kWindowSeconds from one address, that address is blocked for
// kBlockSeconds (requests carrying credentials get 429 with Retry-After). Pure: the caller gives
// the time. Its memory is bounded: at most kMaxClients addresses are remembered; when full, the
// entry least recently failed is forgotten first (a client rotating addresses cannot grow it).
// Not thread-safe: the server uses it on its io thread.
#pragma once

#include <cstddef>
#include <map>
#include <string>

namespace testlooper::auth {

class FailureLimiter {
 public:
  static constexpr int kMaxFailures = 10;
  static constexpr double kWindowSeconds = 60;
  static constexpr double kBlockSeconds = 60;
  static constexpr size_t kMaxClients = 4096;

  // Counts a failed authentication from `client` at `now` (seconds).
  void failed(const std::string& client, double now);
  // Seconds until `client` may try again (rounded up, at least 1), or 0 when it is not blocked.
  int blocked_for(const std::string& client, double now) const;
  size_t size() const { return clients_.size(); }

 private:
  struct Entry {
    double window_start = 0;
    int failures = 0;
    double blocked_until = 0;
    double last_failure = 0;
  };
  void make_room(double now);

  std::map<std::string, Entry> clients_;
};

}  // namespace testlooper::auth
