// libFuzzer target over the scoped docker's request filter (issue 15): what a test in a docker
// environment sends its proxy. Input: method line, target line, then the body. The filter never
// throws nor crashes; a plan that passes names only the fake engine's own objects by id, keeps
// the version prefix syntax, and a create it lets through carries the scope's label. The
// second half of the input is also fed to filter_list as an engine answer.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "docker_proxy/filter.h"

namespace dp = testlooper::docker_proxy;

namespace {

class FakeEngine : public dp::Engine {
 public:
  std::optional<dp::Owned> find_owned(dp::Kind, const std::string& ref) override {
    if (ref == "mine" || ref == "tl-run-mine") return dp::Owned{"0123abcd", "tl-run-mine"};
    return std::nullopt;
  }
  testlooper::Status ensure_volume(const std::string&) override { return {}; }
  std::optional<std::string> real_path(const std::string& path) override {
    if (path.rfind("/run/dir/link", 0) == 0) return "/etc" + path.substr(13);
    return path;
  }
  std::optional<std::vector<std::string>> bind_sources(const std::string&) override {
    return std::vector<std::string>{"/run/dir/x", "/run/dir/link"};
  }
};

std::string next_line(std::string& text) {
  const size_t newline = text.find('\n');
  std::string line = text.substr(0, newline);
  text = newline == std::string::npos ? "" : text.substr(newline + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  const dp::Scope scope{"run", "owner", {"/run/dir"}};
  dp::Request request;
  request.method = next_line(input);
  request.target = next_line(input);
  request.body = input;
  FakeEngine engine;
  const dp::Plan plan = dp::plan_request(scope, request, engine);
  if (plan.action == dp::Plan::Action::kRefuse) {
    if (plan.status < 400 || plan.status > 499 || plan.error.empty()) abort();
  } else {
    if (plan.target.empty() || plan.target[0] != '/') abort();
    const std::string path = plan.target.substr(0, plan.target.find('?'));
    if (path.find("/../") != std::string::npos || path.find("//") != std::string::npos ||
        path.find('%') != std::string::npos) {
      abort();
    }
    if (plan.creates && plan.target.find("/images/") == std::string::npos) {
      const auto body = nlohmann::json::parse(plan.body, nullptr, false);
      if (!body.is_object()) abort();
      const auto labels = body.find("Labels");
      if (labels == body.end() || !labels->is_object() ||
          labels->value(dp::kScopeLabel, "") != "run") {
        abort();
      }
      if (plan.body.find("/etc") != std::string::npos &&
          request.body.find("/etc") == std::string::npos) {
        abort();  // a resolved bind source outside the run passed
      }
    }
  }
  (void)dp::filter_list(scope, dp::Kind::kContainer, input);
  (void)dp::filter_list(scope, dp::Kind::kVolume, input);
  return 0;
}
