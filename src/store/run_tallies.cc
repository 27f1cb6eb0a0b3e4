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

}  // namespace

Status ensure_run_tallies(Connection& db) {
  TL_RETURN_IF_ERROR(db.exec("PRAGMA recursive_triggers = ON", "turning on recursive triggers"));
  bool made = false;
  {
    Statement s(
        db.get(),
        "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'runs_tally_insert'");
    made = s.step();
    if (!s.error().empty()) return Error{"store", "looking for the run tallies: " + s.error()};
  }
  if (made) return {};
  Transaction t(db);
  TL_RETURN_IF_ERROR(t.begun());
  TL_RETURN_IF_ERROR(db.exec(kTallies, "making the run tallies"));
  return t.commit();
}

}  // namespace testlooper::store
