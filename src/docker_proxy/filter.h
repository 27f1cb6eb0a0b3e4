// The scoped docker's request filter: decides, for one Docker Engine API request a test sent,
// whether it may reach the engine and in what form. Pure: what it must know of the engine (who
// owns an object, where a host path really leads) it asks through the Engine interface, so it
// is tested and fuzzed without an engine.
//
// A scope is one run. Everything a run creates carries the labels testlooper.scope=<run id>,
// testlooper.run=<run id> (and testlooper.owner=<owner>), and its names are prefixed with
// "tl-<run id>-". Only a listed set of endpoints passes (containers, exec, networks, volumes,
// images list/inspect/pull, ping/version/info); objects named in a path must carry the scope's
// label; create bodies are checked field by field against an allowlist and rewritten; list
// answers are filtered by the label. Anything else is refused with a Docker-style error.
// Thread-safety: the functions are thread-compatible; Engine implementations must be callable
// from the thread that calls plan_request.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace testlooper::docker_proxy {

// The labels every object created through the proxy carries.
inline constexpr const char* kScopeLabel = "testlooper.scope";
inline constexpr const char* kRunLabel = "testlooper.run";
inline constexpr const char* kOwnerLabel = "testlooper.owner";

// Requests larger than this are refused (create bodies are a few KiB).
inline constexpr size_t kMaxRequestBody = 1 << 20;
// List answers larger than this are refused rather than filtered.
inline constexpr size_t kMaxListAnswer = 32 << 20;

struct Scope {
  std::string run_id;              // the label value and the name prefix's core
  std::string owner;               // Command::owner ("" = none): kill_leftovers finds it
  std::vector<std::string> roots;  // absolute host dirs a bind mount may come from

  // "tl-<run id with [^A-Za-z0-9_.-] as _>-".
  std::string name_prefix() const;
};

enum class Kind { kContainer, kNetwork, kVolume, kExec };

// An object of the scope, as the engine knows it.
struct Owned {
  std::string id;    // what the engine's paths take (container/network/exec id, volume name)
  std::string name;  // its name (networks, volumes); "" for exec
};

// What the filter asks of the engine.
class Engine {
 public:
  virtual ~Engine() = default;
  // The object `ref` (an id, id prefix or name) if it exists and carries the scope's label;
  // nullopt when it does not exist or belongs to someone else (the test cannot tell them apart).
  virtual std::optional<Owned> find_owned(Kind kind, const std::string& ref) = 0;
  // Creates the named volume `name` (already prefixed) with the scope's labels unless it exists;
  // Error when it exists without the label, or the engine failed.
  virtual Status ensure_volume(const std::string& name) = 0;
  // The host path with every symlink resolved (realpath), nullopt when it does not exist.
  virtual std::optional<std::string> real_path(const std::string& path) = 0;
  // The host paths the (existing) container `id` bind-mounts; nullopt when it cannot be read.
  virtual std::optional<std::vector<std::string>> bind_sources(const std::string& id) = 0;
};

struct Request {
  std::string method;  // "GET", "POST"...
  std::string target;  // "/v1.43/containers/create?name=x"
  std::string body;
};

// What to do with a request.
struct Plan {
  enum class Action {
    kRefuse,      // answer `status` with {"message": error}
    kForward,     // send method target body to the engine, pass the answer through
    kFilterList,  // same, then keep only the scope's objects in the (JSON) answer
    kHijack,      // same, and once answered pass bytes both ways (attach, exec start)
  };
  Action action = Action::kRefuse;
  int status = 403;
  std::string error;
  std::string target;  // rewritten target (always normalised)
  std::string body;    // rewritten body (the original when not rewritten)
  Kind list_kind = Kind::kContainer;
  bool creates = false;  // creates a labelled object: a stopping proxy lets it finish
};

Plan plan_request(const Scope& scope, const Request& request, Engine& engine);

// The list answer `body` for `kind` (containers: array; networks: array; volumes: object with
// "Volumes") with only the objects whose labels carry the scope. Error on JSON it cannot read.
Result<std::string> filter_list(const Scope& scope, Kind kind, const std::string& body);

// The labels an object created for `scope` carries.
std::map<std::string, std::string> scope_labels(const Scope& scope);

}  // namespace testlooper::docker_proxy
