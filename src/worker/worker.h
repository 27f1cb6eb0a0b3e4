// `testlooper worker`: an agent that connects to a server, receives fully resolved jobs, runs
// them with the runner and reports results (DESIGN.md "worker"). It reconnects forever when the
// server goes away and, on reconnect, reports what it is running and the results the server has
// not acknowledged yet (kept on disk under --dir, so they survive a restart of the worker too).
#pragma once

#include <string>

namespace testlooper::worker {

struct WorkerOptions {
  std::string server_url;  // "http://127.0.0.1:9081", "https://ci.example.com"
  int cores = 1;
  int ram_gb = 1;
  std::string dir;         // work dirs, local artifact store, source cache, unacked results
  std::string id;          // stable worker id (default: host name + dir)
  bool on_host = false;    // run Linux environments directly on this machine
  // This machine was booted from this AMI (`--ami`): it runs the AMI environments whose base_ami
  // it is, on the host (their setup script ran at boot), one job in all.
  std::string ami;
  // The server's repos dir and artifact store are readable and writable here (the server's own
  // local workers, or a shared filesystem): jobs then name them and the worker uses them
  // directly. Otherwise sources and artifacts travel over HTTP (worker/server_files.h).
  bool shared_disk = false;
  // When set, the worker stops (cancelling its runs) as soon as this process is no longer its
  // parent: the server that started it died (its PR_SET_PDEATHSIG is the first line of defence).
  int parent_pid = 0;
  // The server's worker secret, sent as `Authorization: Bearer <token>` on the WebSocket upgrade
  // and on every file request.
  std::string token;
  // For an https:// server (worker/server_connection.h TlsTrust): the CA certificates its
  // certificate is checked against ("" = the system's), or exactly the certificate it must have.
  std::string ca_file;
  std::string server_cert;
};

// Runs until SIGINT/SIGTERM; returns the exit status.
int run_worker(const WorkerOptions& options);

}  // namespace testlooper::worker
