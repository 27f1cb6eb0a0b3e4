#!/usr/bin/env bash
# `serve` start-up and RSS on a store of 10,000,000 runs (issue 18 rows 6-7): the time until the
# API answers (goal < 2 s), the server's CPU time by then (less disturbed by a loaded machine),
# its RSS (goal < 300 MB), and when the background check of state.db (PRAGMA quick_check) ended.
# DATA is a data dir made by build/bench/history_gen (bench/history_bench.sh); it is written to:
# the first start on a store made before the run tallies fills them (once; that round says so).
# With BASE=path/to/an/older/testlooper its start on the same store alternates with ours.
# The server is given a repos dir that does not exist, as in history_bench.sh: given an empty one,
# it would forget the store's repo "app" (whose path is made up), and the history bench that
# shares DATA would then find no repo (until 2026-12-03 it did so).
# Usage: DATA=dir [BASE=testlooper] [ROUNDS=3] bench/startup_bench.sh [path/to/build]
set -euo pipefail

build="$(realpath "${1:-$(dirname "$0")/../build}")"
data="${DATA:-${TMPDIR:-/tmp}/testlooper-history-bench}"
[ -f "$data/state.db" ] || "$build/bench/history_gen" "$data"
repos="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$repos"
}
trap cleanup EXIT

rss_mb() { awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
since() { echo "$(date +%s.%N) - $1" | bc; }

start() {  # label binary
  local port=$((20000 + RANDOM % 20000)) t0 answered checked
  t0=$(date +%s.%N)
  "$2" serve --repos "$repos/none" --data "$data" --port "$port" --workers 0 --poll-seconds 3600 \
    --extra-runs 0 >"$repos/serve.log" 2>&1 &
  server_pid=$!
  until curl -sf "http://127.0.0.1:$port/api/repos" >/dev/null; do sleep 0.05; done
  answered=$(since "$t0")
  printf '%-9s API answers after %5.1f s (goal < 2 s), CPU %5s s, RSS %4d MB (goal < 300 MB)' \
    "$1" "$answered" "$(cpu_s "$server_pid")" "$(rss_mb "$server_pid")"
  if grep -q store_loaded "$repos/serve.log"; then
    until grep -q store_checked "$repos/serve.log"; do sleep 0.1; done
    checked=$(since "$t0")
    printf '; store checked after %5.1f s, RSS %d MB' "$checked" "$(rss_mb "$server_pid")"
  fi
  printf '\n'
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=""
}

printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "${ROUNDS:-3}"); do
  start "ours" "$build/testlooper"
  [ -n "${BASE:-}" ] && start "baseline" "$BASE"
done
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
