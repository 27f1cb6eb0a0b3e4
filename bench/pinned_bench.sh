#!/usr/bin/env bash
# Runs of a build pinned by sha at a commit no branch reaches (issue 11 item 4's figure: it was
# started and cancelled in a loop, 23 cancelled runs in 20 s). Repo `lib` has commit X on branch
# `side`, which the server ingests and which is then deleted; repo `app` pins lib/X and has a test
# that needs X's build (which takes 1 s). app's main is put under test with one local worker, and
# after SECONDS seconds the runs of X's build are counted by state through the API.
# Usage: bench/pinned_bench.sh [path/to/testlooper] [seconds]
set -euo pipefail

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
seconds="${2:-20}"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
git_in() { git -C "$1" -c user.name=bench -c user.email=bench@localhost "${@:2}"; }

mkdir -p "$work/repos/lib" "$work/repos/app"
git_in "$work/repos/lib" init -q -b main
echo lib > "$work/repos/lib/README"
git_in "$work/repos/lib" add README
git_in "$work/repos/lib" commit -qm base
git_in "$work/repos/lib" checkout -q -b side
cat > "$work/repos/lib/testlooper.yml" <<'YAML'
looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
builds: {libbuild/linux: {command: 'sleep 1; date +%s%N > $TEST_BUILD_OUTPUT_DIR/stamp'}}
YAML
git_in "$work/repos/lib" add testlooper.yml
git_in "$work/repos/lib" commit -qm X
x="$(git -C "$work/repos/lib" rev-parse HEAD)"
git_in "$work/repos/lib" checkout -q main
git_in "$work/repos/app" init -q -b main
cat > "$work/repos/app/testlooper.yml" <<YAML
looper_version: 5
repos: {lib: lib/$x}
environments: {linux: {platform: linux, image: {host: true}}}
tests:
  uses-lib/linux: {command: 'test -s \$TEST_INPUTS/lib/stamp', dependencies: {lib: lib/libbuild/linux}}
YAML
git_in "$work/repos/app" add testlooper.yml
git_in "$work/repos/app" commit -qm "uses lib"

port=$((20000 + RANDOM % 20000))
"$testlooper" serve --repos "$work/repos" --data "$work/data" --port "$port" --workers 1 \
  --worker-cores 2 --worker-ram-gb 2 --poll-seconds 0.3 --extra-runs 0 >"$work/serve.log" 2>&1 &
server_pid=$!
api="http://127.0.0.1:$port/api"
until curl -sf "$api/repos/lib/commits/$x" | grep -q "\"sha\":\"$x\""; do sleep 0.2; done
git_in "$work/repos/lib" branch -q -D side
curl -sf -X POST -H "Content-Type: application/json" -d '{}' "$api/refresh" >/dev/null
until [ "$(curl -sf "$api/repos/lib/branches" | grep -o '"name"' | wc -l)" = 1 ]; do sleep 0.2; done
curl -sf -X POST -H "Content-Type: application/json" -d '{"enabled": true, "depth": 0}' "$api/repos/app/branches/main/test" >/dev/null
sleep "$seconds"
runs="$(curl -sf "$api/repos/lib/commits/$x/runs?name=libbuild/linux")"
state() { echo "$runs" | grep -o "\"state\":\"$1\"" | wc -l; }
printf 'pinned build at an unreachable commit, %d s under test: %d runs (%d succeeded, %d cancelled, %d running)\n' \
  "$seconds" "$(echo "$runs" | grep -o '"state"' | wc -l)" "$(state succeeded)" "$(state cancelled)" "$(state running)"
