#include "store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <random>
#include <thread>

#include "git/git_fixture.h"

namespace testlooper::store {
namespace {

class StoreTest : public testing::Test {
 protected:
  std::unique_ptr<Store> open() {
    auto s = open_sqlite_store(dir_.path() + "/state.db");
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    return std::move(s).value();
  }
  fixtures::TempDir dir_;
};

RunRow running(const std::string& id, const std::string& hash) {
  RunRow r;
  r.id = id;
  r.hash = hash;
  r.repo = "repo";
  r.commit = "c1";
  r.name = "test";
  r.kind = "test";
  r.worker = "w1";
  r.started = 10;
  return r;
}

TEST_F(StoreTest, Store_HoldsAreReplacedByKeyKeptAcrossReopeningAndDeletedWhenClear) {
  {
    auto store = open();
    ASSERT_TRUE(store->put_hold({"h1", 2, 1234.5, "no disk", 0}).ok());
    ASSERT_TRUE(store->put_hold({"env:x", 5, 99, "image build failed", 0}).ok());
    ASSERT_TRUE(store->put_hold({"h1", 3, 2000, "no disk again", 1}).ok());
  }
  auto store = open();
  auto holds = store->holds();
  ASSERT_TRUE(holds.ok());
  ASSERT_EQ(holds->size(), 2u);
  std::map<std::string, HoldRow> by_key;
  for (const auto& h : *holds) by_key[h.key] = h;
  EXPECT_EQ(by_key["h1"].infra_failures, 3);
  EXPECT_EQ(by_key["h1"].not_before, 2000);
  EXPECT_EQ(by_key["h1"].reason, "no disk again");
  EXPECT_EQ(by_key["h1"].forgiven_failures, 1);
  EXPECT_EQ(by_key["env:x"].infra_failures, 5);
  ASSERT_TRUE(store->put_hold({"env:x", 0, 0, "", 0}).ok());
  EXPECT_EQ(store->holds()->size(), 1u);
}

TEST_F(StoreTest, Store_SessionsAreKeptAcrossReopeningDeletedAndPruned) {
  {
    auto store = open();
    ASSERT_TRUE(store->put_session({"k1", "alice", "github", "editor", "c1", 1000}).ok());
    ASSERT_TRUE(store->put_session({"k2", "bob", "gitlab", "viewer", "c2", 3000}).ok());
    ASSERT_TRUE(store->put_session({"k3", "carol", "github", "admin", "c3", 5000}).ok());
  }
  auto store = open();
  auto alice = store->session("k1");
  ASSERT_TRUE(alice.ok() && alice->has_value());
  EXPECT_EQ((*alice)->login, "alice");
  EXPECT_EQ((*alice)->provider, "github");
  EXPECT_EQ((*alice)->role, "editor");
  EXPECT_EQ((*alice)->csrf, "c1");
  EXPECT_EQ((*alice)->expires, 1000);
  EXPECT_FALSE(store->session("nope")->has_value());
  ASSERT_TRUE(store->delete_session("k3").ok());
  EXPECT_FALSE(store->session("k3")->has_value());
  ASSERT_TRUE(store->prune_sessions(1000).ok());  // expired at or before
  EXPECT_FALSE(store->session("k1")->has_value());
  EXPECT_TRUE(store->session("k2")->has_value());
}

TEST_F(StoreTest, Store_RecordRunsWritesResultsAndTheNextRunTogetherOrNothing) {
  auto store = open();
  ASSERT_TRUE(store->start_run(running("r1", "h")).ok());
  ASSERT_TRUE(store->start_run(running("r2", "h")).ok());
  RunRow r1 = running("r1", "h");
  r1.state = RunState::kFailed;
  r1.ended = 12;
  RunRow r2 = running("r2", "h");
  r2.state = RunState::kSucceeded;
  r2.ended = 13;
  // A second connection refuses one run id: the whole write is undone, results included.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TRIGGER refuse BEFORE INSERT ON runs WHEN NEW.id = 'bad' "
                         "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  const RunRow bad = running("bad", "h");
  auto refused = store->record_runs({{r1, {{"case::a", false, 0.1}}}, {r2, {}}}, &bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().to_string().find("refused by the test"), std::string::npos)
      << refused.error().to_string();
  EXPECT_EQ((*store->run("r1"))->state, RunState::kRunning);
  EXPECT_EQ((*store->run("r2"))->state, RunState::kRunning);
  EXPECT_FALSE(store->run("bad")->has_value());
  EXPECT_TRUE(store->cases("r1")->empty());
  EXPECT_TRUE(store->case_counts("h")->empty());
  ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER refuse", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  // Then written: each result says whether it changed anything (r2 twice: once).
  const RunRow next = running("r3", "h");
  auto recorded = store->record_runs({{r1, {{"case::a", false, 0.1}}}, {r2, {}}}, &next);
  ASSERT_TRUE(recorded.ok()) << recorded.error().to_string();
  EXPECT_EQ(*recorded, (std::vector<bool>{true, true}));
  EXPECT_EQ((*store->run("r1"))->state, RunState::kFailed);
  EXPECT_EQ((*store->run("r2"))->state, RunState::kSucceeded);
  EXPECT_EQ((*store->run("r3"))->state, RunState::kRunning);
  EXPECT_EQ(store->case_counts("h")->at("case::a"), (std::pair<int64_t, int64_t>{1, 1}));
  auto again = store->record_runs({{r2, {}}}, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, (std::vector<bool>{false}));
  auto counts = store->run_counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->at("h").runs, 2);
  EXPECT_EQ(counts->at("h").active, 1);
}

TEST_F(StoreTest, Store_FinishingARunIsIdempotent) {
  auto store = open();
  ASSERT_TRUE(store->start_run(running("r1", "h")).ok());
  RunRow done = running("r1", "h");
  done.state = RunState::kFailed;
  done.ended = 12;
  auto first = store->finish_run(done, {{"case::a", false, 0.1}, {"case::b", true, 0.2}});
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  auto again = store->finish_run(done, {{"case::a", false, 0.1}});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(store->cases("r1")->size(), 2u);
  auto counts = store->case_counts("h");
  EXPECT_EQ(counts->at("case::a").first, 1);
  EXPECT_EQ(counts->at("case::a").second, 1);
  EXPECT_EQ((*store->run("r1"))->state, RunState::kFailed);
}

TEST_F(StoreTest, Store_AggregatesRunsWithoutReadingThemAll) {
  auto store = open();
  const std::vector<std::pair<std::string, RunState>> runs = {
      {"h1", RunState::kSucceeded}, {"h1", RunState::kFailed}, {"h1", RunState::kInfraFailed},
      {"h1", RunState::kRunning},   {"h2", RunState::kSucceeded}, {"h2", RunState::kCancelled}};
  int n = 0;
  for (const auto& [hash, state] : runs) {
    RunRow r = running("r" + std::to_string(++n), hash);
    r.started = n;
    if (n <= 3) r.purpose = "extra:repo/main";
    ASSERT_TRUE(store->start_run(r).ok());
    if (state == RunState::kRunning) continue;
    r.state = state;
    ASSERT_TRUE(store->finish_run(r, {}).ok());
  }
  auto counts = store->run_counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->at("h1").runs, 2);
  EXPECT_EQ(counts->at("h1").failures, 1);
  EXPECT_EQ(counts->at("h1").infra_failures, 1);
  EXPECT_EQ(counts->at("h1").active, 1);
  EXPECT_EQ(counts->at("h2").runs, 1);  // a cancelled run is not a run
  EXPECT_EQ(store->purpose_counts()->at("extra:repo/main"), 2);  // the infrastructure failure is not spent
  EXPECT_EQ(*store->run_count(), 6);
  ASSERT_EQ(store->active_runs()->size(), 1u);
  EXPECT_EQ(store->active_runs()->at(0).id, "r4");
  auto of_h2 = store->runs_of({"h2"});
  ASSERT_EQ(of_h2->size(), 2u);
  EXPECT_EQ(of_h2->at(0).id, "r6");  // newest first
  EXPECT_EQ(of_h2->at(0).state, RunState::kCancelled);
  EXPECT_EQ(store->run("r1")->value().purpose, "extra:repo/main");
}

