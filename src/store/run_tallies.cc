#include "store/run_tallies.h"

#include <optional>
#include <string>

namespace testlooper::store {
namespace {

// The tables and the index, filled from `runs` (and `cases`): made once, with their triggers.
constexpr const char* kTallies = R"sql(
DROP TABLE IF EXISTS run_tallies;
DROP TABLE IF EXISTS purpose_tallies;
CREATE TABLE run_tallies (
  hash TEXT NOT NULL, state TEXT NOT NULL, runs INTEGER NOT NULL, PRIMARY KEY (hash, state));
CREATE TABLE purpose_tallies (purpose TEXT PRIMARY KEY, runs INTEGER NOT NULL);
INSERT INTO run_tallies (hash, state, runs) SELECT hash, state, COUNT(*) FROM runs GROUP BY hash, state;
INSERT INTO purpose_tallies (purpose, runs)
  SELECT purpose, COUNT(*) FROM runs WHERE purpose != '' AND state != 'infra_failed' GROUP BY purpose;
CREATE INDEX IF NOT EXISTS runs_running ON runs (started) WHERE state = 'running';
)sql";

constexpr const char* kCaseTallies = R"sql(
DROP TABLE IF EXISTS case_tallies;
CREATE TABLE case_tallies (
  hash TEXT NOT NULL, name TEXT NOT NULL, runs INTEGER NOT NULL, failures INTEGER NOT NULL,
  PRIMARY KEY (hash, name));
INSERT INTO case_tallies (hash, name, runs, failures)
  SELECT r.hash, c.name, COUNT(*), SUM(1 - c.success) FROM cases c JOIN runs r ON r.id = c.run_id
  WHERE r.state IN ('succeeded', 'failed') AND c.skipped = 0 GROUP BY r.hash, c.name;
)sql";

// The triggers, made again over those of an older store (kUpsert in the last one says they are
// this version). A tally row is counted up with an UPSERT: its DO UPDATE applies whatever the
// outer statement's conflict clause (start_run's INSERT OR REPLACE overrides any other conflict
// clause of a trigger's statement, so an INSERT OR IGNORE would replace the row, losing its
// count). Before (issue 18), each was an INSERT ... SELECT ... WHERE NOT EXISTS, then an UPDATE:
// the INSERT reads the table it writes, so SQLite built a temporary table for it each time, 4
// per run (about 10 us of a run's 100 us of SQLite work; 25% of each case's).
constexpr const char* kUpsert = "ON CONFLICT";
constexpr const char* kTriggers = R"sql(
DROP TRIGGER IF EXISTS runs_tally_delete;
DROP TRIGGER IF EXISTS runs_tally_update;
DROP TRIGGER IF EXISTS runs_tally_insert;
CREATE TRIGGER runs_tally_delete AFTER DELETE ON runs BEGIN
  UPDATE run_tallies SET runs = runs - 1 WHERE hash = OLD.hash AND state = OLD.state;
  UPDATE purpose_tallies SET runs = runs - 1
    WHERE purpose = OLD.purpose AND OLD.purpose != '' AND OLD.state != 'infra_failed';
END;
CREATE TRIGGER runs_tally_update AFTER UPDATE OF hash, state, purpose ON runs BEGIN
  UPDATE run_tallies SET runs = runs - 1 WHERE hash = OLD.hash AND state = OLD.state;
  INSERT INTO run_tallies (hash, state, runs) VALUES (NEW.hash, NEW.state, 1)
    ON CONFLICT (hash, state) DO UPDATE SET runs = runs + 1;
  UPDATE purpose_tallies SET runs = runs - 1
    WHERE purpose = OLD.purpose AND OLD.purpose != '' AND OLD.state != 'infra_failed';
  INSERT INTO purpose_tallies (purpose, runs) SELECT NEW.purpose, 1
    WHERE NEW.purpose != '' AND NEW.state != 'infra_failed'
    ON CONFLICT (purpose) DO UPDATE SET runs = runs + 1;
END;
CREATE TRIGGER runs_tally_insert AFTER INSERT ON runs BEGIN
  INSERT INTO run_tallies (hash, state, runs) VALUES (NEW.hash, NEW.state, 1)
    ON CONFLICT (hash, state) DO UPDATE SET runs = runs + 1;
  INSERT INTO purpose_tallies (purpose, runs) SELECT NEW.purpose, 1
    WHERE NEW.purpose != '' AND NEW.state != 'infra_failed'
    ON CONFLICT (purpose) DO UPDATE SET runs = runs + 1;
END;
)sql";

// Per identity and case name, the cases counted by case_counts: not skipped, of a run that
// succeeded or failed. A run's cases are inserted after its final state (finish_run), so the
// insert trigger reads that state; a run replaced or deleted takes its cases' counts with it. A
// run's state or hash is never changed once it has cases.
constexpr const char* kCaseTriggers = R"sql(
DROP TRIGGER IF EXISTS cases_tally_delete;
DROP TRIGGER IF EXISTS cases_tally_insert;
CREATE TRIGGER cases_tally_delete AFTER DELETE ON runs
  WHEN OLD.state IN ('succeeded', 'failed') BEGIN
  UPDATE case_tallies
    SET runs = runs - (SELECT COUNT(*) FROM cases c
                       WHERE c.run_id = OLD.id AND c.skipped = 0 AND c.name = case_tallies.name),
        failures = failures - (SELECT COALESCE(SUM(1 - c.success), 0) FROM cases c
                               WHERE c.run_id = OLD.id AND c.skipped = 0 AND c.name = case_tallies.name)
    WHERE hash = OLD.hash
      AND name IN (SELECT c.name FROM cases c WHERE c.run_id = OLD.id AND c.skipped = 0);
END;
CREATE TRIGGER cases_tally_insert AFTER INSERT ON cases WHEN NEW.skipped = 0 BEGIN
  INSERT INTO case_tallies (hash, name, runs, failures)
    SELECT r.hash, NEW.name, 1, 1 - NEW.success FROM runs r
    WHERE r.id = NEW.run_id AND r.state IN ('succeeded', 'failed')
    ON CONFLICT (hash, name) DO UPDATE SET runs = runs + 1, failures = failures + excluded.failures;
END;
)sql";

// Makes `tables` (and then `triggers`) in one transaction unless trigger `marker` (the last
// `triggers` makes) exists; makes only `triggers` again when it exists without kUpsert.
Status ensure(Connection& db, const char* marker, const char* tables, const char* triggers,
              const std::string& what) {
  std::optional<std::string> made;
  {
    Statement s(db.get(), "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?");
    s.bind(1, std::string(marker));
    if (s.step()) made = s.text(0);
    if (!s.error().empty()) return Error{"store", "looking for the " + what + ": " + s.error()};
  }
  if (made && made->find(kUpsert) != std::string::npos) return {};
  Transaction t(db);
  TL_RETURN_IF_ERROR(t.begun());
  if (!made) TL_RETURN_IF_ERROR(db.exec(tables, "making the " + what));
  TL_RETURN_IF_ERROR(db.exec(triggers, "making the " + what + "' triggers"));
  return t.commit();
}

}  // namespace

Status ensure_run_tallies(Connection& db) {
  TL_RETURN_IF_ERROR(db.exec("PRAGMA recursive_triggers = ON", "turning on recursive triggers"));
  TL_RETURN_IF_ERROR(ensure(db, "runs_tally_insert", kTallies, kTriggers, "run tallies"));
  return ensure(db, "cases_tally_insert", kCaseTallies, kCaseTriggers, "case tallies");
}

}  // namespace testlooper::store
