#!/usr/bin/env bash
# What a token costs per request (issue 12): REQUESTS keep-alive GETs of /api/repos through one
# curl, against `serve --auth none` without a token and `serve --auth token` with a viewer
# token (looked up in state.db by its hash at every request). Prints requests per second each.
# Usage: bench/access_bench.sh [path/to/testlooper] [requests]
set -euo pipefail

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
requests="${2:-2000}"
work="$(mktemp -d)"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/repos/bench"
git -C "$work/repos/bench" init -q -b main
printf 'looper_version: 5\nenvironments: {host: {platform: linux, image: {host: true}}}\ntests:\n  t/host: {command: "true"}\n' \
  > "$work/repos/bench/testlooper.yml"
git -C "$work/repos/bench" add testlooper.yml
git -C "$work/repos/bench" -c user.name=bench -c user.email=bench@localhost commit -qm bench

# measure MODE [TOKEN]: requests per second.
measure() {
  local port=$((20000 + RANDOM % 20000)) header=()
  "$testlooper" serve --repos "$work/repos" --data "$work/data" --port "$port" --workers 0 \
    --auth "$1" >"$work/serve.log" 2>&1 &
  server_pid=$!
  [ -n "${2:-}" ] && header=(-H "Authorization: Bearer $2")
  local url="http://127.0.0.1:$port/api/repos"
  until curl -sf "${header[@]}" "$url" | grep -q bench; do sleep 0.2; done
  local urls=()
  for _ in $(seq "$requests"); do urls+=("$url"); done
  local start end
  start=$(date +%s.%N)
  curl -sf "${header[@]}" "${urls[@]}" >/dev/null
  end=$(date +%s.%N)
  stop_server
  echo "scale=0; $requests / ($end - $start)" | bc
}

token="$("$testlooper" token create --data "$work/data" --name bench --role viewer)"
echo "auth none, no token:     $(measure none) requests/s"
echo "auth token, viewer token: $(measure token "$token") requests/s"
