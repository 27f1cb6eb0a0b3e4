// Listing the owner's or group's repositories (every page). Everything in an answer is checked
// field by field: a name becomes a directory under the repos folder, a clone URL an argument of
// git.
#include <fmt/format.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "hosting/host_impl.h"

namespace testlooper::hosting {
namespace {

using nlohmann::json;

constexpr int kMaxPages = 100;  // 100 per page: 10,000 repositories

// "scheme://host[:port]" of `url`, or "" when it has no scheme.
std::string origin_of(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  const size_t path = url.find('/', scheme + 3);
  return url.substr(0, path);
}

// Percent-encodes everything but unreserved characters (a GitLab group path as one segment).
std::string url_encode(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// A URL git may clone from: https://, http://, ssh:// or scp-like git@host:path. Not ext::,
// file:// or anything that would start with '-' (an option of git).
bool is_clone_url(const std::string& url) {
  if (url.empty() || url.size() > 2048) return false;
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  return url.starts_with("https://") || url.starts_with("http://") || url.starts_with("ssh://") ||
         (url.starts_with("git@") && url.find(':') != std::string::npos);
}

// A short text field (full name, default branch, web URL): a string without control characters.
std::optional<std::string> text_field(const json& item, const char* key, size_t max = 1024) {
  auto it = item.find(key);
  if (it == item.end() || !it->is_string()) return std::nullopt;
  std::string text = it->get<std::string>();
  if (text.size() > max) return std::nullopt;
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) return std::nullopt;
  }
  return text;
}

struct Pages {
  long status = 0;  // of the first page that was not 200 (0: all were)
  std::string message;
  std::vector<json> items;
};

// GETs `url` and every rel="next" page after it. The token's headers only go to `url`'s origin:
// a next link elsewhere ends the listing with an error.
Result<Pages> get_pages(std::string url, const std::vector<std::string>& headers,
                        double timeout_seconds, const std::string& where) {
  Pages pages;
  const std::string origin = origin_of(url);
  for (int page = 0; !url.empty(); ++page) {
    if (page == kMaxPages) {
      return Error{where, fmt::format("more than {} pages of repositories", kMaxPages)};
    }
    if (origin_of(url) != origin) return Error{where, "a next page on another host: " + url};
    RestRequest request;
    request.url = url;
    request.headers = headers;
    request.timeout_seconds = timeout_seconds;
    auto answer = rest_call(request, where);
    if (!answer.ok()) return answer.error();
    if (answer->status != 200) {
      pages.status = answer->status;
      const json body = json::parse(answer->body, nullptr, false);
      if (body.is_object() && body.contains("message") && body["message"].is_string()) {
        pages.message = body["message"].get<std::string>().substr(0, 200);
      }
      return pages;
    }
    const json body = json::parse(answer->body, nullptr, false);
    if (!body.is_array()) return Error{where, "a page of repositories is not a JSON array"};
    for (const auto& item : body) pages.items.push_back(item);
    url = next_link(answer->header("link").value_or(""));
  }
  return pages;
}

Error refused(const std::string& where, const std::string& url, const Pages& pages) {
  return Error{where, fmt::format("GET {}: HTTP {}{}", url, pages.status,
                                  pages.message.empty() ? "" : " (" + pages.message + ")")};
}

// `options.clone_url` applied: <clone_url>/<full_name>.git, or <clone_url>:<full_name>.git for
// an scp-like git@host.
std::string clone_url_for(const HostOptions& options, const std::string& listed,
                          const std::string& full_name) {
  if (options.clone_url.empty()) return listed;
  std::string base = options.clone_url;
  while (!base.empty() && (base.back() == '/' || base.back() == ':')) base.pop_back();
  const bool scp = base.find("://") == std::string::npos && base.find(':') == std::string::npos &&
                   base.find('@') != std::string::npos;
  return base + (scp ? ":" : "/") + full_name + ".git";
}

// One listed repository, or nullopt (and a warning) when a field is missing or not valid.
std::optional<HostedRepo> to_repo(const json& item, const HostOptions& options, bool gitlab,
                                  const std::string& where) {
  if (!item.is_object()) return std::nullopt;
  auto archived = item.find("archived");
  if (archived != item.end() && archived->is_boolean() && archived->get<bool>())
    return std::nullopt;
  HostedRepo repo;
  auto name = text_field(item, gitlab ? "path" : "name", 100);
  auto full = text_field(item, gitlab ? "path_with_namespace" : "full_name", 512);
  auto url = text_field(item, gitlab ? "http_url_to_repo" : "clone_url", 2048);
  if (!name || !is_repo_name(*name)) {
    std::cerr << where << ": skipping a repository whose name is not a valid repo name"
              << (name ? ": '" + name->substr(0, 100) + "'" : std::string()) << std::endl;
    return std::nullopt;
  }
  repo.name = *name;
  repo.full_name = full.value_or("");
  if (repo.full_name.empty() || repo.full_name.find("..") != std::string::npos) {
    std::cerr << where << ": skipping '" << repo.name << "': no valid full name" << std::endl;
    return std::nullopt;
  }
  repo.clone_url = clone_url_for(options, url.value_or(""), repo.full_name);
  if (!is_clone_url(repo.clone_url)) {
    std::cerr << where << ": skipping '" << repo.name
              << "': its clone URL is not https://, http://, ssh:// or git@host:path" << std::endl;
    return std::nullopt;
  }
  if (gitlab) {
    auto id = item.find("id");
    if (id == item.end() || !id->is_number_integer()) {
      std::cerr << where << ": skipping '" << repo.name << "': no project id" << std::endl;
      return std::nullopt;
    }
    repo.id = std::to_string(id->get<int64_t>());
  }
  repo.web_url = text_field(item, gitlab ? "web_url" : "html_url", 2048).value_or("");
  repo.default_branch = text_field(item, "default_branch", 255).value_or("");
  return repo;
}

// Valid repos of `items`, sorted by name; a name listed twice is kept once (the first) with a
// warning.
std::vector<HostedRepo> to_repos(const std::vector<json>& items, const HostOptions& options,
                                 bool gitlab, const std::string& where) {
  std::map<std::string, HostedRepo> by_name;
  for (const auto& item : items) {
    auto repo = to_repo(item, options, gitlab, where);
    if (!repo) continue;
    auto [it, inserted] = by_name.emplace(repo->name, *repo);
    if (!inserted) {
      std::cerr << where << ": '" << repo->full_name << "' has the same name as '"
                << it->second.full_name << "': only the first is mirrored" << std::endl;
    }
  }
  std::vector<HostedRepo> repos;
  for (auto& [name, repo] : by_name) repos.push_back(std::move(repo));
  return repos;
}

std::string api_base(const HostOptions& options) {
  std::string base = options.api_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

}  // namespace

Result<std::vector<HostedRepo>> GitHubHost::list_repos() {
  const std::string where = "GitHub";
  const std::string owner = url_encode(options_.owner);
  // An organisation's repositories; a user's when the owner is no organisation (404).
  std::string url = api_base(options_) + "/orgs/" + owner + "/repos?per_page=100";
  auto pages = get_pages(url, headers(), options_.timeout_seconds, where);
  if (!pages.ok()) return pages.error();
  if (pages->status == 404) {
    url = api_base(options_) + "/users/" + owner + "/repos?per_page=100";
    pages = get_pages(url, headers(), options_.timeout_seconds, where);
    if (!pages.ok()) return pages.error();
  }
  if (pages->status != 0) return refused(where, url, *pages);
  return to_repos(pages->items, options_, false, where);
}

Result<std::vector<HostedRepo>> GitLabHost::list_repos() {
  const std::string where = "GitLab";
  const std::string url = api_base(options_) + "/groups/" + url_encode(options_.owner) +
                          "/projects?include_subgroups=true&per_page=100";
  auto pages = get_pages(url, headers(), options_.timeout_seconds, where);
  if (!pages.ok()) return pages.error();
  if (pages->status != 0) return refused(where, url, *pages);
  return to_repos(pages->items, options_, true, where);
}

}  // namespace testlooper::hosting
