#!/usr/bin/env bash
# Overhead of `testlooper run` per run: 2,000 runs of a trivial test (`true`) with --jobs 2 on
# the host, against `seq 2000 | xargs -P2 -n1 sh -c true` on the same machine, in this script.
# The two are measured alternately, ROUNDS times, and the best time of each is compared, so
# that a burst of load from other processes does not decide the ratio. Wall time is the
# target; CPU time (user + sys, children included) is printed too, as it is less sensitive to
# other load on a shared machine.
# Usage: bench/run_bench.sh [path/to/testlooper] [runs] [rounds]
#   STORE_DIR=... puts the artifact store elsewhere (default: a temp dir under $TMPDIR).
set -euo pipefail

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
runs="${2:-2000}"
rounds="${3:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
store="${STORE_DIR:-$work/store}"

mkdir -p "$work/bench"
git -C "$work/bench" init -q
cat > "$work/bench/testlooper.yml" <<'YAML'
looper_version: 5
environments:
  host: {platform: linux, image: {host: true}}
tests:
  trivial/host: {command: "true"}
YAML
git -C "$work/bench" add testlooper.yml
git -C "$work/bench" -c user.name=bench -c user.email=bench@localhost commit -qm bench

TIMEFORMAT='%R %U %S'
# Runs "$@" and prints "wall cpu" (seconds).
measure() {
  local t
  t="$({ time "$@" >/dev/null 2>"$work/stderr.txt"; } 2>&1)" ||
    { cat "$work/stderr.txt"; exit 1; }
  echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'
}
xargs_baseline() { seq "$runs" | xargs -P2 -n1 sh -c true; }
looper() {
  "$testlooper" run --repo "$work/bench" --store "$store" --runs "$runs" --jobs 2 --cores 2
}
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }

best=(999999 999999 999999 999999)  # xargs wall, xargs cpu, looper wall, looper cpu
for round in $(seq "$rounds"); do
  read -r wall cpu < <(measure xargs_baseline)
  best[0]="$(min "${best[0]}" "$wall")"; best[1]="$(min "${best[1]}" "$cpu")"
  read -r wall cpu < <(measure looper)
  best[2]="$(min "${best[2]}" "$wall")"; best[3]="$(min "${best[3]}" "$cpu")"
done
"$testlooper" run --repo "$work/bench" --store "$store" --runs 1 2>/dev/null |
  grep -q "trivial/host  test" || { echo "testlooper did not report the test"; exit 1; }

printf 'runs: %d, best of %d rounds, store: %s\n' "$runs" "$rounds" "$store"
printf '%-26s %8s %8s\n' "" "wall s" "cpu s"
printf '%-26s %8.2f %8.2f\n' "xargs -P2 sh -c true" "${best[0]}" "${best[1]}"
printf '%-26s %8.2f %8.2f\n' "testlooper run --jobs 2" "${best[2]}" "${best[3]}"
printf 'ratio: %.2f wall (target <= 1.2), %.2f cpu\n' \
  "$(echo "${best[2]} / ${best[0]}" | bc -l)" "$(echo "${best[3]} / ${best[1]}" | bc -l)"
