// Sign-in with GitHub or GitLab and the sessions it opens (docs/api.md "Sign-in",
// docs/configuration.md "Access"): /auth/login, /auth/callback, /auth/logout, /api/session.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

#include "auth/sign_in.h"
#include "core/hash.h"
#include "core/token.h"
#include "server/api.h"
#include "server/api_json.h"
#include "server/protocol.h"

namespace testlooper::server {
namespace {

using nlohmann::json;
using reply::error;
using reply::ok;
using reply::redirect;

constexpr const char* kSessionCookie = "testlooper_session";
constexpr const char* kSignInCookie = "testlooper_sign_in";
constexpr double kSignInSeconds = 600;            // a sign-in must come back within 10 minutes
constexpr size_t kMaxPendingSignIns = 10000;      // started and not back; more are refused (503)
constexpr long kMaxPendingSignInsPerClient = 32;  // the same from one address (429)
constexpr size_t kMaxExchanges = 32;              // sign-ins talking to the provider at once

bool is_hex_token(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Printable ASCII, at most `max` characters.
bool is_visible(const std::string& text, size_t max) {
  if (text.empty() || text.size() > max) return false;
  for (char c : text) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

std::string query_value(const Request& request, const std::string& key) {
  auto it = request.query.find(key);
  return it == request.query.end() ? "" : it->second;
}

std::optional<std::string> request_cookie(const Request& request, const std::string& name) {
  auto it = request.headers.find("cookie");
  if (it == request.headers.end()) return std::nullopt;
  return auth::cookie_value(it->second, name);
}

}  // namespace

// Threads of the io thread's slow work (sign-ins talking to the provider, builds fetched from
// S3): at most kMaxExchanges at once per pool.
struct Api::Exchanges : std::enable_shared_from_this<Api::Exchanges> {
  std::mutex mutex;
  std::list<std::thread> threads;
  std::list<std::thread::id> finished;  // threads whose work is done, to be joined
  size_t running = 0;
  std::atomic<bool> stop{false};

  // Joins the threads that are done (io thread).
  void reap() {
    std::list<std::thread::id> done;
    {
      std::lock_guard lock(mutex);
      done.swap(finished);
    }
    for (auto id : done) {
      for (auto it = threads.begin(); it != threads.end(); ++it) {
        if (it->get_id() != id) continue;
        it->join();
        threads.erase(it);
        break;
      }
    }
  }

  // Runs `work` (given `stop`, set when the server stops) on a new thread (io thread); false
  // when kMaxExchanges are running already.
  bool start(std::function<void(const std::atomic<bool>& stop)> work) {
    reap();
    if (threads.size() >= kMaxExchanges) return false;
    threads.emplace_back([self = shared_from_this(), work = std::move(work)] {
      work(self->stop);
      std::lock_guard lock(self->mutex);
      self->finished.push_back(std::this_thread::get_id());
    });
    return true;
  }
};

void Api::stop_sign_ins() {
  for (auto* pool : {&exchanges_, &s3_fetches_, &port_proxies_, &port_sockets_}) {
    if (!*pool) continue;
    (*pool)->stop = true;
    for (auto& t : (*pool)->threads) t.join();
    (*pool)->threads.clear();
  }
}

bool Api::start_thread(std::shared_ptr<Exchanges>& pool,
                       std::function<void(const std::atomic<bool>& stop)> work) {
  if (!pool) pool = std::make_shared<Exchanges>();
  return pool->start(std::move(work));
}

std::string Api::cookie(const std::string& name, const std::string& value, double seconds,
                        const std::string& path) const {
  const bool secure = !options_.tls_cert.empty() || options_.public_url.starts_with("https://");
  return fmt::format("{}={}; Max-Age={}; Path={}; HttpOnly; SameSite=Lax{}", name, value,
                     static_cast<int64_t>(seconds), path, secure ? "; Secure" : "");
}

std::string Api::redirect_uri(const Request& request) const {
  std::string base = options_.public_url;
  if (base.empty()) {
    auto host = request.headers.find("host");
    base = (options_.tls_cert.empty() ? "http://" : "https://") +
           (host == request.headers.end() ? std::string("127.0.0.1") : host->second);
  }
  while (base.ends_with('/')) base.pop_back();
  return base + "/auth/callback";
}

std::optional<Response> Api::session_endpoint(const Request& request, const auth::Principal& who) {
  const std::string& p = request.path;
  if (p == "/api/session") {
    if (request.method != "GET") return error(405, "GET /api/session only");
    return session_json(who);
  }
  if (p == "/auth/login") {
    if (request.method != "GET") return error(405, "GET /auth/login only");
    return sign_in_start(request);
  }
  if (p == "/auth/logout") {
    if (request.method != "POST") return error(405, "POST /auth/logout only");
    return sign_out(request);
  }
  if (p == "/auth/callback") return error(405, "GET /auth/callback only");
  return std::nullopt;
}

Response Api::session_json(const auth::Principal& who) const {
  const bool oauth = options_.auth_mode == auth::Mode::kOAuth;
  json user = nullptr;
  if (who.via == "session") {
    user = who.name.substr(who.name.find(':') + 1);
  } else if (who.via == "token") {
    user = who.name;
  }
  return ok({{"mode", auth::to_string(options_.auth_mode)},
             {"provider", oauth ? json(oauth_settings(options_).provider) : json(nullptr)},
             {"login_url", oauth ? json("/auth/login") : json(nullptr)},
             {"user", user},
             {"role", auth::to_string(who.role)},
             {"via", who.via},
             {"csrf", who.csrf.empty() ? json(nullptr) : json(who.csrf)},
             {"public_read", options_.public_read}});
}

Response Api::sign_in_start(const Request& request) {
  if (options_.auth_mode != auth::Mode::kOAuth) {
    return error(404, "sign-in is off: the server's auth.mode is not \"oauth\"");
  }
  if (options_.oauth_key.empty() || options_.oauth_secret.empty()) {
    return error(503, "sign-in is not configured (source_control.oauth_key and oauth_secret)");
  }
  const double now = now_seconds();
  std::erase_if(pending_sign_ins_, [now](const auto& p) { return p.second.expires <= now; });
  if (pending_sign_ins_.size() >= kMaxPendingSignIns) {
    return error(503, "too many sign-ins in progress; try again in a few minutes");
  }
  const auto mine = std::count_if(pending_sign_ins_.begin(), pending_sign_ins_.end(),
                                  [&](const auto& p) { return p.second.client == request.client; });
  if (mine >= kMaxPendingSignInsPerClient) {
    return error(429, "too many sign-ins started from your address; finish one or wait 10 minutes");
  }
  const std::string state = random_hex(32);
  const std::string browser = random_hex(32);
  const std::string uri = redirect_uri(request);
  pending_sign_ins_[state] = {sha256_hex(browser), uri, now + kSignInSeconds, request.client};
  Response r = redirect(authorize_url(oauth_settings(options_), uri, state));
  r.headers.emplace_back("Set-Cookie", cookie(kSignInCookie, browser, kSignInSeconds, "/auth"));
  return r;
}

bool Api::handle_async(const Request& request, Completion done) {
  if (request.method == "POST" && pin_path(request.path)) return pin_update(request, done);
  if (fetch_build_from_s3(request, done)) return true;
  if (proxy_port(request, done)) return true;
  if (request.path != "/auth/callback" || request.method != "GET") return false;
  auto answer = [&done](Response r) {
    done([r = std::move(r)] { return r; });
    return true;
  };
  if (auto refusal = access_refusal(request, principal(request))) return answer(*refusal);
  if (options_.auth_mode != auth::Mode::kOAuth) {
    return answer(error(404, "sign-in is off: the server's auth.mode is not \"oauth\""));
  }
  if (auto refused = query_value(request, "error"); !refused.empty()) {
    if (!is_visible(refused, 100)) refused = "(unreadable)";
    return answer(error(400, "the provider did not sign you in (" + refused + "); try again"));
  }
  const std::string state = query_value(request, "state");
  const std::string code = query_value(request, "code");
  const double now = now_seconds();
  auto pending = pending_sign_ins_.find(state);
  if (!is_hex_token(state) || pending == pending_sign_ins_.end() ||
      pending->second.expires <= now) {
    if (pending != pending_sign_ins_.end()) pending_sign_ins_.erase(pending);
    return answer(error(400, "unknown, used or expired sign-in state: sign in again"));
  }
  const PendingSignIn started = pending->second;
  pending_sign_ins_.erase(pending);  // single use, whatever comes next
  const auto browser = request_cookie(request, kSignInCookie);
  if (!browser || !same_secret(started.browser_hash, sha256_hex(*browser))) {
    return answer(error(400, "this sign-in was started in another browser: sign in again"));
  }
  if (!is_visible(code, 1024))
    return answer(error(400, "the sign-in code is missing or malformed"));
  const OAuthSettings settings = oauth_settings(options_);
  const bool running = start_thread(
      exchanges_, [this, settings, code, started, done](const std::atomic<bool>& stop) {
        auto result = sign_in(settings, code, started.redirect_uri, stop);
        done([this, result = std::move(result)] { return sign_in_finish(result); });
      });
  if (!running) {
    return answer(error(503, "too many sign-ins talking to the provider; try again shortly"));
  }
  return true;
}

Response Api::sign_in_finish(const Result<SignedIn>& result) {
  if (!result.ok()) {
    return error(502, "sign-in failed: " + result.error().where + ": " + result.error().message);
  }
  const double now = now_seconds();
  const auth::Role role = auth::role_of_sign_in(result->login, result->member, options_.admins);
  const std::string key = random_hex(32);
  const double seconds = options_.session_hours * 3600;
  const store::SessionRow row{sha256_hex(key),
                              result->login,
                              oauth_settings(options_).provider,
                              std::string(auth::to_string(role)),
                              random_hex(32),
                              now + seconds};
  auto& store = state_.store();
  if (auto s = store.prune_sessions(now); !s.ok()) return write_failed("the sessions", s.error());
  if (auto s = store.put_session(row); !s.ok()) return write_failed("the session", s.error());
  std::string home = options_.public_url.empty() ? "/" : options_.public_url;
  if (!home.ends_with('/')) home += '/';
  Response r = redirect(home);
  r.headers.emplace_back("Set-Cookie", cookie(kSessionCookie, key, seconds, "/"));
  r.headers.emplace_back("Set-Cookie", cookie(kSignInCookie, "", 0, "/auth"));
  return r;
}

Response Api::sign_out(const Request& request) {
  if (auto key = request_cookie(request, kSessionCookie); key && is_hex_token(*key)) {
    if (auto s = state_.store().delete_session(sha256_hex(*key)); !s.ok()) {
      return write_failed("the session", s.error());
    }
  }
  Response r = ok({{"signed_out", true}});
  r.headers.emplace_back("Set-Cookie", cookie(kSessionCookie, "", 0, "/"));
  return r;
}

std::optional<auth::Principal> Api::session_principal(const Request& request) {
  const auto key = request_cookie(request, kSessionCookie);
  if (!key || !is_hex_token(*key)) return std::nullopt;
  const std::string hash = sha256_hex(*key);
  auto row = state_.store().session(hash);
  if (!row.ok() || !row->has_value()) return std::nullopt;
  const store::SessionRow& session = **row;
  if (session.expires <= now_seconds()) {
    (void)state_.store().delete_session(hash);  // pruned; refused either way
    return std::nullopt;
  }
  const auto role = auth::parse_role(session.role);
  if (!role || *role == auth::Role::kWorker) return std::nullopt;
  return auth::Principal{*role, session.provider + ":" + session.login, "session", session.csrf};
}

std::optional<Response> Api::csrf_refusal(const Request& request,
                                          const auth::Principal& who) const {
  // Reads are not checked, nor WebSocket upgrades (a browser cannot add a header to one; the
  // HTTP layer refuses a foreign Origin, and the sockets a browser opens only read).
  if (who.via != "session" || request.method == "GET" || request.method == "HEAD")
    return std::nullopt;
  auto it = request.headers.find("x-csrf-token");
  if (it != request.headers.end() && same_secret(who.csrf, it->second)) return std::nullopt;
  return error(403,
               "a request signed in by cookie that changes something needs the X-CSRF-Token header "
               "from GET /api/session");
}

}  // namespace testlooper::server
