#!/usr/bin/env bash
# What testing the working tree costs `testlooper run` (issue 17): a repo of FILES files in 100
# directories, with one tracked file edited, 100 untracked files and 1,000 ignored ones, and
# one test that gets the whole tree (`src: HEAD`). Alternately, ROUNDS times each: the commit
# (`--commit HEAD`: exported from git) and the working tree (git status, the changes hashed, the
# export overlaid with them); best wall time of each, so that a burst of load from other
# processes does not decide the comparison.
# Usage: bench/working_tree_bench.sh [path/to/testlooper] [files] [rounds]
#   STORE_DIR=... puts the artifact store elsewhere (e.g. /dev/shm; default: under $TMPDIR).
set -euo pipefail

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
files="${2:-20000}"
rounds="${3:-5}"
work="$(mktemp -d)"
repo="$work/app"
store="${STORE_DIR:-$work}/working-tree-bench-store"
trap 'rm -rf "$work" "$store"' EXIT

mkdir -p "$repo"
git -C "$repo" init -q
for d in $(seq 100); do
  mkdir -p "$repo/d$d"
  for f in $(seq $((files / 100))); do echo "file $d $f" > "$repo/d$d/f$f.txt"; done
done
cat > "$repo/testlooper.yml" <<'YAML'
looper_version: 5
environments: {host: {platform: linux, image: {host: true}}}
tests:
  tree/host: {command: "test -f src/d1/f1.txt", dependencies: {src: HEAD}}
YAML
echo '*.o' > "$repo/.gitignore"
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm bench

TIMEFORMAT='%R'
measure() {
  local t
  t="$({ time "$testlooper" run --repo "$repo" --store "$store" "$@" >/dev/null \
    2>"$work/stderr.txt"; } 2>&1)" || { cat "$work/stderr.txt"; exit 1; }
  echo "$t"
}
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }

echo edited >> "$repo/d1/f1.txt"
for i in $(seq 100); do echo "new $i" > "$repo/d2/untracked$i.txt"; done
for i in $(seq 1000); do echo "obj $i" > "$repo/d3/ignored$i.o"; done
clean=999999
dirty=999999
for round in $(seq "$rounds"); do
  clean="$(min "$clean" "$(measure --commit HEAD)")"
  dirty="$(min "$dirty" "$(measure)")"
  grep -q "testing the working tree" "$work/stderr.txt" || { echo "not run dirty"; exit 1; }
done

printf 'files: %d, best of %d rounds\n' "$files" "$rounds"
printf 'the commit (--commit HEAD):        %6.2f s\n' "$clean"
printf 'the working tree (1 edit, 100 new): %6.2f s\n' "$dirty"
