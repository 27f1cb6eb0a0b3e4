// libFuzzer target over the worker protocol (docs/api.md "The worker protocol"): the input, as
// one message and split into lines, goes into parse_worker_message and into the real
// ServerState::worker_message (on a temp SQLite store, through a fake Socket) after a valid
// hello. Nothing may crash or throw; a message the parser refuses must close the connection
// with a reason, and an accepted one must leave it open.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "server/protocol.h"
#include "server/state.h"
#include "store/store.h"

namespace {

using testlooper::server::ServerState;

class FakeSocket : public testlooper::server::Socket {
 public:
  explicit FakeSocket(int id) : id_(id) {}
  void send(const std::string& text) override { sent_ += text.size(); }
  void send_binary(const std::string& bytes) override { sent_ += bytes.size(); }
  void close(const std::string& reason) override {
    closed_ = true;
    reason_ = reason;
  }
  size_t buffered() const override { return 0; }
  void post(std::function<void()> task) override { task(); }
  const std::string& path() const override { return path_; }
  int id() const override { return id_; }
  bool closed() const { return closed_; }
  const std::string& reason() const { return reason_; }

 private:
  int id_;
  std::string path_ = "/api/worker";
  size_t sent_ = 0;
  bool closed_ = false;
  std::string reason_;
};

// One store and state for the whole run (a store per input would be far too slow).
ServerState& state() {
  static std::unique_ptr<testlooper::store::Store> store;
  static std::unique_ptr<ServerState> state;
  if (!state) {
    const std::string dir = std::filesystem::temp_directory_path().string() +
                            "/fuzz_worker_protocol-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir + "/logs");
    auto opened = testlooper::store::open_sqlite_store(dir + "/state.db");
    if (!opened.ok()) abort();
    store = std::move(*opened);
    testlooper::server::StateOptions options;
    options.logs_dir = dir + "/logs";
    options.artifacts_dir = dir + "/artifacts";
    options.repos_dir = dir + "/repos";
    state = std::make_unique<ServerState>(*store, options);
    if (!state->load().ok()) abort();
    // The local workers' token, registered in the store as a server registers it: a worker
    // whose token the store does not know is dropped as revoked.
    const std::string token_file = dir + "/worker.token";
    std::filesystem::remove(token_file);
    if (!state->secure_workers(token_file, 24).ok()) abort();
  }
  return *state;
}

// The token row a worker connected with the local workers' token gets.
const testlooper::store::TokenRow& local_token() {
  static const testlooper::store::TokenRow token = [] {
    ServerState& s = state();
    std::ifstream in(std::filesystem::temp_directory_path().string() + "/fuzz_worker_protocol-" +
                     std::to_string(::getpid()) + "/worker.token");
    std::string text;
    in >> text;
    const auto row = s.find_token(text);
    if (!row) abort();
    return *row;
  }();
  return token;
}

void feed(ServerState& s, const std::shared_ptr<FakeSocket>& socket, const std::string& text) {
  if (socket->closed()) return;
  const bool valid = testlooper::server::parse_worker_message(text).ok();
  s.worker_message(socket, text);
  if (!valid && (!socket->closed() || socket->reason().empty())) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int next_id = 0;
  const std::string input(reinterpret_cast<const char*>(data), size);
  (void)testlooper::server::parse_worker_message(input);
  ServerState& s = state();
  auto socket = std::make_shared<FakeSocket>(++next_id);
  s.worker_connected(socket, local_token());
  s.worker_message(socket, R"({"type":"hello","worker":"fuzz","cores":2,"ram_gb":2})");
  if (socket->closed()) abort();  // a valid hello from a worker not connected is accepted
  size_t start = 0;
  while (start <= input.size()) {
    const size_t end = std::min(input.find('\n', start), input.size());
    feed(s, socket, input.substr(start, end - start));
    start = end + 1;
  }
  s.worker_disconnected(socket);
  s.remove_socket(socket);
  return 0;
}
