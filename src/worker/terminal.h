// A terminal of a host deployment (docs/api.md "Deployments"): a shell on a pseudo-terminal
// (forkpty) with the deployment's environment variables and working directory, in a session of
// its own; a docker deployment's is environments::open_docker_terminal's, behind the same
// interface. The worker reads its output and writes keystrokes; kill() ends the shell's process
// group. Not thread-safe: the owner serialises calls (read() may run on its own thread while
// another thread writes or resizes, which the kernel allows).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "environments/terminal.h"

namespace testlooper::worker {

class Pty final : public environments::Terminal {
 public:
  Pty() = default;
  ~Pty() override { kill(); }
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;

  // Starts `bash` (no profile or rc files: the deployment's variables as given) in `cwd` with
  // exactly `environment` ("NAME=value" entries; TERM added when missing) on a new terminal of
  // `cols` x `rows`.
  Status spawn(const std::vector<std::string>& environment, const std::string& cwd, int cols,
               int rows);
  bool running() const override { return master_ >= 0; }
  // Up to `max` bytes of output, waiting at most `timeout_ms`: "" when none came; nullopt-like
  // `ended` true once the shell is gone (EOF or EIO on the terminal).
  std::string read(size_t max, int timeout_ms, bool& ended) override;
  void write(const std::string& bytes) override;
  // Sets the terminal's size (the shell gets SIGWINCH). Readline reads the size and writes it
  // back each time it starts reading a line: a resize that falls between the two is undone. So
  // for kResizeKeptForMs after a resize, read() and write() put the size back when it differs.
  void resize(int cols, int rows) override;
  static constexpr int64_t kResizeKeptForMs = 3000;
  // Ends the shell and what it started in its process group, and reaps it.
  void kill() override;

 private:
  void keep_size();

  int master_ = -1;
  // The last resize (cols << 16 | rows) and until when (steady clock, ms) keep_size() holds it;
  // atomics: resize() and read() run on different threads.
  std::atomic<int64_t> wanted_size_{0};
  std::atomic<int64_t> keep_size_until_ms_{0};
  pid_t child_ = -1;
};

// The "NAME=value" entries of `env -0`'s output (NUL-separated).
std::vector<std::string> split_environment(const std::string& nul_separated);

}  // namespace testlooper::worker
