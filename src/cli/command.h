// The subcommands of the `testlooper` binary. Each `add_*_command` registers its options on the
// app and, when its subcommand is chosen, stores in `action` the function main() runs; that
// function returns the process exit status. main() only wires these together.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace testlooper::cli {

using Action = std::function<int()>;

void add_check_command(CLI::App& app, Action& action);
void add_run_command(CLI::App& app, Action& action);
void add_serve_command(CLI::App& app, Action& action);
void add_worker_command(CLI::App& app, Action& action);
void add_rebuild_command(CLI::App& app, Action& action);
void add_token_command(CLI::App& app, Action& action);
void add_shell_command(CLI::App& app, Action& action);
// checkout, status and fetch: the workspace (cli/workspace.h).
void add_workspace_commands(CLI::App& app, Action& action);

}  // namespace testlooper::cli
