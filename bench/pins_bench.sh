#!/usr/bin/env bash
# Pins that move (issue 13): N repos `app0..` each pin `lib`'s main with auto: true. After a push
# to lib, how long until every app has its `Update pin lib to ...` commit (one look of the git
# watcher every --poll-seconds 0.3, then the mover's commits and local pushes, one after another);
# and what the server costs while nothing moves (CPU seconds over SECONDS s, every look answered
# from the per-head cache).
# Usage: bench/pins_bench.sh [path/to/testlooper] [repos] [seconds]
set -euo pipefail

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
n="${2:-50}"
seconds="${3:-10}"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
git_in() { git -C "$1" -c user.name=bench -c user.email=bench@localhost "${@:2}"; }

mkdir -p "$work/repos/lib"
git_in "$work/repos/lib" init -q -b main
echo 'looper_version: 5' > "$work/repos/lib/testlooper.yml"
git_in "$work/repos/lib" add testlooper.yml
git_in "$work/repos/lib" commit -qm lib1
lib1="$(git -C "$work/repos/lib" rev-parse HEAD)"
for i in $(seq 0 $((n - 1))); do
  d="$work/repos/app$i"
  mkdir -p "$d"
  git_in "$d" init -q -b main
  printf 'looper_version: 5\nrepos:\n  # follows lib\n  lib: {reference: lib/%s, branch: main, auto: true}  # moved\n' "$lib1" > "$d/testlooper.yml"
  git_in "$d" add testlooper.yml
  git_in "$d" commit -qm app
done

port=$((20000 + RANDOM % 20000))
"$testlooper" serve --repos "$work/repos" --data "$work/data" --port "$port" --workers 0 \
  --poll-seconds 0.3 >"$work/serve.log" 2>&1 &
server_pid=$!
api="http://127.0.0.1:$port/api"
until curl -sf "$api/repos/app$((n - 1))/branches/main/pins" | grep -q "\"head\":\"$lib1\""; do sleep 0.2; done

cpu() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
ticks="$(getconf CLK_TCK)"
before="$(cpu)"
sleep "$seconds"
idle="$(( $(cpu) - before ))"

echo lib2 > "$work/repos/lib/README"
git_in "$work/repos/lib" add README
start="$(date +%s.%N)"
git_in "$work/repos/lib" commit -qm lib2
lib2="$(git -C "$work/repos/lib" rev-parse HEAD)"
for i in $(seq 0 $((n - 1))); do
  until [ "$(git -C "$work/repos/app$i" log -1 --format=%s main)" = "Update pin lib to $lib2" ]; do sleep 0.05; done
done
end="$(date +%s.%N)"
printf 'pins: %d pinning repos; nothing moving: %.2f CPU s in %d s; after a push to lib: all %d updates pushed in %.2f s\n' \
  "$n" "$(echo "$idle / $ticks" | bc -l)" "$seconds" "$n" "$(echo "$end - $start" | bc -l)"
