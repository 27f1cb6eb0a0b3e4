// Internal to docker_proxy (and the docker terminal, environments/terminal.h): plain calls to
// the Docker Engine API over its unix socket (one connection per call), and the filter's Engine
// over them.
#pragma once

#include <string>

#include "core/error.h"
#include "docker_proxy/filter.h"

namespace testlooper::docker_proxy {

struct EngineAnswer {
  int status = 0;
  std::string body;
};

// One request; the whole answer (at most kMaxListAnswer bytes). Error when the engine cannot be
// reached or answers something that is not HTTP.
Result<EngineAnswer> call_engine(const std::string& engine_socket, const std::string& method,
                                 const std::string& target, const std::string& body = "");

// The filter's Engine for `scope`, asking the engine at `engine_socket`.
class EngineLookups : public Engine {
 public:
  EngineLookups(const Scope& scope, std::string engine_socket)
      : scope_(scope), engine_socket_(std::move(engine_socket)) {}

  std::optional<Owned> find_owned(Kind kind, const std::string& ref) override;
  Status ensure_volume(const std::string& name) override;
  std::optional<std::string> real_path(const std::string& path) override;
  std::optional<std::vector<std::string>> bind_sources(const std::string& id) override;

 private:
  std::optional<Owned> find_one(Kind kind, const std::string& ref);

  const Scope& scope_;
  std::string engine_socket_;
};

}  // namespace testlooper::docker_proxy
