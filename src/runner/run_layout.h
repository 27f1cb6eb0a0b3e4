// Where a run's files live and what variables its commands see (FORMAT.md §11). Internal.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "core/error.h"
#include "runner/runner.h"
#include "runner/work_dirs.h"

namespace testlooper::runner {

// The directories of one run: a slot claimed from a WorkDirPool (returned, emptied, on
// destruction) and the shared ccache dir.
class RunLayout {
 public:
  // Claims empty inputs/, output/, scratch/ and control/ directories from `pool` and creates
  // `ccache_dir` if needed. REQUIRES: `pool` outlives the layout.
  static Result<RunLayout> create(WorkDirPool& pool, const std::filesystem::path& ccache_dir);

  RunLayout(RunLayout&& other) noexcept;
  RunLayout& operator=(RunLayout&&) = delete;
  ~RunLayout();

  std::filesystem::path root;
  std::filesystem::path inputs;
  std::filesystem::path output;
  std::filesystem::path scratch;
  std::filesystem::path control;
  std::filesystem::path ccache;

 private:
  RunLayout() = default;

  WorkDirPool* pool_ = nullptr;
};

// The variables of a run: the environment's, then the object's (winning), then the run-time
// ones of FORMAT.md §11 (winning over both). Values are substituted (see substitute_runtime).
std::map<std::string, std::string> run_variables(const RunRequest& request,
                                                 const RunLayout& layout);

// Replaces `${NAME}` for every NAME in `variables` (one pass, no recursion); other `${...}` and
// `$NAME` are left for the shell.
std::string substitute_runtime(std::string_view text,
                               const std::map<std::string, std::string>& variables);

}  // namespace testlooper::runner
