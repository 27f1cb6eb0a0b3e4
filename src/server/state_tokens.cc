// ServerState: API tokens and worker tokens (docs/configuration.md "Access"). The store holds
// only each token's SHA-256; every request's token is looked up there, so a `testlooper token
// revoke` from another process takes effect at the next request.
#include <vector>

#include "auth/auth.h"
#include "core/hash.h"
#include "core/token.h"
#include "server/state.h"
#include "server/tokens.h"
#include "server/worker_token.h"

namespace testlooper::server {
namespace {

// last_used is written at most this often per token: a GET is not a write.
constexpr double kLastUsedResolution = 60;

}  // namespace

Status ServerState::secure_workers(const std::string& token_file, double max_run_hours) {
  Result<std::string> token = load_or_create_worker_token(token_file);
  if (!token.ok()) return token.error();
  const store::TokenRow local{kLocalTokenName, "worker", sha256_hex(*token), now_seconds(), 0};
  // Written only when missing (the first start, or a new worker.token): a restart on a full disk
  // must not fail for it.
  Result<std::optional<store::TokenRow>> known = store_.token_by_hash(local.hash);
  if (!known.ok() || !known->has_value() || (*known)->name != local.name ||
      (*known)->role != local.role) {
    Result<bool> added = store_.add_token(local, /*replace=*/true);
    if (!added.ok()) return added.error();
  }
  if (max_run_hours > 0) options_.max_run_seconds = max_run_hours * 3600;
  return {};
}

std::optional<store::TokenRow> ServerState::find_token(const std::string& text) {
  if (!is_token_text(text)) return std::nullopt;
  const std::string hash = sha256_hex(text);
  Result<std::optional<store::TokenRow>> found = store_.token_by_hash(hash);
  if (!found.ok() || !found->has_value() || !same_secret((*found)->hash, hash)) return std::nullopt;
  store::TokenRow token = **found;
  const double now = now_seconds();
  if (now - token.last_used >= kLastUsedResolution && store_.touch_token(token.name, now).ok()) {
    token.last_used = now;
  }
  return token;
}

bool ServerState::is_worker_token(const std::string& token) {
  const auto found = find_token(token);
  return found && found->role == auth::to_string(auth::Role::kWorker);
}

void ServerState::worker_connected(const std::shared_ptr<Socket>& socket,
                                   const store::TokenRow& token) {
  worker_tokens_[socket->id()] = {socket, token};
}

void ServerState::drop_revoked_workers() {
  if (worker_tokens_.empty()) return;
  // A token a worker connected with was found valid then; nothing to read again until the
  // tokens may have changed.
  const auto generation = store_.token_generation();
  if (generation.ok() && tokens_checked_ == *generation) return;
  bool all_read = generation.ok();
  std::vector<std::shared_ptr<Socket>> revoked;
  for (const auto& [id, entry] : worker_tokens_) {
    Result<std::optional<store::TokenRow>> now = store_.token_by_hash(entry.second.hash);
    // A store that cannot say is an infrastructure problem: the worker is not blamed for it.
    if (!now.ok()) all_read = false;
    if (now.ok() && (!now->has_value() || (*now)->role != "worker")) revoked.push_back(entry.first);
  }
  if (all_read) tokens_checked_ = *generation;
  for (const auto& socket : revoked) refuse_worker(socket, "the worker's token was revoked");
}

}  // namespace testlooper::server
