#!/usr/bin/env bash
# The cost of the start-up check of state.db (issue 11: `PRAGMA quick_check`, which reads every
# page): a store of RUNS runs (default 5,000,000), each with one case, in the server's own schema
# (made by `testlooper serve`, then filled with the sqlite3 shell), then timed cold-ish and warm.
# Prints the file size and both times. Needs the sqlite3 shell.
# Usage: RUNS=N bench/store_check_bench.sh [path/to/build]
set -euo pipefail

build="$(realpath "${1:-$(dirname "$0")/../build}")"
runs="${RUNS:-5000000}"
dir="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/repos"
# The schema, as the server makes it.
"$build/testlooper" serve --repos "$dir/repos" --data "$dir/data" --port 0 --workers 0 >"$dir/serve.out" 2>&1 &
server_pid=$!
until grep -q listening "$dir/serve.out"; do sleep 0.1; done
kill "$server_pid" && wait "$server_pid" || true
server_pid=""
db="$dir/data/state.db"
sqlite3 "$db" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $runs)
INSERT INTO runs (id, hash, repo, sha, name, kind, worker, state, exit_code, started, ended, detail, purpose)
SELECT printf('%016x', i), printf('%064x', i % 5000), 'app', printf('%040x', i % 1000),
       'test' || (i % 500) || '/linux', 'test', 'w1', 'succeeded', 0, i, i + 1, '', '' FROM n;
INSERT INTO cases (run_id, seq, name, success, elapsed) SELECT id, 0, 'case', 1, 0.5 FROM runs;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
printf 'state.db: %s runs, %s MB\n' "$runs" "$(($(stat -c %s "$db") / 1048576))"
sync
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(page cache not dropped: not root)"
for pass in first second; do
  start=$(date +%s.%N)
  sqlite3 "$db" 'PRAGMA quick_check(1);' >/dev/null
  printf 'PRAGMA quick_check, %s pass: %.2f s\n' "$pass" "$(echo "$(date +%s.%N) - $start" | bc)"
done
start=$(date +%s.%N)
"$build/testlooper" serve --repos "$dir/repos" --data "$dir/data" --port 0 --workers 0 >"$dir/serve.out" 2>&1 &
server_pid=$!
until grep -q listening "$dir/serve.out"; do sleep 0.05; done
printf 'serve start-up on it (quick_check and load): %.2f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"
