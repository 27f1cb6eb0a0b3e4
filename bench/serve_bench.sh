#!/usr/bin/env bash
# Trivial runs per second through `testlooper serve` with 2 local workers (issue 4's figure), and,
# measured in the same run for scale, `testlooper run --jobs 2` of the same test.
# A repo with one test (`true`) on the host; the head is put under test with a target of RUNS
# runs; the clock runs from the target being set to the API showing RUNS finished runs.
# Usage: bench/serve_bench.sh [path/to/testlooper] [runs] [tls]
# With `tls` the server speaks HTTPS/WSS (a self-signed certificate made with openssl; the local
# workers pin it), to measure what TLS costs.
set -euo pipefail

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
runs="${2:-1000}"
tls="${3:-}"
work="$(mktemp -d)"
server_pid=""
cleanup() {
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
  --worker-cores 2 --worker-ram-gb 2 --poll-seconds 0.2 --extra-runs 0 ${tls_flags[@]+"${tls_flags[@]}"} \
  >"$work/serve.log" 2>&1 &
server_pid=$!
api="$scheme://127.0.0.1:$port/api"
until curl -sf "$api/repos" | grep -q bench; do sleep 0.2; done
until [ "$(curl -sf "$api/workers" | grep -o '"connected":true' | wc -l)" -ge 2 ]; do sleep 0.2; done
curl -sf -X POST -H "Content-Type: application/json" -d '{"enabled": true, "depth": 0}' "$api/repos/bench/branches/main/test" >/dev/null
count() { curl -sf "$api/repos/bench/commits/$head" | grep -o '"runs":[0-9]*' | head -1 | cut -d: -f2; }
until [ "$(count)" = "1" ]; do sleep 0.1; done
start=$(date +%s.%N)
curl -sf -X POST -H "Content-Type: application/json" -d "{\"name\": \"trivial/host\", \"runs\": $((runs + 1))}" "$api/repos/bench/commits/$head/targets" >/dev/null
until [ "$(count)" -ge $((runs + 1)) ]; do sleep 0.1; done
serve_seconds=$(echo "$(date +%s.%N) - $start" | bc)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")

start=$(date +%s.%N)
"$testlooper" run --repo "$work/repos/bench" --store "$work/store" --runs "$runs" --jobs 2 >/dev/null 2>&1
run_seconds=$(echo "$(date +%s.%N) - $start" | bc)

printf 'serve (%s), 2 local workers: %d runs in %.1f s = %.1f runs/s (server RSS %d MB)\n' \
  "$scheme" "$runs" "$serve_seconds" "$(echo "$runs / $serve_seconds" | bc -l)" $((rss_kb / 1024))
printf 'testlooper run --jobs 2: %d runs in %.1f s = %.1f runs/s\n' \
  "$runs" "$run_seconds" "$(echo "$runs / $run_seconds" | bc -l)"
printf 'ratio serve/run throughput: %.2f\n' "$(echo "$run_seconds / $serve_seconds" | bc -l)"
