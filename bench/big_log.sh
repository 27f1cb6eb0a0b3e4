#!/usr/bin/env bash
# Issue 11's figure: server and worker memory while a test writes 1 GB of log, default settings
# (`--max-log-mb` 64). One repo with one host test writing SIZE bytes; `testlooper serve` with no
# local worker and one external `testlooper worker` (its own --dir, so the log goes over the
# worker protocol). Prints VmRSS before and after, and VmHWM (peak) after, of both processes,
# and the sizes of the kept logs.
# Usage: bench/big_log.sh [path/to/testlooper] [bytes, default 1000000000]
set -euo pipefail

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
size="${2:-1000000000}"
work="$(mktemp -d)"
server_pid=""
worker_pid=""
cleanup() {
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/repos/bench"
git -C "$work/repos/bench" init -q -b main
cat > "$work/repos/bench/testlooper.yml" <<YAML
looper_version: 5
environments:
  host: {platform: linux, image: {host: true}}
tests:
  big-log/host: {command: "yes 'a line of log output from a chatty test' | head -c $size"}
YAML
git -C "$work/repos/bench" add testlooper.yml
git -C "$work/repos/bench" -c user.name=bench -c user.email=bench@localhost commit -qm bench
head="$(git -C "$work/repos/bench" rev-parse HEAD)"

"$testlooper" serve --repos "$work/repos" --data "$work/data" --port 0 --workers 0 \
  --poll-seconds 0.2 --extra-runs 0 >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
until grep -q ':[0-9]' "$work/serve.out" 2>/dev/null; do sleep 0.1; done
port="$(grep -o ':[0-9]*' "$work/serve.out" | tail -1 | tr -d :)"
api="http://127.0.0.1:$port/api"
until curl -sf "$api/repos" | grep -q bench; do sleep 0.2; done
"$testlooper" worker --server "http://127.0.0.1:$port" --dir "$work/worker" --cores 1 \
  --ram-gb 1 --id bench --token-file "$work/data/worker.token" >"$work/worker.log" 2>&1 &
worker_pid=$!
until curl -sf "$api/workers" | grep -q '"bench"'; do sleep 0.2; done

mem() { awk -v f="$2" '$1 == f":" {print int($2 / 1024)}' "/proc/$1/status"; }
server_before=$(mem "$server_pid" VmRSS)
worker_before=$(mem "$worker_pid" VmRSS)
start=$(date +%s.%N)
curl -sf -X POST -H 'Content-Type: application/json' -d '{"enabled": true, "depth": 0}' \
  "$api/repos/bench/branches/main/test" >/dev/null
state() { curl -sf "$api/repos/bench/commits/$head/runs" | grep -o '"state": *"[a-z_]*"' | head -1; }
until state | grep -qv running; do sleep 0.5; done
seconds=$(echo "$(date +%s.%N) - $start" | bc)

printf 'a test writing %d bytes of log, --max-log-mb 64 (default): run %s in %.1f s\n' \
  "$size" "$(state | grep -o '"[a-z_]*"$')" "$seconds"
printf 'server RSS %d MB before, %d MB after, peak (VmHWM) %d MB\n' \
  "$server_before" "$(mem "$server_pid" VmRSS)" "$(mem "$server_pid" VmHWM)"
printf 'worker RSS %d MB before, %d MB after, peak (VmHWM) %d MB\n' \
  "$worker_before" "$(mem "$worker_pid" VmRSS)" "$(mem "$worker_pid" VmHWM)"
for log in "$work"/data/logs/*.log "$work"/data/artifacts/runs/*/log.txt; do
  printf '%s: %d bytes, ends: %s\n' "${log#"$work"/}" "$(stat -c %s "$log")" "$(tail -c 200 "$log" | tail -1)"
done
