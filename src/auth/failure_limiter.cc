#include "auth/failure_limiter.h"

#include <algorithm>
#include <cmath>

namespace testlooper::auth {

void FailureLimiter::failed(const std::string& client, double now) {
  if (!clients_.count(client) && clients_.size() >= kMaxClients) make_room(now);
  Entry& e = clients_[client];
  if (now - e.window_start > kWindowSeconds) {
    e.window_start = now;
    e.failures = 0;
  }
  e.last_failure = now;
  if (++e.failures >= kMaxFailures) e.blocked_until = now + kBlockSeconds;
}

int FailureLimiter::blocked_for(const std::string& client, double now) const {
  auto it = clients_.find(client);
  if (it == clients_.end() || it->second.blocked_until <= now) return 0;
  return std::max(1, static_cast<int>(std::ceil(it->second.blocked_until - now)));
}

void FailureLimiter::make_room(double now) {
  // Entries that neither block nor count any more go first; then the least recently failed.
  std::erase_if(clients_, [now](const auto& kv) {
    return kv.second.blocked_until <= now && now - kv.second.window_start > kWindowSeconds;
  });
  if (clients_.size() < kMaxClients) return;
  auto oldest = clients_.begin();
  for (auto it = clients_.begin(); it != clients_.end(); ++it) {
    if (it->second.last_failure < oldest->second.last_failure) oldest = it;
  }
  clients_.erase(oldest);
}

}  // namespace testlooper::auth
