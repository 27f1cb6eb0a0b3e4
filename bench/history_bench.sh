#!/usr/bin/env bash
# History API latency with 1,000 commits x 500 tests and 10,000,000 stored runs, and the server's
# RSS then (issue 4's figures). The data dir is made by build/bench/history_gen (about 80 s) and
# kept in DATA (default $TMPDIR/testlooper-history-bench) for the next run.
# Prints: the server's start-up time (loading the store), the latency of GET .../history?limit=N
# for N = 100 and 1000 (best and median of 5), of the changes endpoint and of one commit, and RSS.
# Usage: bench/history_bench.sh [path/to/build]
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

port=$((20000 + RANDOM % 20000))
start=$(date +%s.%N)
"$build/testlooper" serve --repos "$repos" --data "$data" --port "$port" --workers 0 --poll-seconds 3600 \
  --extra-runs 0 >"$repos/serve.log" 2>&1 &
server_pid=$!
api="http://127.0.0.1:$port/api"
until curl -sf "$api/repos" >/dev/null; do sleep 0.2; done
printf 'start-up (load 10M runs): %.1f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"

measure() {  # name url
  local times=()
  for _ in 1 2 3 4 5; do times+=("$(curl -sf -o /dev/null -w '%{time_total}' "$2")"); done
  local sorted
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  printf '%-28s best %6.0f ms, median %6.0f ms, %s\n' "$1" "$(echo "$(echo "$sorted" | head -1) * 1000" | bc)" \
    "$(echo "$(echo "$sorted" | sed -n 3p) * 1000" | bc)" \
    "$(curl -sf -o /dev/null -w '%{size_download} bytes' "$2")"
}
head=$(curl -sf "$api/repos/app/branches" | grep -o '"head":"[0-9a-f]*"' | cut -d'"' -f4)
measure "history?limit=100" "$api/repos/app/branches/main/history?limit=100"
measure "history?limit=1000" "$api/repos/app/branches/main/history?limit=1000"
measure "changes" "$api/repos/app/branches/main/changes"
measure "commit (head)" "$api/repos/app/commits/$head"
printf 'server RSS: %d MB\n' $(($(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status") / 1024))
