#!/usr/bin/env bash
# Dispatches per second through `testlooper serve` with many connected workers (issue 18, row 3):
# bench/fake_workers.py holds WORKERS worker connections (one core each) and answers every job
# at once with a passing result. ROUNDS rounds of RUNS runs of one test (the head's target raised
# by RUNS each round); each prints jobs per second from the POST to its last job, and how often
# a worker waited more than 0.1 s for a job while runs waited (sampled every 50 ms: goal 0; the
# runs wait from the target's POST, so a worker's wait before it is not counted). The
# server's CPU per dispatch (utime + stime from /proc/PID/stat over the rounds) and the median
# are printed last. PERF=1 records the server with `perf record -g` (perf.data here).
# RESULT_LOG=1: each result carries a log like a real worker's (fake_workers.py), so the server
# also makes a log file per run: the server's own cost per run of bench/serve_bench.sh, without
# the runs' processes on the same cores. RESULT_DELAY=S: each result S seconds after its job (a
# run's duration), for the server's cost at a real worker's rate. As root, the page cache is
# dropped first, as serve_bench.sh does and why (KEEP_CACHE=1 keeps it). The server polls git
# every POLL_SECONDS (default 10, as in serve_bench.sh; 0.2 until 2026-12-02: 13% of the server's
# CPU at 220 runs/s, per second rather than per run).
# Usage: bench/dispatch_bench.sh [path/to/testlooper] [workers] [runs] [rounds]
set -euo pipefail
if [ "$(id -u)" = 0 ] && [ "${KEEP_CACHE:-}" != 1 ]; then
  sync
  echo 3 >/proc/sys/vm/drop_caches
fi

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
workers="${2:-100}"
runs="${3:-5000}"
rounds="${4:-5}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
server_pid=""
perf_pid=""
cleanup() {
  [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/repos/bench"
git -C "$work/repos/bench" init -q -b main
cat > "$work/repos/bench/testlooper.yml" <<'YAML'
looper_version: 5
environments:
  host: {platform: linux, image: {host: true}}
tests:
  trivial/host: {command: "true"}
YAML
git -C "$work/repos/bench" add testlooper.yml
git -C "$work/repos/bench" -c user.name=bench -c user.email=bench@localhost commit -qm bench
head="$(git -C "$work/repos/bench" rev-parse HEAD)"

port=$((20000 + RANDOM % 20000))
"$testlooper" serve --repos "$work/repos" --data "$work/data" --port "$port" --workers 0 \
  --poll-seconds "${POLL_SECONDS:-10}" --extra-runs 0 --max-connections-per-client $((workers + 64)) >"$work/serve.log" 2>&1 &
server_pid=$!
api="http://127.0.0.1:$port/api"
until curl -sf "$api/repos" | grep -q bench; do sleep 0.2; done
curl -sf -X POST -H "Content-Type: application/json" -d '{"enabled": true, "depth": 0}' \
  "$api/repos/bench/branches/main/test" >/dev/null
count() { curl -sf "$api/repos/bench/commits/$head" | grep -o '"runs":[0-9]*' | head -1 | cut -d: -f2; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

total=0
rates=()
idle=0
server_ticks=0
for round in $(seq 1 "$rounds"); do
  mkfifo "$work/ready$round" "$work/go$round"
  python3 "$here/fake_workers.py" "$port" "$(cat "$work/data/worker.token")" "$workers" \
    "$((round == 1 ? runs + 1 : runs))" <"$work/go$round" >"$work/ready$round" &
  bench_pid=$!
  exec 4>"$work/go$round"
  exec 3<"$work/ready$round"
  read -r _ <&3  # "connected"
  until [ "$(curl -sf "$api/workers" | grep -o '"connected":true' | wc -l)" -ge "$workers" ]; do sleep 0.1; done
  [ "$round" = 1 ] && until [ "$(count)" = "1" ]; do sleep 0.1; done
  total=$((total + runs + (round == 1 ? 1 : 0)))
  if [ "${PERF:-}" = 1 ] && [ -z "$perf_pid" ]; then
    perf record --call-graph dwarf,16384 -F 499 -o perf.data -p "$server_pid" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
  fi
  t0=$(ticks "$server_pid")
  curl -sf -X POST -H "Content-Type: application/json" \
    -d "{\"name\": \"trivial/host\", \"runs\": $total}" "$api/repos/bench/commits/$head/targets" >/dev/null
  echo posted >&4  # the runs wait from now
  exec 4>&-
  read -r line <&3
  exec 3<&-
  until [ "$(count)" -ge "$total" ]; do sleep 0.05; done
  server_ticks=$((server_ticks + $(ticks "$server_pid") - t0))
  wait "$bench_pid"
  jobs_done=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"])')
  seconds=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  round_idle=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["idle_samples"])')
  samples=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])')
  rate=$(echo "$jobs_done / $seconds" | bc -l)
  rates+=("$rate")
  idle=$((idle + round_idle))
  printf 'round %d: %d dispatches in %.2f s = %.0f/s; samples with a worker idle while runs waited: %d of %d\n' \
    "$round" "$jobs_done" "$seconds" "$rate" "$round_idle" "$samples"
done
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; perf_pid=""; fi
median=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
cpu_ms=$(echo "$server_ticks * 1000 / $hz / $total" | bc -l)
printf 'serve, %d connected workers%s: median of %d rounds %.0f dispatches/s (goal >= 1000: %s); idle-while-waiting samples %d (goal 0); server CPU %.3f ms per run; load average %s\n' \
  "$workers" "$([ "${RESULT_LOG:-}" = 1 ] && echo ', a log in each result')" "$rounds" "$median" "$(echo "$median >= 1000" | bc | sed 's/1/met/;s/0/missed/')" \
  "$idle" "$cpu_ms" "$(cut -d' ' -f1-3 /proc/loadavg)"