// What run_counts, purpose_counts, run_count and active_runs must say of `runs` (id -> run):
// counted from the runs themselves.
struct Recount {
  std::map<std::string, RunCounts> counts;
  std::map<std::string, int64_t> purposes;
  int64_t total = 0;
  size_t active = 0;
};
Recount recount(const std::map<std::string, RunRow>& runs) {
  Recount out;
  for (const auto& [id, r] : runs) {
    RunCounts& c = out.counts[r.hash];
    c.runs += r.state == RunState::kSucceeded || r.state == RunState::kFailed ? 1 : 0;
    c.failures += r.state == RunState::kFailed ? 1 : 0;
    c.infra_failures += r.state == RunState::kInfraFailed ? 1 : 0;
    c.active += r.state == RunState::kRunning ? 1 : 0;
    if (!r.purpose.empty() && r.state != RunState::kInfraFailed) ++out.purposes[r.purpose];
    ++out.total;
    out.active += r.state == RunState::kRunning ? 1 : 0;
  }
  return out;
}

void expect_counts(Store& store, const std::map<std::string, RunRow>& runs) {
  const Recount want = recount(runs);
  auto counts = store.run_counts();
  ASSERT_TRUE(counts.ok());
  ASSERT_EQ(counts->size(), want.counts.size());
  for (const auto& [hash, c] : want.counts) {
    ASSERT_TRUE(counts->count(hash)) << hash;
    const RunCounts& got = counts->at(hash);
    EXPECT_EQ(got.runs, c.runs) << hash;
    EXPECT_EQ(got.failures, c.failures) << hash;
    EXPECT_EQ(got.infra_failures, c.infra_failures) << hash;
    EXPECT_EQ(got.active, c.active) << hash;
  }
  EXPECT_EQ(*store.purpose_counts(), want.purposes);
  EXPECT_EQ(*store.run_count(), want.total);
  EXPECT_EQ(store.active_runs()->size(), want.active);
}

