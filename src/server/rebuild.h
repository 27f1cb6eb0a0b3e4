// `testlooper rebuild`: recreates the run history of a server's database from the artifact store
// (every run record's test_result.json), after the database was lost or fell behind. Commits and
// definitions come back from git when the server next looks at its repos.
//
// Records are not trusted blindly (issue 10, item 15): a record fills in a run only when the
// database knows that run as still running with the same hash and kind. Records of runs the
// database does not know at all are restored only when the caller says so (`trust_unknown_runs`,
// for a database that was lost entirely): nothing vouches for them. Every record is checked field
// by field either way; each one skipped is reported with the reason.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "s3store/s3_artifacts.h"

namespace testlooper::server {

// A run record that was not restored, and why.
struct SkippedRecord {
  std::string record;  // the record directory's name (a run id, or what stood in its place)
  std::string reason;
};

struct RebuildSummary {
  int runs = 0;                        // run records restored
  std::vector<SkippedRecord> skipped;  // the others, in directory order
};

// Reads `<data_dir>/artifacts/runs/*/test_result.json` (or, with `s3`, the run records in S3:
// runs/<id>/test_result.json under its key prefix) into `<data_dir>/state.db`. An Error only when
// the database cannot be opened or written, or S3 cannot be listed or read; bad records are
// skipped.
Result<RebuildSummary> rebuild_database(const std::string& data_dir, bool trust_unknown_runs,
                                        s3store::S3Artifacts* s3 = nullptr);

}  // namespace testlooper::server
