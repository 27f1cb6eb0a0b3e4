// Sign-in with GitHub or GitLab (OAuth 2 authorization code flow; docs/configuration.md
// "Access"): the provider's authorize URL, and the exchange of a code for the user's login and
// membership of the configured organisation or group, over libcurl. Every provider answer is
// hostile: sizes are limited, JSON is checked field by field, calls time out. sign_in() blocks:
// call it off the io thread. Thread-safe.
#pragma once

#include <atomic>
#include <string>

#include "core/error.h"
#include "server/server.h"

namespace testlooper::server {

struct OAuthSettings {
  std::string provider;   // "github" or "gitlab"
  std::string key;        // the OAuth application's client id
  std::string secret;     // its client secret
  std::string login_url;  // github_login_url or gitlab_login_url, without a trailing '/'
  std::string api_url;    // github_api_url or gitlab_api_url, without a trailing '/'
  std::string org;        // owner (GitHub organisation) or group (GitLab); "" = no member check
  double timeout_seconds = 10;  // the whole exchange (every call to the provider) within this
};

OAuthSettings oauth_settings(const ServerOptions& options);

// Where /auth/login sends the browser.
std::string authorize_url(const OAuthSettings& settings, const std::string& redirect_uri,
                          const std::string& state);

struct SignedIn {
  std::string login;
  bool member = false;  // of settings.org
};

// Exchanges `code` (from the provider's redirect to `redirect_uri`) for a token, reads the user
// and whether they are a member of settings.org. An Error's message is fit to show the user
// (never a secret). Gives up early, with an Error, once `stop` is true.
Result<SignedIn> sign_in(const OAuthSettings& settings, const std::string& code,
                         const std::string& redirect_uri, const std::atomic<bool>& stop);

}  // namespace testlooper::server
