// `testlooper shell --server URL DEPLOYMENT`: this terminal attached to a deployment's
// (docs/cli.md).
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>

#include "cli/command.h"
#include "core/ids.h"
#include "core/token.h"
#include "worker/shell_client.h"

namespace testlooper::cli {

void add_shell_command(CLI::App& app, Action& action) {
  auto options = std::make_shared<worker::ShellOptions>();
  CLI::App* cmd = app.add_subcommand(
      "shell",
      "Attach this terminal to a deployment's terminal (an editor's API token in "
      "TESTLOOPER_TOKEN when the server asks for one)");
  cmd->add_option("--server", options->server_url, "The server's URL, e.g. http://127.0.0.1:9081")
      ->required();
  cmd->add_option("--ca-file", options->ca_file,
                  "PEM certificates of the authorities of an https:// server's certificate");
  cmd->add_option("deployment", options->deployment, "The deployment's id")->required();
  cmd->callback([options, &action] {
    if (!is_run_id(options->deployment))
      throw CLI::ValidationError("deployment", "a deployment id is 16 lowercase hex digits");
    if (const char* token = std::getenv("TESTLOOPER_TOKEN"); token && is_token_text(token))
      options->token = token;
    action = [options] { return worker::run_shell(*options); };
  });
}

}  // namespace testlooper::cli