// The counts kept in SQL by triggers (store/run_tallies.h) equal a recount of the runs after any
// mix of new runs, runs re-recorded (a worker resuming: INSERT OR REPLACE, even with another
// hash or purpose) and finished in every state, and after reopening.
TEST_F(StoreTest, Store_RunCountsEqualARecountAfterRandomWrites) {
  std::map<std::string, RunRow> runs;
  std::mt19937 random(18);
  const RunState ends[] = {RunState::kSucceeded, RunState::kFailed, RunState::kInfraFailed,
                           RunState::kCancelled};
  const std::string purposes[] = {"", "", "extra:repo/main@c1", "extra:repo/dev@c2"};
  {
    auto store = open();
    for (int i = 0; i < 800; ++i) {
      const unsigned what = random() % 3;
      auto some = runs.begin();
      if (!runs.empty()) std::advance(some, random() % runs.size());
      if (what == 0 || runs.empty() || (what == 1 && random() % 4 != 0)) {
        // A new run, or one re-recorded running.
        RunRow r = running(what == 0 || runs.empty() ? "r" + std::to_string(i) : some->first,
                           "h" + std::to_string(random() % 6));
        r.purpose = purposes[random() % 4];
        ASSERT_TRUE(store->start_run(r).ok());
        runs[r.id] = r;
      } else {
        RunRow r = some->second;
        r.state = ends[random() % 4];
        auto finished = store->finish_run(r, {});
        ASSERT_TRUE(finished.ok());
        EXPECT_EQ(*finished, some->second.state == RunState::kRunning);
        if (*finished) some->second = r;
      }
      if (i % 100 == 99) expect_counts(*store, runs);
    }
  }
  expect_counts(*open(), runs);
}

