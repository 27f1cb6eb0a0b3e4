// libFuzzer target over the HTTP request parser + router: the input is the raw bytes of one
// request. They are parsed as the server parses them (parse_request: same limits, same checks);
// a refusal must be a 4xx with a JSON error, and a request must go through the real Api over a
// real ServerState (an empty sqlite store in a temp dir, set up once) without an exception.
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "server/api.h"
#include "server/http.h"
#include "server/server.h"
#include "server/state.h"
#include "store/store.h"

namespace {

using namespace testlooper;          // NOLINT(google-build-using-namespace)
using namespace testlooper::server;  // NOLINT(google-build-using-namespace)

struct World {
  std::string dir;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<ServerState> state;
  std::unique_ptr<Api> api;
};
World* g_world = nullptr;

[[noreturn]] void fail(const std::string& why) {
  fprintf(stderr, "fuzz_http: %s\n", why.c_str());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  namespace fs = std::filesystem;
  char dir[] = "/tmp/fuzz_http.XXXXXX";
  if (mkdtemp(dir) == nullptr) fail("mkdtemp failed");
  g_world = new World;
  g_world->dir = dir;
  for (const char* sub : {"logs", "repos", "artifacts", "web/assets"})
    fs::create_directories(g_world->dir + "/" + sub);
  std::ofstream(g_world->dir + "/web/index.html") << "<html></html>";
  std::ofstream(g_world->dir + "/web/assets/app.js") << "1";
  auto store = store::open_sqlite_store(g_world->dir + "/state.db");
  if (!store.ok()) fail(store.error().to_string());
  g_world->store = std::move(store).value();
  g_world->state = std::make_unique<ServerState>(
      *g_world->store, StateOptions{1, 30, g_world->dir + "/logs", g_world->dir + "/repos",
                                    g_world->dir + "/artifacts"});
  if (auto s = g_world->state->load(); !s.ok()) fail(s.error().to_string());
  // A worker secret, so the worker paths past the token check are reached too (the seeds that
  // carry "Authorization: Bearer " + 64 'a's).
  std::ofstream(g_world->dir + "/worker.token") << std::string(64, 'a');
  fs::permissions(g_world->dir + "/worker.token", fs::perms::owner_read | fs::perms::owner_write);
  if (auto s = g_world->state->secure_workers(g_world->dir + "/worker.token", 24); !s.ok())
    fail(s.error().to_string());
  g_world->api = std::make_unique<Api>(
      *g_world->state, [] {}, "secret", g_world->dir + "/web");
  return 0;
}

namespace {

// Half the inputs (by length) meet a server with sign-in on, so the bearer tokens, session
// cookies and CSRF headers an attacker sends reach the access checks (api_access.cc); the
// other half meet an open server and reach every endpoint. The provider is never called:
// the sign-in's callback is asynchronous (handle_async), which this target does not drive.
void set_mode(size_t size) {
  static ServerOptions open, oauth;
  static bool ready = false;
  if (!ready) {
    oauth.auth_mode = auth::Mode::kOAuth;
    oauth.oauth_key = "key";
    oauth.oauth_secret = "secret";
    oauth.oauth_provider = "github";
    oauth.owner = "acme";
    ready = true;
  }
  g_world->api->set_access_options(size % 2 ? oauth : open);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_request(bytes, HttpOptions{});
  if (const auto* refusal = std::get_if<Response>(&parsed)) {
    const auto body = nlohmann::json::parse(refusal->body, nullptr, false);
    if (refusal->status < 400 || refusal->status > 499 || !body.is_object() ||
        !body.contains("error")) {
      fail("a refusal that is not a 4xx JSON error: " + std::to_string(refusal->status) + " " +
           refusal->body);
    }
    return 0;
  }
  Request& request = std::get<Request>(parsed);
  request.client = "127.0.0.1";
  set_mode(size);
  if (request.path.find('\0') != std::string::npos) fail("NUL in a parsed path");
  // As the server does: the head is looked at first (refuse_early), then an upload's body goes
  // to the file the handler names. The handler is called directly, so an exception it throws
  // is a crash here.
  if (const auto early = g_world->api->refuse_early(request)) {
    if (early->status < 400 || early->status > 499)
      fail("refuse_early gave " + std::to_string(early->status));
    return 0;
  }
  const std::string file = g_world->api->body_file_for(request);
  if (!file.empty()) {
    std::ofstream(file, std::ios::binary) << request.body;
    request.body_file = file;
    request.body.clear();
  }
  const Response response = g_world->api->handle(request);
  if (!file.empty()) std::filesystem::remove(file);
  if (response.status < 100 || response.status > 599)
    fail("status " + std::to_string(response.status));
  return 0;
}
