#!/usr/bin/env bash
# Trivial runs per second through `testlooper serve` with 2 local workers (issue 18, row 2): the
# median of ROUNDS rounds of RUNS runs each on one server, and the server's CPU per run (its own
# utime + stime from /proc/PID/stat over the rounds, divided by the runs; the local workers'
# CPU is printed apart). Then the machine's ceiling (as many `true` processes, two at a time) and,
# for scale, `testlooper run --jobs 2` of the same test once.
# A repo with one test (`true`) on the host; each round raises the head's target by RUNS; the
# clock runs from the target being set to the API showing those runs finished.
# Usage: bench/serve_bench.sh [path/to/testlooper] [runs] [tls] [rounds]
# With `tls` the server speaks HTTPS/WSS (a self-signed certificate made with openssl; the local
# workers pin it), to measure what TLS costs. PERF=1 records the server with `perf record -g`
# during the rounds (perf.data in the current directory). The server polls git every
# POLL_SECONDS (default 10, serve's own default; the bench used 0.2 until 2026-12-01, which made
# the watcher and the pin mover open the repo and stat its config files 5 times a second:
# about 5-8% of the server's CPU here, per second rather than per run).
# As root, the page cache is written back and dropped first (KEEP_CACHE=1 keeps it): on ext4
# without a journal, inodes deleted in the last minutes (a previous bench's `rm -rf`, a build's
# temporary files) stay "recently deleted" while their inode table block is cached, and every
# file created meanwhile in their block group walks past them: back-to-back rounds measured the
# file system's recent past (430-570 runs/s) more than this code (1,000+ runs/s).
set -euo pipefail
if [ "$(id -u)" = 0 ] && [ "${KEEP_CACHE:-}" != 1 ]; then
  sync
  echo 3 >/proc/sys/vm/drop_caches
fi

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
runs="${2:-1000}"
tls="${3:-}"
rounds="${4:-5}"
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
tls_flags=()
scheme=http
if [ "$tls" = tls ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  tls_flags=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
  scheme=https
  export CURL_CA_BUNDLE="$work/cert.pem"
fi
"$testlooper" serve --repos "$work/repos" --data "$work/data" --port "$port" --workers 2 \
  --worker-cores 2 --worker-ram-gb 2 --poll-seconds "${POLL_SECONDS:-10}" --extra-runs 0 ${tls_flags[@]+"${tls_flags[@]}"} \
  >"$work/serve.log" 2>&1 &
server_pid=$!
api="$scheme://127.0.0.1:$port/api"
until curl -sf "$api/repos" | grep -q bench; do sleep 0.2; done
until [ "$(curl -sf "$api/workers" | grep -o '"connected":true' | wc -l)" -ge 2 ]; do sleep 0.2; done
curl -sf -X POST -H "Content-Type: application/json" -d '{"enabled": true, "depth": 0}' "$api/repos/bench/branches/main/test" >/dev/null
count() { curl -sf "$api/repos/bench/commits/$head" | grep -o '"runs":[0-9]*' | head -1 | cut -d: -f2; }
until [ "$(count)" = "1" ]; do sleep 0.1; done

# utime + stime of a process and of its children (the local workers), in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
workers_ticks() {
  local t=0 p
  for p in $(pgrep -P "$server_pid"); do t=$((t + $(ticks "$p"))); done
  echo "$t"
}
hz=$(getconf CLK_TCK)
if [ "${PERF:-}" = 1 ]; then
  perf record --call-graph dwarf,16384 -F 499 -o perf.data -p "$server_pid" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 1
fi

total=1
rates=()
server_ticks0=$(ticks "$server_pid")
workers_ticks0=$(workers_ticks)
for round in $(seq 1 "$rounds"); do
  total=$((total + runs))
  # One process posts the target and polls (a shell loop of curl | grep every 50 ms took a
  # fifth of the CPU where starting a process is slow).
  seconds=$(python3 "$(dirname "$0")/serve_round.py" "$api" "repos/bench/commits/$head" "$total" \
    ${CURL_CA_BUNDLE:+"$CURL_CA_BUNDLE"})
  rate=$(echo "$runs / $seconds" | bc -l)
  rates+=("$rate")
  printf 'round %d: %d runs in %.2f s = %.0f runs/s\n' "$round" "$runs" "$seconds" "$rate"
done
server_ms=$(echo "($(ticks "$server_pid") - $server_ticks0) * 1000 / $hz / ($runs * $rounds)" | bc -l)
workers_ms=$(echo "($(workers_ticks) - $workers_ticks0) * 1000 / $hz / ($runs * $rounds)" | bc -l)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; perf_pid=""; fi
median=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

printf 'serve (%s), 2 local workers: median of %d rounds %.0f runs/s (goal >= 1000: %s); server CPU %.3f ms/run (goal <= 0.5: %s); local workers %.3f ms/run; server RSS %d MB; load average %s\n' \
  "$scheme" "$rounds" "$median" "$(echo "$median >= 1000" | bc | sed 's/1/met/;s/0/missed/')" \
  "$server_ms" "$(echo "$server_ms <= 0.5" | bc | sed 's/1/met/;s/0/missed/')" "$workers_ms" \
  $((rss_kb / 1024)) "$(cut -d' ' -f1-3 /proc/loadavg)"

# The machine's own ceiling for such runs, in the same sitting: starting `true` RUNS times, two
# at a time, as the worker starts a plain command line (posix_spawn of the program itself), with
# nothing else done or recorded. (`xargs -P2` forks, which costs twice as much here.)
ceiling_seconds=$(python3 - "$runs" <<'PY'
import os, shutil, sys, time
half, true = int(sys.argv[1]) // 2, shutil.which("true")
start = time.monotonic()
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        for _ in range(half):
            os.waitpid(os.posix_spawn(true, ["true"], os.environ), 0)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(time.monotonic() - start)
PY
)
ceiling=$(echo "2 * ($runs / 2) / $ceiling_seconds" | bc -l)
printf 'ceiling: %d posix_spawn of true, two at a time: %.0f/s; serve'"'"'s median is %.0f%% of it\n' \
  "$((2 * (runs / 2)))" "$ceiling" "$(echo "100 * $median / $ceiling" | bc -l)"

if [ "${SKIP_RUN:-}" != 1 ]; then
  start=$(date +%s.%N)
  "$testlooper" run --repo "$work/repos/bench" --store "$work/store" --runs "$runs" --jobs 2 >/dev/null 2>&1
  run_seconds=$(echo "$(date +%s.%N) - $start" | bc)
  printf 'testlooper run --jobs 2: %d runs in %.1f s = %.0f runs/s\n' \
    "$runs" "$run_seconds" "$(echo "$runs / $run_seconds" | bc -l)"
fi