// A store made before the tallies (no tally tables, triggers or index of running runs) is
// tallied once when opened, and kept from then on.
TEST_F(StoreTest, Store_AStoreMadeBeforeTheTalliesIsTalliedAtOpen) {
  std::map<std::string, RunRow> runs;
  {
    auto store = open();
    for (int i = 0; i < 30; ++i) {
      RunRow r = running("r" + std::to_string(i), "h" + std::to_string(i % 4));
      r.purpose = i % 3 == 0 ? "extra:repo/main@c1" : "";
      ASSERT_TRUE(store->start_run(r).ok());
      if (i % 5 != 0) {
        r.state = i % 2 ? RunState::kSucceeded : RunState::kInfraFailed;
        ASSERT_TRUE(store->finish_run(r, {}).ok());
      }
      runs[r.id] = r;
    }
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/state.db").c_str(), &db), SQLITE_OK);
  const char* old_store =
      "DROP TRIGGER runs_tally_insert; DROP TRIGGER runs_tally_update; "
      "DROP TRIGGER runs_tally_delete; DROP TABLE run_tallies; DROP TABLE purpose_tallies; "
      "DROP INDEX runs_running; UPDATE runs SET state = 'failed' WHERE id = 'r1'";
  ASSERT_EQ(sqlite3_exec(db, old_store, nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  runs["r1"].state = RunState::kFailed;
  auto store = open();
  expect_counts(*store, runs);
  RunRow r = runs["r5"];
  r.state = RunState::kFailed;
  ASSERT_TRUE(*store->finish_run(r, {}));
  runs["r5"] = r;
  expect_counts(*store, runs);
}

// A store whose tally triggers are of the version before the UPSERTs (an INSERT ... WHERE NOT
// EXISTS, then an UPDATE) gets this version's triggers when opened, keeping its counts, and they
// count right from then on, a run replaced by start_run's INSERT OR REPLACE included.
TEST_F(StoreTest, Store_OlderTallyTriggersAreMadeAgainAtOpen) {
  std::map<std::string, RunRow> runs;
  {
    auto store = open();
    for (int i = 0; i < 12; ++i) {
      RunRow r = running("r" + std::to_string(i), "h" + std::to_string(i % 3));
      r.purpose = i % 2 ? "extra:repo/main@c1" : "";
      ASSERT_TRUE(store->start_run(r).ok());
      if (i % 4 != 0) {
        r.state = i % 3 ? RunState::kSucceeded : RunState::kFailed;
        ASSERT_TRUE(store->finish_run(r, {{"case0", i % 3 != 0, 0.1}}).ok());
      }
      runs[r.id] = r;
    }
  }
  auto trigger_sql = [&](const std::string& name) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((dir_.path() + "/state.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = ?", -1, &s, nullptr);
    sqlite3_bind_text(s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    std::string sql = sqlite3_step(s) == SQLITE_ROW
                          ? reinterpret_cast<const char*>(sqlite3_column_text(s, 0))
                          : "";
    sqlite3_finalize(s);
    sqlite3_close(db);
    return sql;
  };
  EXPECT_NE(trigger_sql("runs_tally_insert").find("ON CONFLICT"), std::string::npos);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/state.db").c_str(), &db), SQLITE_OK);
  const char* older = R"sql(
DROP TRIGGER runs_tally_insert; DROP TRIGGER cases_tally_insert;
CREATE TRIGGER runs_tally_insert AFTER INSERT ON runs BEGIN
  INSERT INTO run_tallies (hash, state, runs) SELECT NEW.hash, NEW.state, 0
    WHERE NOT EXISTS (SELECT 1 FROM run_tallies WHERE hash = NEW.hash AND state = NEW.state);
  UPDATE run_tallies SET runs = runs + 1 WHERE hash = NEW.hash AND state = NEW.state;
  INSERT INTO purpose_tallies (purpose, runs) SELECT NEW.purpose, 0
    WHERE NEW.purpose != '' AND NEW.state != 'infra_failed'
      AND NOT EXISTS (SELECT 1 FROM purpose_tallies WHERE purpose = NEW.purpose);
  UPDATE purpose_tallies SET runs = runs + 1
    WHERE purpose = NEW.purpose AND NEW.purpose != '' AND NEW.state != 'infra_failed';
END;
CREATE TRIGGER cases_tally_insert AFTER INSERT ON cases WHEN NEW.skipped = 0 BEGIN
  INSERT INTO case_tallies (hash, name, runs, failures)
    SELECT r.hash, NEW.name, 0, 0 FROM runs r
    WHERE r.id = NEW.run_id AND r.state IN ('succeeded', 'failed')
      AND NOT EXISTS (SELECT 1 FROM case_tallies t WHERE t.hash = r.hash AND t.name = NEW.name);
  UPDATE case_tallies SET runs = runs + 1, failures = failures + (1 - NEW.success)
    WHERE name = NEW.name AND hash = (SELECT r.hash FROM runs r WHERE r.id = NEW.run_id
                                      AND r.state IN ('succeeded', 'failed'));
END;)sql";
  ASSERT_EQ(sqlite3_exec(db, older, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
  EXPECT_EQ(trigger_sql("runs_tally_insert").find("ON CONFLICT"), std::string::npos);

  auto store = open();
  EXPECT_NE(trigger_sql("runs_tally_insert").find("ON CONFLICT"), std::string::npos);
  EXPECT_NE(trigger_sql("cases_tally_insert").find("ON CONFLICT"), std::string::npos);
  expect_counts(*store, runs);
  auto cases = store->case_counts("h1");
  ASSERT_TRUE(cases.ok());
  EXPECT_EQ((*cases)["case0"], std::make_pair(int64_t{3}, int64_t{0}));
  // A running run recorded again as another identity and purpose, then finished with a case.
  RunRow r = running("r4", "h2");
  r.purpose = "extra:repo/main@c2";
  ASSERT_TRUE(store->start_run(r).ok());
  r.state = RunState::kFailed;
  ASSERT_TRUE(*store->finish_run(r, {{"case0", false, 0.1}}));
  runs["r4"] = r;
  expect_counts(*store, runs);
  EXPECT_EQ(store->purpose_counts()->at("extra:repo/main@c2"), 1);
  cases = store->case_counts("h2");
  ASSERT_TRUE(cases.ok());
  EXPECT_EQ((*cases)["case0"], std::make_pair(int64_t{4}, int64_t{1}));
}

// Case counts (kept by triggers in case_tallies, store/run_tallies.h) equal a recount of the
// cases of the runs that succeeded or failed, skipped cases apart, after random writes (runs
// re-recorded while running, finished in every state, with repeated and skipped cases), after
// reopening, and after the tallies are made again for a store made before them.
TEST_F(StoreTest, Store_CaseCountsEqualARecountAfterRandomWritesAndAtOpen) {
  struct Model {
    RunRow run;
    std::vector<CaseRow> cases;
  };
  std::map<std::string, Model> runs;
  std::mt19937 random(7);
  const RunState ends[] = {RunState::kSucceeded, RunState::kFailed, RunState::kInfraFailed,
                           RunState::kCancelled};
  auto expect_case_counts = [&](Store& store) {
    std::map<std::string, std::map<std::string, std::pair<int64_t, int64_t>>> want;
    for (const auto& [id, m] : runs) {
      if (m.run.state != RunState::kSucceeded && m.run.state != RunState::kFailed) continue;
      for (const auto& c : m.cases) {
        if (c.skipped) continue;
        auto& [n, failures] = want[m.run.hash][c.name];
        ++n;
        failures += c.success ? 0 : 1;
      }
    }
    for (int h = 0; h < 4; ++h) {
      const std::string hash = "h" + std::to_string(h);
      auto got = store.case_counts(hash);
      ASSERT_TRUE(got.ok()) << got.error().to_string();
      EXPECT_EQ(*got, want[hash]) << hash;
    }
  };
  {
    auto store = open();
    for (int i = 0; i < 400; ++i) {
      auto some = runs.begin();
      if (!runs.empty()) std::advance(some, random() % runs.size());
      if (runs.empty() || random() % 3 == 0) {
        RunRow r = running("r" + std::to_string(i), "h" + std::to_string(random() % 4));
        ASSERT_TRUE(store->start_run(r).ok());
        runs[r.id] = {r, {}};
      } else if (some->second.run.state == RunState::kRunning && random() % 4 == 0) {
        // A worker resuming it: recorded again (INSERT OR REPLACE), maybe as another identity.
        RunRow r = running(some->first, "h" + std::to_string(random() % 4));
        ASSERT_TRUE(store->start_run(r).ok());
        some->second.run = r;
      } else {
        RunRow r = some->second.run;
        r.state = ends[random() % 4];
        std::vector<CaseRow> cases;
        for (unsigned c = random() % 4; c > 0; --c) {
          cases.push_back({"case" + std::to_string(random() % 3), random() % 3 != 0, 0.1});
          cases.back().skipped = random() % 5 == 0;
        }
        auto finished = store->finish_run(r, cases);
        ASSERT_TRUE(finished.ok()) << finished.error().to_string();
        if (*finished) some->second = {r, cases};
      }
      if (i % 100 == 99) expect_case_counts(*store);
    }
  }
  expect_case_counts(*open());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/state.db").c_str(), &db), SQLITE_OK);
  const char* old_store =
      "DROP TRIGGER cases_tally_insert; DROP TRIGGER cases_tally_delete; DROP TABLE case_tallies";
  ASSERT_EQ(sqlite3_exec(db, old_store, nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  auto store = open();
  expect_case_counts(*store);
  RunRow r = running("late", "h1");
  ASSERT_TRUE(store->start_run(r).ok());
  r.state = RunState::kFailed;
  ASSERT_TRUE(*store->finish_run(r, {{"case0", false, 0.1}}));
  runs["late"] = {r, {{"case0", false, 0.1}}};
  expect_case_counts(*store);
}

TEST_F(StoreTest, Store_SurvivesReopeningWithEverything) {
  {
    auto store = open();
    ASSERT_TRUE(store->put_repo({"repo", "/x/repo"}).ok());
    ASSERT_TRUE(store->put_branch({"repo", "main", "c2", true, 3}).ok());
    CommitRow c;
    c.repo = "repo";
    c.sha = "c2";
    c.parents = {"c1", "c0"};
    c.subject = "subject";
    ASSERT_TRUE(store->put_commits({c}).ok());
    c.resolved = true;
    c.file = "testlooper.yml";
    ASSERT_TRUE(store->put_definitions(c, {{"repo", "c2", "t", "test", "h", "{}"}}).ok());
    ASSERT_TRUE(store->set_target("repo", "c2", "t", 7).ok());
    ASSERT_TRUE(store->set_commit_set("repo", "c2", "all", true).ok());
  }
  auto store = open();
  EXPECT_EQ(store->repos()->at(0).path, "/x/repo");
  EXPECT_EQ(store->branches()->at(0).depth, 3);
  const CommitRow c = store->commits()->at(0);
  EXPECT_EQ(c.parents, (std::vector<std::string>{"c1", "c0"}));
  EXPECT_TRUE(c.resolved);
  EXPECT_EQ(c.file.value_or(""), "testlooper.yml");
  EXPECT_FALSE(c.error.has_value());
  EXPECT_EQ(store->objects()->size(), 1u);
  EXPECT_EQ((store->targets()->at({"repo", "c2", "t"})), 7);
  EXPECT_TRUE((store->commit_sets()->at({"repo", "c2", "all"})));
}


// `serve` checks its open store on a thread (check_sqlite_store). That check must not close a
// descriptor of the file behind SQLite's back: the process's POSIX locks would go with it, and
// another process closing its connection would then delete the WAL the store still writes into
// (every later write lost; found by infra_test reading state.db while serve ran).
TEST_F(StoreTest, Store_WritesAfterTheBackgroundCheckSurviveAnotherProcessClosingTheStore) {
  auto store = open();
  ASSERT_TRUE(store->start_run(running("before", "h")).ok());
  ASSERT_TRUE(check_sqlite_store(dir_.path() + "/state.db").ok());
  // Another process (python3's sqlite3) opens the store, counts its runs and closes it.
  const auto runs_seen_by_another_process = [&] {
    const std::string command =
        std::string("python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                    "print(c.execute(\"select count(*) from runs\").fetchone()[0]); c.close()' ") +
                             fixtures::shell_quote(dir_.path() + "/state.db");
    std::string out;
    if (FILE* p = popen(command.c_str(), "r")) {
      char buffer[64];
      while (fgets(buffer, sizeof buffer, p) != nullptr) out += buffer;
      pclose(p);
    }
    return out;
  };
  EXPECT_EQ(runs_seen_by_another_process(), "1\n");
  ASSERT_TRUE(store->start_run(running("after", "h")).ok());
  EXPECT_EQ(runs_seen_by_another_process(), "2\n");
  store.reset();
  EXPECT_EQ(runs_seen_by_another_process(), "2\n");
}

// `serve` interrupts its background check when it stops (SqliteStoreCheck::interrupt): SQLite
// stops inside one table's check then, where the progress handler alone is not called. An
// interrupted check says it was stopped (or ok, when it had ended), never that the store is
// damaged, wherever the interrupt lands (before or during the read); the store stays usable.
TEST_F(StoreTest, Store_AnInterruptedCheckSaysItWasStoppedNotDamaged) {
  {
    auto store = open();
    for (int i = 0; i < 2000; ++i)
      ASSERT_TRUE(store->start_run(running("r" + std::to_string(i), "h")).ok());
  }
  int stopped = 0;
  for (int delay_us : {0, 50, 200, 1000, 5000}) {
    auto check = SqliteStoreCheck::open(dir_.path() + "/state.db");
    ASSERT_TRUE(check.ok());
    std::future<Status> done = std::async(std::launch::async, [&] { return (*check)->run(); });
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    do {
      (*check)->interrupt();
    } while (done.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready);
    // Ended before the interrupt: ok. Else stopped.
    const Status status = done.get();
    if (!status.ok()) {
      EXPECT_NE(status.error().to_string().find("the check was stopped"), std::string::npos)
          << delay_us << ": " << status.error().to_string();
      ++stopped;
    }
  }
  EXPECT_GT(stopped, 0);
  EXPECT_TRUE(check_sqlite_store(dir_.path() + "/state.db").ok());
  EXPECT_EQ(open()->active_runs()->size(), 2000u);
}

}  // namespace
}  // namespace testlooper::store
