#include "store/run_tallies.h"

namespace testlooper::store {
namespace {

// Both tables, their triggers and the index; the last trigger made says the rest is there. No
// statement of a trigger has a conflict clause of its own: the outer statement's (start_run's
// INSERT OR REPLACE) would take its place.
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
CREATE TRIGGER IF NOT EXISTS runs_tally_delete AFTER DELETE ON runs BEGIN
  UPDATE run_tallies SET runs = runs - 1 WHERE hash = OLD.hash AND state = OLD.state;
  UPDATE purpose_tallies SET runs = runs - 1
    WHERE purpose = OLD.purpose AND OLD.purpose != '' AND OLD.state != 'infra_failed';
END;
CREATE TRIGGER IF NOT EXISTS runs_tally_update AFTER UPDATE OF hash, state, purpose ON runs BEGIN
  UPDATE run_tallies SET runs = runs - 1 WHERE hash = OLD.hash AND state = OLD.state;
  UPDATE purpose_tallies SET runs = runs - 1
    WHERE purpose = OLD.purpose AND OLD.purpose != '' AND OLD.state != 'infra_failed';
  INSERT INTO run_tallies (hash, state, runs) SELECT NEW.hash, NEW.state, 0
    WHERE NOT EXISTS (SELECT 1 FROM run_tallies WHERE hash = NEW.hash AND state = NEW.state);
  UPDATE run_tallies SET runs = runs + 1 WHERE hash = NEW.hash AND state = NEW.state;
  INSERT INTO purpose_tallies (purpose, runs) SELECT NEW.purpose, 0
    WHERE NEW.purpose != '' AND NEW.state != 'infra_failed'
      AND NOT EXISTS (SELECT 1 FROM purpose_tallies WHERE purpose = NEW.purpose);
  UPDATE purpose_tallies SET runs = runs + 1
    WHERE purpose = NEW.purpose AND NEW.purpose != '' AND NEW.state != 'infra_failed';
END;
CREATE TRIGGER IF NOT EXISTS runs_tally_insert AFTER INSERT ON runs BEGIN
  INSERT INTO run_tallies (hash, state, runs) SELECT NEW.hash, NEW.state, 0
    WHERE NOT EXISTS (SELECT 1 FROM run_tallies WHERE hash = NEW.hash AND state = NEW.state);
  UPDATE run_tallies SET runs = runs + 1 WHERE hash = NEW.hash AND state = NEW.state;
  INSERT INTO purpose_tallies (purpose, runs) SELECT NEW.purpose, 0
    WHERE NEW.purpose != '' AND NEW.state != 'infra_failed'
      AND NOT EXISTS (SELECT 1 FROM purpose_tallies WHERE purpose = NEW.purpose);
  UPDATE purpose_tallies SET runs = runs + 1
    WHERE purpose = NEW.purpose AND NEW.purpose != '' AND NEW.state != 'infra_failed';
END;
)sql";

// Per identity and case name, the cases counted by case_counts: not skipped, of a run that
// succeeded or failed. A run's cases are inserted after its final state (finish_run), so the
// insert trigger reads that state; a run replaced or deleted takes its cases' counts with it. A
// run's state or hash is never changed once it has cases.
constexpr const char* kCaseTallies = R"sql(
DROP TABLE IF EXISTS case_tallies;
CREATE TABLE case_tallies (
  hash TEXT NOT NULL, name TEXT NOT NULL, runs INTEGER NOT NULL, failures INTEGER NOT NULL,
  PRIMARY KEY (hash, name));
INSERT INTO case_tallies (hash, name, runs, failures)
  SELECT r.hash, c.name, COUNT(*), SUM(1 - c.success) FROM cases c JOIN runs r ON r.id = c.run_id
  WHERE r.state IN ('succeeded', 'failed') AND c.skipped = 0 GROUP BY r.hash, c.name;
CREATE TRIGGER IF NOT EXISTS cases_tally_delete AFTER DELETE ON runs
  WHEN OLD.state IN ('succeeded', 'failed') BEGIN
  UPDATE case_tallies
    SET runs = runs - (SELECT COUNT(*) FROM cases c
                       WHERE c.run_id = OLD.id AND c.skipped = 0 AND c.name = case_tallies.name),
        failures = failures - (SELECT COALESCE(SUM(1 - c.success), 0) FROM cases c
                               WHERE c.run_id = OLD.id AND c.skipped = 0 AND c.name = case_tallies.name)
    WHERE hash = OLD.hash
      AND name IN (SELECT c.name FROM cases c WHERE c.run_id = OLD.id AND c.skipped = 0);
END;
CREATE TRIGGER IF NOT EXISTS cases_tally_insert AFTER INSERT ON cases WHEN NEW.skipped = 0 BEGIN
  INSERT INTO case_tallies (hash, name, runs, failures)
    SELECT r.hash, NEW.name, 0, 0 FROM runs r
    WHERE r.id = NEW.run_id AND r.state IN ('succeeded', 'failed')
      AND NOT EXISTS (SELECT 1 FROM case_tallies t WHERE t.hash = r.hash AND t.name = NEW.name);
  UPDATE case_tallies SET runs = runs + 1, failures = failures + (1 - NEW.success)
    WHERE name = NEW.name AND hash = (SELECT r.hash FROM runs r WHERE r.id = NEW.run_id
                                      AND r.state IN ('succeeded', 'failed'));
END;
)sql";

// Runs `script` in one transaction unless trigger `marker` (its last) exists.
Status ensure(Connection& db, const char* marker, const char* script, const std::string& what) {
  bool made = false;
  {
    Statement s(db.get(), "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?");
    s.bind(1, std::string(marker));
    made = s.step();
    if (!s.error().empty()) return Error{"store", "looking for the " + what + ": " + s.error()};
  }
  if (made) return {};
  Transaction t(db);
  TL_RETURN_IF_ERROR(t.begun());
  TL_RETURN_IF_ERROR(db.exec(script, "making the " + what));
  return t.commit();
}

}  // namespace

Status ensure_run_tallies(Connection& db) {
  TL_RETURN_IF_ERROR(db.exec("PRAGMA recursive_triggers = ON", "turning on recursive triggers"));
  TL_RETURN_IF_ERROR(ensure(db, "runs_tally_insert", kTallies, "run tallies"));
  return ensure(db, "cases_tally_insert", kCaseTallies, "case tallies");
}

}  // namespace testlooper::store
