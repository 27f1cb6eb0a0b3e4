#!/usr/bin/env bash
# Overhead of `testlooper run` per run (issue 18, row 1): N runs of a trivial test (`true`) with
# --jobs 2 on the host, against `seq N | xargs -P2 -n1 sh -c true`, for each N given, in this
# script. The two are measured alternately, ROUNDS times, and the best time of each is compared,
# so that a burst of load from other processes does not decide the ratio. Wall time is the
# target (<= 1.2 at every N, flat); CPU time (user + sys, children included) is printed too, with
# the CPU per run, as it is less sensitive to other load on a shared machine.
# Usage: bench/run_bench.sh [path/to/testlooper] [N,N,...] [rounds]   (default 1000,2000,10000 3)
#   STORE_DIR=dir  where the stores go (one per N, kept across its rounds: its runs/ grows to
#                  N x rounds records, so a cost that grows with the store shows). Default: a
#                  temp dir beside testlooper's own default store, under ${XDG_CACHE_HOME:-~/.cache}.
#                  On ext4 without a journal, every inode creation walks the inodes deleted in
#                  the last minutes in its group: a store where other processes churn files
#                  (a $TMPDIR where compilers write) costs several times more per run.
#   BASELINE=path  another testlooper binary, alternated with the same runs (before/after).
# Stores are removed only at the end: removing one mid-script would put its inodes in the way of
# the next N's (see above).
# As root, the page cache is written back and dropped first (KEEP_CACHE=1 keeps it), so that
# inodes deleted in the last minutes (a build's, another bench's) are not in the way (see above).
set -euo pipefail
if [ "$(id -u)" = 0 ] && [ "${KEEP_CACHE:-}" != 1 ]; then
  sync
  echo 3 >/proc/sys/vm/drop_caches
fi

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
IFS=, read -r -a sizes <<<"${2:-1000,2000,10000}"
rounds="${3:-3}"
baseline="${BASELINE:+$(realpath "$BASELINE")}"
work="$(mktemp -d)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}"
mkdir -p "$cache"
stores="${STORE_DIR:-$(mktemp -d "$cache/testlooper-run-bench.XXXXXX")}"
mkdir -p "$stores"
[ -n "${STORE_DIR:-}" ] || trap 'rm -rf "$work" "$stores"' EXIT
[ -z "${STORE_DIR:-}" ] || trap 'rm -rf "$work"' EXIT

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
xargs_baseline() { seq "$1" | xargs -P2 -n1 sh -c true; }
# looper BINARY N STORE
looper() { "$1" run --repo "$work/bench" --store "$3" --runs "$2" --jobs 2 --cores 2; }
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }
ratio() { echo "$1 / $2" | bc -l; }
per_run_ms() { echo "$1 * 1000 / $2" | bc -l; }

printf 'store under %s (%s), best of %d rounds, load average %s\n' "$stores" \
  "$(df -T "$stores" | awk 'NR == 2 { print $2 }')" "$rounds" "$(cut -d' ' -f1-3 /proc/loadavg)"
summary=()
for runs in "${sizes[@]}"; do
  # best wall/cpu: xargs, testlooper, baseline
  best=(999999 999999 999999 999999 999999 999999)
  for round in $(seq "$rounds"); do
    read -r wall cpu < <(measure xargs_baseline "$runs")
    best[0]="$(min "${best[0]}" "$wall")"; best[1]="$(min "${best[1]}" "$cpu")"
    read -r wall cpu < <(measure looper "$testlooper" "$runs" "$stores/$runs")
    best[2]="$(min "${best[2]}" "$wall")"; best[3]="$(min "${best[3]}" "$cpu")"
    if [ -n "$baseline" ]; then
      read -r wall cpu < <(measure looper "$baseline" "$runs" "$stores/$runs-baseline")
      best[4]="$(min "${best[4]}" "$wall")"; best[5]="$(min "${best[5]}" "$cpu")"
    fi
  done
  records="$(find "$stores/$runs/runs" -mindepth 1 -maxdepth 1 | wc -l)"
  [ "$records" -eq $((runs * rounds)) ] ||
    { echo "N=$runs: $records run records in the store, expected $((runs * rounds))"; exit 1; }
  printf '\nN = %d (load average %s)\n' "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-28s %8s %8s %12s\n' "" "wall s" "cpu s" "cpu ms/run"
  printf '%-28s %8.2f %8.2f %12.3f\n' "xargs -P2 sh -c true" "${best[0]}" "${best[1]}" \
    "$(per_run_ms "${best[1]}" "$runs")"
  printf '%-28s %8.2f %8.2f %12.3f\n' "testlooper run --jobs 2" "${best[2]}" "${best[3]}" \
    "$(per_run_ms "${best[3]}" "$runs")"
  [ -z "$baseline" ] || printf '%-28s %8.2f %8.2f %12.3f\n' "baseline run --jobs 2" \
    "${best[4]}" "${best[5]}" "$(per_run_ms "${best[5]}" "$runs")"
  line="$(printf 'N=%d ratio: %.2f wall (target <= 1.2), %.2f cpu' "$runs" \
    "$(ratio "${best[2]}" "${best[0]}")" "$(ratio "${best[3]}" "${best[1]}")")"
  [ -z "$baseline" ] || line+="$(printf '; baseline %.2f wall, %.2f cpu' \
    "$(ratio "${best[4]}" "${best[0]}")" "$(ratio "${best[5]}" "${best[1]}")")"
  echo "$line"
  summary+=("$line")
done
"$testlooper" run --repo "$work/bench" --store "$work/check" --runs 1 2>/dev/null |
  grep -q "trivial/host  test" || { echo "testlooper did not report the test"; exit 1; }
printf '\n'
printf '%s\n' "${summary[@]}"
