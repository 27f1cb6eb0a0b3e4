// testlooper: the one binary. Wires the subcommands together; see docs/cli.md.
#include <CLI/CLI.hpp>

#include "cli/command.h"

int main(int argc, char** argv) {
  CLI::App app{"TestLooper, the statistical CI", "testlooper"};
  app.require_subcommand(1);
  testlooper::cli::Action action;
  testlooper::cli::add_check_command(app, action);
  testlooper::cli::add_run_command(app, action);
  testlooper::cli::add_serve_command(app, action);
  testlooper::cli::add_worker_command(app, action);
  testlooper::cli::add_rebuild_command(app, action);
  testlooper::cli::add_token_command(app, action);
  testlooper::cli::add_shell_command(app, action);
  testlooper::cli::add_workspace_commands(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit with 2 (help exits 0).
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return action ? action() : 2;
}
