// The scoped docker: one Docker Engine API proxy per run, listening on a unix socket that the
// run's container sees as DOCKER_HOST. Each connection carries one request (the proxy asks the
// engine to close after answering), filtered by plan_request (filter.h); streams (logs, wait,
// pulls) and hijacked connections (attach, exec start) pass through byte for byte once allowed.
// When the run ends, stop() then remove_scope() remove everything the run created.
// Thread-safety: a DockerProxy serves connections on its own threads; stop() may be called from
// any thread, once or more. Uses core only (and Boost.Asio/Beast, nlohmann-json inside).
#pragma once

#include <memory>
#include <string>

#include "core/error.h"
#include "docker_proxy/filter.h"

namespace testlooper::docker_proxy {

class DockerProxy {
 public:
  // Listens on `socket_path` (replaced if it exists; its directory must exist; mode 0600) and
  // forwards allowed requests to the engine listening on the unix socket `engine_socket`.
  static Result<std::unique_ptr<DockerProxy>> start(Scope scope, const std::string& socket_path,
                                                    std::string engine_socket);
  virtual ~DockerProxy() = default;

  // Stops accepting, lets requests that create objects finish, ends every other connection
  // (streams, attaches), and removes the socket file. Idempotent; returns when all is done.
  virtual void stop() = 0;
};

// The engine's unix socket path: DOCKER_HOST's when it is "unix://...", /var/run/docker.sock
// when DOCKER_HOST is unset or empty; "" when DOCKER_HOST names something else (tcp, ssh).
std::string engine_socket_from_environment();

// Removes every object labelled testlooper.scope=<run_id>: containers (forced, with their
// anonymous volumes) first, then networks, then volumes. Error lists what could not be removed.
Status remove_scope(const std::string& engine_socket, const std::string& run_id);

}  // namespace testlooper::docker_proxy
