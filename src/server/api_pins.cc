// The pins endpoints (docs/api.md "Pins"): the list comes from the pin mover's snapshot, the
// update is answered once the mover has pushed (Handler::handle_async).
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "server/api.h"
#include "server/api_json.h"

namespace testlooper::server {

using nlohmann::json;
using reply::error;
using reply::ok;

std::optional<Api::PinPath> Api::pin_path(const std::string& path) {
  const std::string prefix = "/api/repos/";
  if (!path.starts_with(prefix)) return std::nullopt;
  const size_t slash = path.find('/', prefix.size());
  if (slash == std::string::npos || path.compare(slash, 10, "/branches/") != 0) return std::nullopt;
  // A pin's name has no '/' (FORMAT.md §4); a branch's may.
  const size_t pins = path.rfind("/pins/");
  if (pins == std::string::npos || pins < slash + 10) return std::nullopt;
  PinPath out{path.substr(prefix.size(), slash - prefix.size()),
              path.substr(slash + 10, pins - slash - 10), path.substr(pins + 6)};
  if (out.repo.empty() || out.branch.empty() || out.name.empty() ||
      out.name.find('/') != std::string::npos) {
    return std::nullopt;
  }
  return out;
}

Response Api::pins(const std::string& repo, const std::string& branch) {
  if (pin_mover_ == nullptr) return error(503, "pins are not tracked by this server");
  const auto list = pin_mover_->pins(repo, branch);
  if (!list) return error(404, "no branch '" + branch + "' in repo '" + repo + "' (yet)");
  json out = json::array();
  for (const auto& p : *list) {
    out.push_back({{"name", p.name},
                   {"repo", p.repo},
                   {"branch", p.branch},
                   {"commit", p.commit},
                   {"auto", p.auto_update},
                   {"head", p.head ? json(*p.head) : json(nullptr)},
                   {"behind", p.behind ? json(*p.behind) : json(nullptr)},
                   {"file", p.file}});
  }
  return ok(out);
}

bool Api::pin_update(const Request& request, Completion& done) {
  const auth::Principal who = principal(request);
  auto answer = [&](Response r) {
    audit(request, who, r.status);
    done([r = std::move(r)] { return r; });
    return true;
  };
  if (auto refusal = access_refusal(request, who)) return answer(*refusal);
  const auto where = pin_path(request.path);
  if (pin_mover_ == nullptr) return answer(error(503, "pins are not tracked by this server"));
  // What GET .../pins lists (the mover's look at the repos) is what may be moved: the server's
  // state may ingest the repo a moment later.
  if (!pin_mover_->pins(where->repo, where->branch)) {
    return answer(
        error(404, "no branch '" + where->branch + "' in repo '" + where->repo + "' (yet)"));
  }
  const json body = json::parse(request.body, nullptr, false);
  if (!body.is_object() || !body.contains("to") || !body["to"].is_string()) {
    return answer(error(400, "the body must be {\"to\": \"<40-hex sha>\" or \"branch-head\"}"));
  }
  const std::string to = body["to"].get<std::string>();
  if (to != "branch-head" && !is_commit_sha(to)) {
    return answer(
        error(400, "'to' must be a full commit id (40 lowercase hex digits) or \"branch-head\""));
  }
  auto make = [this, request, who, name = where->name](const PinUpdateResult& r) {
    Response response = r.status == 200 ? ok({{"commit", r.commit}, {"pin", name}, {"to", r.to}})
                                        : error(r.status, r.error);
    if (response.status >= 400) response.body = without_server_paths(response.body);
    audit(request, who, response.status);
    return response;
  };
  pin_mover_->update(where->repo, where->branch, where->name, to,
                     [done, make](PinUpdateResult r) mutable {
                       done([make, r = std::move(r)] { return make(r); });
                     });
  return true;
}

}  // namespace testlooper::server
