// `testlooper shell`: attaches this terminal to a deployment's terminal on a server (docs/cli.md
// "shell"): keystrokes go out in binary WebSocket frames, the screen comes back in them, and the
// window's size follows SIGWINCH ({"type": "resize", "cols", "rows"} text frames). With a
// terminal on stdin it is put in raw mode (restored at exit). Ends when the server closes the
// terminal (the deployment stopped) or stdin ends.
#pragma once

#include <string>

namespace testlooper::worker {

struct ShellOptions {
  std::string server_url;  // "http://127.0.0.1:9081", "https://ci.example.com"
  std::string deployment;  // its id
  std::string token;       // an API token of the editor role ("" = none: authentication off)
  std::string ca_file;     // for https:// ("" = the system's authorities)
};

// Returns the exit status: 0 when the terminal or stdin ended, 1 when the server refused or the
// connection failed (said on stderr).
int run_shell(const ShellOptions& options);

}  // namespace testlooper::worker
