// `testlooper rebuild`: recreates the run history of a server's database from the artifact store
// alone (every run record's test_result.json), after the database was lost. Commits and
// definitions come back from git when the server next looks at its repos.
#pragma once

#include <string>

#include "core/error.h"

namespace testlooper::server {

struct RebuildSummary {
  int runs = 0;     // run records restored
  int skipped = 0;  // records that were unreadable or already in the database
};

// Reads `<data_dir>/artifacts/runs/*/test_result.json` into `<data_dir>/state.db`.
Result<RebuildSummary> rebuild_database(const std::string& data_dir);

}  // namespace testlooper::server
