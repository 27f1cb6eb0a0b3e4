// Per-identity run counts kept in SQL (internal to src/store): the `run_tallies` table (hash,
// state -> runs) and `purpose_tallies` (purpose -> runs that spent it: not infrastructure
// failures), kept by triggers on `runs` in the same transaction as every write to it, and a
// partial index of the runs still running; and `case_tallies` (hash, case name -> runs,
// failures: what Store::case_counts answers). So a start reads a few rows per identity instead of
// scanning every run (issue 18: 9 s for 10M runs), a failing test's case counts are one index
// range instead of a row fetch per run of its identity (the first history answer after start-up:
// 1.2-5.3 s on 10M runs), and nothing else need remember to update them.
#pragma once

#include "core/error.h"
#include "store/sqlite.h"

namespace testlooper::store {

// Makes sure the tallies, their triggers and the index of running runs exist on `db` (whose
// schema is made), filling the tallies from `runs` (and `cases`) once for a store made before
// them (one pass over every run or case, in one transaction: a crash leaves the store as it was).
// Turns on recursive_triggers for `db`, so that the rows an INSERT OR REPLACE replaces are
// untallied.
Status ensure_run_tallies(Connection& db);

}  // namespace testlooper::store
