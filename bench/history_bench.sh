#!/usr/bin/env bash
# History API latency with 1,000 commits x 500 tests and 10,000,000 stored runs, and the server's
# RSS then (issue 4's figures). The data dir is made by build/bench/history_gen (about 80 s) and
# kept in DATA (default $TMPDIR/testlooper-history-bench) for the next run.
# Prints: the server's start-up time (loading the store), the latency of GET .../history?limit=N
# for N = 100 and 1000 (the first answer, which computes the statistics, then best and median of
# 5), of the changes endpoint and of one commit, each against its goal (issue 18), the server's
# CPU time over the requests, the load average, and RSS.
# The server is given a repos dir that does not exist: a folder it cannot list says nothing of
# which repos are gone (an empty one would make it forget "app", whose path is made up).
# Usage: bench/history_bench.sh [path/to/build]
set -euo pipefail

build="$(realpath "${1:-$(dirname "$0")/../build}")"
data="${DATA:-${TMPDIR:-/tmp}/testlooper-history-bench}"
[ -f "$data/state.db" ] || "$build/bench/history_gen" "$data"
repos="$(mktemp -d)"
mkdir "$repos/log"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$repos"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
start=$(date +%s.%N)
"$build/testlooper" serve --repos "$repos/none" --data "$data" --port "$port" --workers 0 --poll-seconds 3600 \
  --extra-runs 0 >"$repos/log/serve.log" 2>&1 &
server_pid=$!
api="http://127.0.0.1:$port/api"
until curl -sf "$api/repos" >/dev/null; do sleep 0.2; done
printf 'start-up (load 10M runs): %.1f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"

cpu_ms() {  # the server's user + system CPU time so far
  awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$server_pid/stat"
}
measure() {  # name url goal_ms
  local first times=() cpu
  first=$(curl -sf -o /dev/null -w '%{time_total}' "$2")
  cpu=$(cpu_ms)
  for _ in 1 2 3 4 5; do times+=("$(curl -sf -o /dev/null -w '%{time_total}' "$2")"); done
  cpu=$(($(cpu_ms) - cpu))
  local sorted median
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  median=$(echo "$(echo "$sorted" | sed -n 3p) * 1000" | bc)
  printf '%-20s first %6.0f ms; best %6.0f ms, median %6.0f ms (goal %s ms: %s); server CPU %d ms per answer; %s\n' \
    "$1" "$(echo "$first * 1000" | bc)" "$(echo "$(echo "$sorted" | head -1) * 1000" | bc)" "$median" "${3:--}" \
    "$([ -z "${3:-}" ] && echo "-" || { [ "$(echo "$median < $3" | bc)" = 1 ] && echo met || echo "NOT met"; })" \
    $((cpu / 5)) "$(curl -sf -o /dev/null -w '%{size_download} bytes' "$2")"
}
head=$(curl -sf "$api/repos/app/branches" | grep -o '"head":"[0-9a-f]*"' | cut -d'"' -f4)
measure "history?limit=100" "$api/repos/app/branches/main/history?limit=100" 100
measure "history?limit=1000" "$api/repos/app/branches/main/history?limit=1000"
measure "changes" "$api/repos/app/branches/main/changes" 100
measure "commit (head)" "$api/repos/app/commits/$head" 20
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'server RSS: %d MB\n' $(($(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status") / 1024))
