#!/usr/bin/env bash
# ThreadSanitizer over the server and its workers (issue 11). Builds testlooper with
# -fsanitize=thread into build-tsan (clang-16, like build-fuzz and build-asan), then drives a real
# `testlooper serve` with two real `testlooper worker`s (one local, started by the server with
# --shared-disk; one external, which fetches sources over HTTP) through RUNS short test runs (a
# passing test, a flaky one, one that writes a log), with live-log viewers on the newest runs and
# an /api/events viewer connected all along (both through bash's /dev/tcp). Halfway the external
# worker is killed (-9) and started again; at the end the server and worker get SIGTERM with runs
# in flight. Prints every ThreadSanitizer report (kept in build-tsan/tsan-reports) and exits 1
# when there is one.
# Usage: bench/tsan.sh [runs]          (default 300; SKIP_BUILD=1 uses build-tsan as it is)
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-300}"
if [[ -z "${SKIP_BUILD:-}" ]]; then
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}" CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DTESTLOOPER_SANITIZE=thread >/dev/null
  nice cmake --build build-tsan --target testlooper
fi
testlooper="$PWD/build-tsan/testlooper"
reports="$PWD/build-tsan/tsan-reports"
rm -rf "$reports"
mkdir -p "$reports"
export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:log_path=$reports/report"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/repos/bench"
git -C "$work/repos/bench" init -q -b main
cat >"$work/repos/bench/testlooper.yml" <<'YAML'
looper_version: 5
environments:
  host: {platform: linux, image: {host: true}}
tests:
  pass/host: {command: "true"}
  flaky/host: {command: "[ $(od -An -N1 -tu1 /dev/urandom) -gt 40 ]"}
  log/host: {command: "seq 1 2000; sleep 0.1; seq 1 2000 >&2"}
YAML
git -C "$work/repos/bench" add testlooper.yml
git -C "$work/repos/bench" -c user.name=bench -c user.email=bench@localhost commit -qm bench
head="$(git -C "$work/repos/bench" rev-parse HEAD)"

: >"$work/serve.out"
"$testlooper" serve --repos "$work/repos" --data "$work/data" --port 0 --workers 1 \
  --worker-cores 2 --worker-ram-gb 2 --poll-seconds 0.2 >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
pids+=("$server_pid")
until grep -q listening "$work/serve.out"; do
  kill -0 "$server_pid" || { cat "$work/serve.err"; exit 1; }
  sleep 0.1
done
port="$(grep -o '[0-9]*$' "$work/serve.out" | head -1)"
api="http://127.0.0.1:$port/api"
start_worker() {
  "$testlooper" worker --server "http://127.0.0.1:$port" --dir "$work/worker" --id external \
    --cores 2 --ram-gb 2 --token-file "$work/data/worker.token" 2>>"$work/worker.err" &
  worker_pid=$!
  pids+=("$worker_pid")
}
start_worker

# A WebSocket viewer on PATH: the upgrade, then everything the server sends until it closes (or
# for at most SECONDS); the frames are not parsed, only read.
# The bytes each viewer received are added to $work/viewed.KIND.
view() {
  local path="$1" seconds="$2" kind="$3"
  timeout "$seconds" bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 0
    printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" "$1" >&3
    cat <&3' "$port" "$path" 2>/dev/null | wc -c >>"$work/viewed.$kind" || true
}
viewed() { awk '{ n += $1; c += 1 } END { printf "%d viewers, %d bytes", c, n }' "$work/viewed.$1"; }
# The events stream, reconnected whenever the server closes it (it pings; nobody answers).
(while [[ ! -e "$work/stopping" ]]; do view /api/events 20 events; done) &
pids+=("$!")

until curl -sf "$api/workers" | grep -o '"connected":true' | wc -l | grep -q 2; do sleep 0.2; done
curl -sf -X POST -H "Content-Type: application/json" -d '{"enabled": true, "depth": 0}' \
  "$api/repos/bench/branches/main/test" >/dev/null
until curl -sf "$api/repos/bench/commits/$head" | grep -q '"name":"log/host"'; do sleep 0.2; done
per_test=$(((runs + 2) / 3))
# Sets each test's target to $1 runs.
target() {
  for test in pass/host flaky/host log/host; do
    curl -sf -X POST -H "Content-Type: application/json" \
      -d "{\"name\": \"$test\", \"runs\": $1}" "$api/repos/bench/commits/$head/targets" >/dev/null
  done
}
target "$per_test"
# Finished runs of the commit's three tests.
finished() {
  curl -sf "$api/repos/bench/commits/$head" | grep -o '"runs":[0-9]*' | cut -d: -f2 |
    awk '{ n += $1 } END { print n + 0 }'
}
start=$(date +%s)
killed=""
while (($(finished) < 3 * per_test)); do
  # Halfway, the external worker is killed with its runs in flight and starts again.
  if [[ -z "$killed" ]] && (($(finished) > 3 * per_test / 2)); then
    kill -KILL "$worker_pid"
    wait "$worker_pid" 2>/dev/null || true
    start_worker
    killed=yes
    echo "tsan: external worker killed (-9) and started again after $(finished) runs"
  fi
  # Live logs of the three newest runs.
  for id in $(curl -sf "$api/repos/bench/commits/$head/runs" | grep -o '"id":"[0-9a-f]\{16\}"' |
    head -3 | cut -d'"' -f4); do
    view "/api/runs/$id/log/live" 5 log &
  done
  if (($(date +%s) - start > 1800)); then
    echo "tsan: only $(finished) of $((3 * per_test)) runs finished in 30 min" >&2
    break
  fi
  sleep 0.5
done
echo "tsan: $(finished) runs finished in $(($(date +%s) - start)) s; runs per worker:" \
  "$(curl -sf "$api/repos/bench/commits/$head/runs" | grep -o '"worker":"[^"]*"' | sort | uniq -c |
    tr -s ' \n' ' ')"

# The server is stopped with runs in flight and viewers connected.
target $((per_test + 1000))
until curl -sf "$api/repos/bench/commits/$head/runs" | grep -q '"state":"running"'; do
  sleep 0.1
done
for id in $(curl -sf "$api/repos/bench/commits/$head/runs" | grep -o '"id":"[0-9a-f]\{16\}"' |
  head -3 | cut -d'"' -f4); do
  view "/api/runs/$id/log/live" 5 log &
done
sleep 0.5
echo "tsan: SIGTERM with $(curl -sf "$api/repos/bench/commits/$head/runs" |
  grep -o '"state":"running"' | wc -l) runs in flight"
touch "$work/stopping"
kill -TERM "$worker_pid" "$server_pid"
wait "$worker_pid" || echo "tsan: the external worker exited $?"
wait "$server_pid" || echo "tsan: the server exited $?"
pids=()
wait 2>/dev/null || true
echo "tsan: live logs: $(viewed log); events: $(viewed events)"

shopt -s nullglob
found=("$reports"/report.*)
if ((${#found[@]})); then
  cat "${found[@]}"
  warnings=$(cat "${found[@]}" | grep -c '^WARNING: ThreadSanitizer' || true)
  echo "tsan: ${#found[@]} process(es) with ThreadSanitizer reports ($warnings warnings)," \
    "kept in $reports"
  exit 1
fi
echo "tsan: no ThreadSanitizer report"
