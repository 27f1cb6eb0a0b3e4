// The proxy of deployments' exposed ports (docs/api.md "Deployments", portExpose): an HTTP
// request forwarded to a port on a deployment's worker, and a WebSocket bridged to one there.
// What TestLooper itself reads from a request (its Authorization, its cookies, its CSRF token)
// and the hop-by-hop headers are not forwarded; TestLooper's cookies cannot be set by the
// deployment either. Every connection to the deployment has a timeout (kPortProxySeconds).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "server/http.h"

namespace testlooper::server {

// Connecting, sending a request and reading its answer take at most this long each; a bridged
// WebSocket whose deployment end is silent this long (it is pinged after half of it) is closed.
inline constexpr double kPortProxySeconds = 30;
// What a bridged WebSocket may hold unsent, either way; a peer that reads slower is closed.
inline constexpr size_t kMaxPortSocketBuffer = 16 << 20;

// "/api/deployments/{id}/ports/{name}/{path}" split ({path} "/" when absent); nullopt for any
// other path. Nothing is validated: id and name as they came.
struct PortPath {
  std::string id;
  std::string name;
  std::string path;
};
std::optional<PortPath> parse_port_path(const std::string& path);

// The operator log's line (log_event "deployment_port") for a use of a deployment's port: who,
// the deployment, the port, the method ("WEBSOCKET" for a WebSocket), the path and the status.
void log_port_use(const std::string& who, const PortPath& where, const std::string& method,
                  int status);

// The methods a deployment's port is reached with: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS.
bool is_proxied_method(const std::string& method);

// One request (or WebSocket upgrade) to a deployment's port.
struct PortRequest {
  std::string host;  // the worker's address
  int port = 0;
  std::string method;
  std::string target;                          // the path %-encoded again, and the query
  std::map<std::string, std::string> headers;  // as they came (lower-case names); filtered here
  std::string body;
  std::string client;  // X-Forwarded-For
  std::string prefix;  // X-Forwarded-Prefix: where the port is on this server
};

// `request` (a Request to a PortPath) as forwarded to host:port.
PortRequest port_request(const Request& request, const PortPath& where, const std::string& host,
                         int port);

// Sends `request` and returns the answer (at most kMaxBodyBytes), or a 502 saying why there is
// none. Blocks (a thread of its own, never the io thread).
Response forward_to_port(const PortRequest& request);

// A WebSocket (`client`, the server's end) bridged to one at the deployment's port. Made on the
// io thread; run() runs on a thread of its own; send() and close() are called on the io thread
// for what the client sends and when it goes.
class PortBridge {
 public:
  virtual ~PortBridge() = default;
  // Connects, then relays both ways until either end closes or `stop` is set. `opened` is called
  // once (on this thread) with 101 when the deployment accepted the WebSocket, else 502.
  virtual void run(const std::atomic<bool>& stop) = 0;
  // A message of the client's (text, or binary) for the deployment.
  virtual void send(const std::string& message, bool binary) = 0;
  // The client went: the deployment's end is closed.
  virtual void close() = 0;
};
std::shared_ptr<PortBridge> make_port_bridge(std::shared_ptr<Socket> client, PortRequest request,
                                             std::function<void(int status)> opened);

}  // namespace testlooper::server
