// The grammars of the ids that reach the server in URLs and messages. Every id is checked here
// before it touches a path, a query or a map (docs/security.md).
#pragma once

#include <string_view>

namespace testlooper {

// A run id as the server and the runner make them: 16 lowercase hex digits.
bool is_run_id(std::string_view id);

// An identity hash (a build's or a test's): SHA-256 as 64 lowercase hex digits.
bool is_identity_hash(std::string_view hash);

// A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
bool is_commit_sha(std::string_view sha);

// A repository's name as it becomes a directory under the repos folder and a URL segment: 1 to
// 100 of [A-Za-z0-9._-], not starting with '.' or '-' (GitHub's and GitLab's own grammar, minus
// hidden and option-like names).
bool is_repo_name(std::string_view name);

}  // namespace testlooper
