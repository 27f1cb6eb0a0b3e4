#include "runner/run_layout.h"

#include <system_error>

namespace testlooper::runner {
namespace {

namespace fs = std::filesystem;
using definitions::ObjectKind;

}  // namespace

Result<RunLayout> RunLayout::create(WorkDirPool& pool, const fs::path& ccache_dir) {
  std::error_code ec;
  fs::create_directories(ccache_dir, ec);
  if (ec) return Error{ccache_dir.string(), "cannot create directory: " + ec.message()};
  Result<fs::path> slot = pool.claim();
  if (!slot.ok()) return slot.error();
  RunLayout layout;
  layout.pool_ = &pool;
  layout.root = *slot;
  layout.inputs = layout.root / "inputs";
  layout.output = layout.root / "output";
  layout.scratch = layout.root / "scratch";
  layout.control = layout.root / "control";
  layout.ccache = ccache_dir;
  return layout;
}

RunLayout::RunLayout(RunLayout&& other) noexcept
    : root(std::move(other.root)),
      inputs(std::move(other.inputs)),
      output(std::move(other.output)),
      scratch(std::move(other.scratch)),
      control(std::move(other.control)),
      ccache(std::move(other.ccache)),
      pool_(other.pool_) {
  other.root.clear();
  other.pool_ = nullptr;
}

RunLayout::~RunLayout() {
  if (pool_ && !root.empty()) pool_->release(root);
}

std::map<std::string, std::string> run_variables(const RunRequest& request,
                                                 const RunLayout& layout) {
  const definitions::ResolvedObject& object = *request.object;
  std::map<std::string, std::string> runtime = {
      {"TEST_INPUTS", layout.inputs.string()},
      {"TEST_SCRATCH_DIR", layout.scratch.string()},
      {"TEST_CCACHE_DIR", layout.ccache.string()},
      {"TEST_CORES_AVAILABLE", std::to_string(request.cores)},
      {"TEST_RAM_GB_AVAILABLE", std::to_string(request.ram_gb)},
      {"TEST_LOOPER_TEST_ID", request.run_id},
      {"HOSTNAME", "testlooperworker"},
      {"PYTHONUNBUFFERED", "TRUE"},
  };
  runtime[object.kind == ObjectKind::kBuild ? "TEST_BUILD_OUTPUT_DIR" : "TEST_OUTPUT_DIR"] =
      layout.output.string();
  std::map<std::string, std::string> variables = object.environment.variables;
  for (const auto& [name, value] : object.variables) variables[name] = value;
  for (auto& [name, value] : variables) value = substitute_runtime(value, runtime);
  for (const auto& [name, value] : runtime) variables[name] = value;
  return variables;
}

std::string substitute_runtime(std::string_view text,
                               const std::map<std::string, std::string>& variables) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("${", pos);
    const size_t close = open == std::string_view::npos ? open : text.find('}', open + 2);
    if (close == std::string_view::npos) break;
    const auto it = variables.find(std::string(text.substr(open + 2, close - open - 2)));
    out.append(text.substr(pos, open - pos));
    if (it == variables.end()) {
      out.append(text.substr(open, 2));
      pos = open + 2;
    } else {
      out.append(it->second);
      pos = close + 1;
    }
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace testlooper::runner
