// libFuzzer target over the YAML -> resolved path: the input is a definitions file (plus, after
// a line "---include---", an included file). Resolution must never crash, and every rejected
// input must carry a positioned error "path:line:col: message".
#include <cstdint>
#include <cstdlib>
#include <regex>
#include <string>

#include "definitions/definitions.h"
#include "memory_source_reader.h"

using testlooper::definitions::MemorySourceReader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::string separator = "\n---include---\n";
  const size_t split = input.find(separator);
  MemorySourceReader::Files files;
  files["testlooper.yml"] = input.substr(0, split);
  if (split != std::string::npos) files["inc.yml"] = input.substr(split + separator.size());
  files["Dockerfile"] = "FROM scratch\n";
  MemorySourceReader reader;
  reader.add_commit("main", std::string(40, '1'), files);
  auto resolved = testlooper::definitions::resolve_commit(reader, "main", std::string(40, '1'));
  if (!resolved.ok()) abort();  // the commit itself is always readable here
  if (resolved->error) {
    static const std::regex kPositioned(R"(^[^:\n]+:[0-9]+:[0-9]+: .+)");
    if (!std::regex_search(*resolved->error, kPositioned)) {
      fprintf(stderr, "unpositioned error: %s\n", resolved->error->c_str());
      abort();
    }
  }
  return 0;
}
