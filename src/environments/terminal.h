// A terminal in an environment (docs/api.md "Deployments"): an interactive shell on a
// pseudo-terminal whose output the worker reads and whose keystrokes it writes. Two kinds share
// this interface, so that the worker's terminal plumbing is one: a forkpty shell on this machine
// (worker::Pty, host environments) and a Docker Engine exec with a TTY in a run's container
// (open_docker_terminal, docker environments).
// Thread-safety: read() runs on one thread while another writes or resizes; kill() and
// destruction on the reading thread.
#pragma once

#include <memory>
#include <string>

#include "core/error.h"

namespace testlooper::environments {

class Terminal {
 public:
  virtual ~Terminal() = default;

  // False once kill() ran (and before a Pty's spawn()).
  virtual bool running() const = 0;
  // Up to `max` bytes of output, waiting at most `timeout_ms`: "" when none came; `ended` true
  // once the shell is gone.
  virtual std::string read(size_t max, int timeout_ms, bool& ended) = 0;
  virtual void write(const std::string& bytes) = 0;
  // The shell gets SIGWINCH; keystrokes written after it see the new size. Neither blocks on
  // the Docker engine (a docker exec sends both, in order, from a thread of its own).
  virtual void resize(int cols, int rows) = 0;
  // Ends the terminal (a Pty: the shell's process group; a docker exec: its stream, the shell
  // then reads EOF) and frees what it holds.
  virtual void kill() = 0;
};

// A shell (bash without profile or rc files when the image has it, else sh) in the newest
// running container labelled testlooper.run=<run_id> by the docker launcher (never one a scoped
// docker created), with its environment (the run's variables: TEST_INPUTS...) and TERM, in the
// directory $TEST_INPUTS, on a terminal of `cols` x `rows`: the engine's exec create, start
// (a hijacked stream: raw bytes both ways) and resize, over the engine's unix socket
// (docker_proxy::engine_socket_from_environment()). nullptr when no such container runs (yet,
// or any more); Error when the engine cannot be reached or refuses the exec.
Result<std::unique_ptr<Terminal>> open_docker_terminal(const std::string& run_id, int cols,
                                                       int rows);

}  // namespace testlooper::environments
