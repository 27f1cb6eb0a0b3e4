#include "hosting/git_cli.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <cstdlib>

#include "environments/child_process.h"

namespace testlooper::hosting {
namespace {

constexpr size_t kMaxOutput = 1 << 20;

std::string base64(const std::string& text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Single-quoted for sh (GIT_SSH_COMMAND is run by a shell).
std::string sh_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Result<GitOutput> run_git(const std::vector<std::string>& args, const std::string& dir,
                          const GitCredentials& credentials, double timeout_seconds,
                          const std::atomic<bool>* cancel) {
  std::vector<std::string> env;
  for (const char* name :
       {"PATH", "HOME", "TMPDIR", "http_proxy", "https_proxy", "HTTPS_PROXY", "no_proxy",
        "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "SSH_AUTH_SOCK"}) {
    if (const char* v = std::getenv(name)) env.push_back(std::string(name) + "=" + v);
  }
  if (std::getenv("PATH") == nullptr) env.push_back("PATH=/usr/bin:/bin");
  env.push_back("LC_ALL=C");
  env.push_back("GIT_TERMINAL_PROMPT=0");
  env.push_back("GIT_CONFIG_NOSYSTEM=1");
  env.push_back("GIT_ASKPASS=/bin/false");
  env.push_back("SSH_ASKPASS=/bin/false");
  int count = 0;
  auto config = [&](const std::string& key, const std::string& value) {
    env.push_back(fmt::format("GIT_CONFIG_KEY_{}={}", count, key));
    env.push_back(fmt::format("GIT_CONFIG_VALUE_{}={}", count, value));
    ++count;
  };
  // No credential helper of the user's may answer instead of (or record) our token.
  config("credential.helper", "");
  if (!credentials.token.empty()) {
    config("http.extraHeader",
           "Authorization: Basic " + base64(credentials.user + ":" + credentials.token));
  }
  env.push_back(fmt::format("GIT_CONFIG_COUNT={}", count));
  std::string ssh = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new";
  if (!credentials.ssh_key.empty())
    ssh += " -o IdentitiesOnly=yes -i " + sh_quote(credentials.ssh_key);
  env.push_back("GIT_SSH_COMMAND=" + ssh);
  std::vector<std::string> argv = {"git"};
  argv.insert(argv.end(), args.begin(), args.end());
  environments::CaptureOptions options;
  options.env = std::move(env);
  options.working_dir = dir;
  options.timeout_seconds = timeout_seconds;
  options.max_output = kMaxOutput;
  options.cancel = cancel;
  auto captured = environments::run_and_capture(argv, "", options);
  const std::string what = "git " + (args.empty() ? std::string() : args[0]);
  if (!captured.ok()) return Error{what, captured.error().message};
  if (captured->timed_out && cancel != nullptr && cancel->load()) return Error{what, "cancelled"};
  if (captured->timed_out) {
    return Error{what, fmt::format("no end after {:.0f} s (killed)", timeout_seconds)};
  }
  return GitOutput{captured->exit_code, std::move(captured->output)};
}

Error git_error(const std::string& where, const std::vector<std::string>& args,
                const GitOutput& output, const GitCredentials& credentials) {
  std::string text = output.output;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  // The last few lines say why; the token never appears in what we log or show.
  size_t start = text.size();
  for (int lines = 0; lines < 4 && start > 0; ++lines) {
    start = text.rfind('\n', start - 1);
    if (start == std::string::npos) {
      start = 0;
      break;
    }
  }
  text = text.substr(start);
  while (!text.empty() && text.front() == '\n') text.erase(0, 1);
  for (const std::string& secret :
       {credentials.token, base64(credentials.user + ":" + credentials.token)}) {
    if (credentials.token.empty()) break;
    for (size_t at; (at = text.find(secret)) != std::string::npos;)
      text.replace(at, secret.size(), "***");
  }
  return Error{where, fmt::format("git {} failed (exit {}): {}", args.empty() ? "" : args[0],
                                  output.exit_code, text)};
}

}  // namespace testlooper::hosting
