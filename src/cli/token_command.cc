// `testlooper token create|list|revoke`: API tokens in a server's store (docs/cli.md). They
// work while the server runs (SQLite WAL, busy timeout); the server looks tokens up at every
// request, so a revoke takes effect at the next one. Each change is audited (who = "cli").
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "auth/auth.h"
#include "cli/command.h"
#include "server/protocol.h"
#include "server/tokens.h"
#include "store/store.h"

namespace testlooper::cli {
namespace {

// The store of the server whose data dir is `data` (made when it has none yet: a worker token
// may be made before the server's first start).
Result<std::unique_ptr<store::Store>> open_store(const std::string& data) {
  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  if (ec) return Error{data, "cannot create the data dir: " + ec.message()};
  return store::open_sqlite_store(data + "/state.db");
}

std::string time_text(double seconds) {
  if (seconds <= 0) return "never";
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

void audit(store::Store& store, const std::string& what, int status) {
  (void)store.add_audit(
      {0, server::now_seconds(), "cli", "admin", "cli", "CLI", what, "local", status});
}

int fail(const std::string& message, int code) {
  std::cerr << "testlooper token: " << message << "\n";
  return code;
}

int create(const std::string& data, const std::string& name, const std::string& role) {
  if (const std::string why = server::token_name_error(name); !why.empty()) {
    return fail(why, auth::is_token_name(name) ? 1 : 2);
  }
  auto store = open_store(data);
  if (!store.ok()) return fail(store.error().to_string(), 2);
  Result<std::string> token = server::make_token(**store, name, role, server::now_seconds());
  if (!token.ok()) return fail(token.error().to_string(), 2);
  audit(**store, "token create " + name + " (" + role + ")", token->empty() ? 409 : 200);
  if (token->empty()) return fail("a token named '" + name + "' exists already", 1);
  std::cout << *token << std::endl;
  return 0;
}

int list(const std::string& data) {
  auto store = open_store(data);
  if (!store.ok()) return fail(store.error().to_string(), 2);
  auto tokens = (*store)->tokens();
  if (!tokens.ok()) return fail(tokens.error().to_string(), 2);
  std::cout << fmt::format("{:<24} {:<8} {:<22} {}\n", "NAME", "ROLE", "CREATED", "LAST USED");
  for (const store::TokenRow& t : *tokens) {
    std::cout << fmt::format("{:<24} {:<8} {:<22} {}\n", t.name, t.role, time_text(t.created),
                             time_text(t.last_used));
  }
  return 0;
}

int revoke(const std::string& data, const std::string& name) {
  if (const std::string why = server::revoke_error(name); !why.empty()) return fail(why, 1);
  auto store = open_store(data);
  if (!store.ok()) return fail(store.error().to_string(), 2);
  Result<bool> revoked = (*store)->revoke_token(name);
  if (!revoked.ok()) return fail(revoked.error().to_string(), 2);
  audit(**store, "token revoke " + name, *revoked ? 200 : 404);
  if (!*revoked) return fail("there is no token named '" + name + "'", 1);
  std::cout << "revoked " << name << std::endl;
  return 0;
}

}  // namespace

void add_token_command(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand("token", "Create, list and revoke API tokens");
  cmd->require_subcommand(1);
  auto data = std::make_shared<std::string>("testlooper-data");
  auto name = std::make_shared<std::string>();
  auto role = std::make_shared<std::string>();
  const std::string data_help = "The server's data dir (default ./testlooper-data)";

  CLI::App* c = cmd->add_subcommand("create", "Make a token and print it (once) on stdout");
  c->add_option("--data", *data, data_help);
  c->add_option("--name", *name, "Its name: 1 to 64 of A-Z a-z 0-9 . _ -")->required();
  c->add_option("--role", *role, "viewer, editor, admin or worker")
      ->required()
      ->check(CLI::IsMember({"viewer", "editor", "admin", "worker"}));
  c->callback([=, &action] { action = [=] { return create(*data, *name, *role); }; });

  CLI::App* l = cmd->add_subcommand("list", "Names, roles, creation and last use (no secrets)");
  l->add_option("--data", *data, data_help);
  l->callback([=, &action] { action = [=] { return list(*data); }; });

  CLI::App* r = cmd->add_subcommand("revoke", "Delete a token: refused from the next request on");
  r->add_option("--data", *data, data_help);
  r->add_option("name", *name, "The token's name")->required();
  r->callback([=, &action] { action = [=] { return revoke(*data, *name); }; });
}

}  // namespace testlooper::cli
