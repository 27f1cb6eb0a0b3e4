// LauncherFactory: picks host or docker per environment and builds docker images once.
#include "core/hash.h"
#include "environments/child_process.h"
#include "environments/environments.h"
#include "environments/launchers.h"

namespace testlooper::environments {
namespace {

// The last `lines` lines of `text`, for error messages that quote a build log.
std::string tail(const std::string& text, int lines) {
  size_t pos = text.size();
  while (lines-- > 0 && pos > 0) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

Status check_engine(const std::string& docker) {
  Result<Captured> version =
      run_and_capture({docker, "version", "--format", "{{.Server.Version}}"});
  if (!version.ok()) {
    return Error{"docker", "the docker CLI is not installed (" + version.error().message +
                               "); install docker.io or pass --on-host"};
  }
  if (version->exit_code != 0) {
    return Error{"docker", "no docker engine is reachable (" + tail(version->output, 2) +
                               "); start one (scripts/docker-env) or pass --on-host"};
  }
  return {};
}

}  // namespace

std::string Exit::to_string() const {
  switch (kind) {
    case Kind::kExited:
      return "exit " + std::to_string(code);
    case Kind::kSignaled:
      return "signal " + std::to_string(code);
    case Kind::kTimedOut:
      return "timed out";
    case Kind::kKilled:
      return "killed";
  }
  return "?";
}

std::string dockerfile_text(const definitions::Environment& environment) {
  std::string text = environment.dockerfile_contents;
  if (!environment.setup_script_contents.empty()) {
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += environment.setup_script_contents;
  }
  return text;
}

std::string image_tag(const std::string& dockerfile) {
  return "testlooper-env:" + sha256_hex(dockerfile).substr(0, 12);
}

LauncherFactory::LauncherFactory(EnvironmentOptions options)
    : options_(std::move(options)), host_(make_host_launcher()) {}

bool LauncherFactory::runs_dockerfiles() const {
  return options_.on_host || check_engine(options_.docker).ok();
}

void LauncherFactory::kill_leftovers(const std::vector<std::string>& owners) const {
  environments::kill_leftovers(owners, options_.docker);
}

Result<std::shared_ptr<Launcher>> LauncherFactory::launcher_for(
    const definitions::Environment& environment) {
  const std::string& where = environment.name;
  if (environment.platform == "windows") {
    return Error{where, "windows environments are not runnable on this Linux machine"};
  }
  if (environment.image_kind == "ami") {
    if (!options_.ami.empty() && environment.base_ami == options_.ami) return host_;
    return Error{where, "AMI environments are not runnable locally (they need a cloud worker)"};
  }
  if (environment.image_kind == "host" || options_.on_host) return host_;
  if (environment.image_kind != "dockerfile") {
    return Error{where, "unknown image kind '" + environment.image_kind + "'"};
  }
  Result<std::shared_ptr<Launcher>> launcher = docker_launcher(dockerfile_text(environment));
  if (!launcher.ok()) return Error{where, launcher.error().to_string()};
  return launcher;
}

Result<std::shared_ptr<Launcher>> LauncherFactory::docker_launcher(const std::string& dockerfile) {
  const std::string tag = image_tag(dockerfile);
  std::lock_guard lock(mutex_);
  if (auto it = images_.find(tag); it != images_.end()) {
    if (it->second.ok() || std::chrono::steady_clock::now() - failed_at_[tag] < kFailureMemory) {
      return it->second;
    }
    images_.erase(it);  // an old failure: the engine or the Dockerfile's base may be fixed
  }
  auto remember = [&](Result<std::shared_ptr<Launcher>> result) {
    images_.emplace(tag, result);
    if (!result.ok()) failed_at_[tag] = std::chrono::steady_clock::now();
    return result;
  };
  if (Status engine = check_engine(options_.docker); !engine.ok()) return remember(engine.error());
  Result<Captured> inspect = run_and_capture({options_.docker, "image", "inspect", tag});
  if (inspect.ok() && inspect->exit_code == 0) {
    return remember(make_docker_launcher(options_.docker, tag, "cached"));
  }
  Result<Captured> build =
      run_and_capture({options_.docker, "build", "--force-rm", "--tag", tag, "-"}, dockerfile);
  if (!build.ok()) return remember(build.error());
  if (build->exit_code != 0) {
    return remember(
        Error{"docker build " + tag, "image build failed:\n" + tail(build->output, 15)});
  }
  return remember(make_docker_launcher(options_.docker, tag, "built"));
}

}  // namespace testlooper::environments
