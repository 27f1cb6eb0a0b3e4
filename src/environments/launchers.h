// Internal to the environments module: the concrete launchers behind LauncherFactory.
#pragma once

#include <memory>
#include <string>

#include "environments/environments.h"

namespace testlooper::environments {

// "TESTLOOPER_RUN_ID=<run_id>": set in every host command's environment so that processes that
// leave the process group can still be found and killed.
std::string run_marker(const std::string& run_id);

// "TESTLOOPER_OWNER=<owner>" (Command::owner): set in host commands and docker clients so that
// kill_leftovers() finds what a dead process started.
std::string owner_marker(const std::string& owner);

// The label docker containers of `owner` carry: "testlooper.owner=<owner>".
std::string owner_label(const std::string& owner);

// A launcher running commands in containers of the (already built) image `tag`.
// `how` says whether the image was built now or found ("built", "cached") for describe().
std::shared_ptr<Launcher> make_docker_launcher(std::string docker, std::string tag,
                                               std::string how);

}  // namespace testlooper::environments
