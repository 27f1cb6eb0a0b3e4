#!/usr/bin/env bash
# Issue 11 item 1's figure: a commit with one AMI test (no worker runs AMIs), one test on a
# Dockerfile that does not build, one test no disk can hold (min_disk_gb: an infrastructure
# failure on every worker, with or without docker) and three normal tests, under test for
# DURATION seconds (default 120) with the default back-off (10 s, doubling; blocked after 5 in a
# row), on 2 local workers of 2 cores. Before the fix this made thousands of infra runs.
# Prints, per object: its status, counted runs, infrastructure failures; then the total of
# infrastructure failures (must be <= 10) and whether the normal tests reached their targets.
# Usage: bench/infra_flood.sh [path/to/build]
set -euo pipefail

build="$(realpath "${1:-$(dirname "$0")/../build}")"
duration="${DURATION:-120}"
target="${TARGET:-20}"
dir="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/repos/app"
cd "$dir/repos/app"
git init -q -b main
cat >testlooper.yml <<'YML'
looper_version: 5
environments:
  linux: {platform: linux, image: {host: true}}
  cloud: {platform: linux, image: {base_ami: ami-0123456789abcdef0}}
  broken: {platform: linux, image: {dockerfile_contents: "FROM scratch\nRUN true\n"}}
tests:
  t1/linux: {command: 'sleep 0.2'}
  t2/linux: {command: 'sleep 0.2'}
  t3/linux: {command: 'sleep 0.2'}
  ami/cloud: {command: 'true'}
  docker/broken: {command: 'true'}
  huge/linux: {command: 'true', min_disk_gb: 1000000000}
YML
git add -A
git -c user.name=bench -c user.email=bench@example.com commit -qm "the flood case"
sha=$(git rev-parse HEAD)
cd "$dir"

port=$((20000 + RANDOM % 20000))
# Its own process group, so that its local workers stop with it.
setsid "$build/testlooper" serve --repos "$dir/repos" --data "$dir/data" --port "$port" --workers 2 \
  --worker-cores 2 --worker-ram-gb 2 --poll-seconds 1 --default-runs "$target" --extra-runs 0 \
  >"$dir/serve.log" 2>&1 &
server_pid=$!
api="http://127.0.0.1:$port/api"
until curl -sf "$api/repos" | grep -q app; do sleep 0.2; done
curl -sf -X POST -H 'Content-Type: application/json' -d '{"enabled": true}' \
  "$api/repos/app/branches/main/test" >/dev/null
sleep "$duration"

infra_total=0
reached=yes
printf '%-16s %-16s %6s %6s  %s\n' object status runs infra reason
for name in t1/linux t2/linux t3/linux ami/cloud docker/broken huge/linux; do
  object=$(curl -sf "$api/repos/app/commits/$sha" | jq -c --arg n "$name" '.objects[] | select(.name == $n)')
  infra=$(curl -sf "$api/repos/app/commits/$sha/runs?name=$name" | jq '[.[] | select(.state == "infra_failed")] | length')
  runs=$(jq '.runs' <<<"$object")
  infra_total=$((infra_total + infra))
  printf '%-16s %-16s %6s %6s  %s\n' "$name" "$(jq -r .status <<<"$object")" "$runs" "$infra" \
    "$(jq -r .reason <<<"$object" | cut -c1-70)"
  case "$name" in t?/linux) [ "$runs" -ge "$target" ] || reached=no ;; esac
done
echo "after ${duration} s: ${infra_total} infrastructure runs in all (limit 10); normal tests reached ${target} runs each: ${reached}"
