#!/usr/bin/env bash
# Git hosting figures (issue 13, sources): N repositories on the fake GitHub
# (tests/hosting/fake_host.py, git over HTTP through git http-backend, 100 per page): the time
# from `serve` start until all N are mirrored and in /api/repos; then M pushes to one repo, each
# followed by its signed webhook, timed until the new head is in /api/repos; then a refresh that
# lists and fetches all N (nothing new), timed until the fake has seen N more fetches.
# Usage: bench/hosting_bench.sh [N=100] [M=10]   (uses build/testlooper)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"
m="${2:-10}"
bin="$PWD/build/testlooper"
dir="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@x \
  GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@x
mkdir -p "$dir/host/acme" "$dir/work"
git init -q -b main "$dir/work"
git -C "$dir/work" commit -q --allow-empty -m first
for i in $(seq -w "$n"); do
  git init -q --bare "$dir/host/acme/repo$i.git"
  git -C "$dir/work" push -q "$dir/host/acme/repo$i.git" main
done
python3 tests/hosting/fake_host.py --root "$dir/host" --port-file "$dir/port" --token tok &
pids+=($!)
until [[ -e "$dir/port" ]]; do sleep 0.1; done
fake="http://127.0.0.1:$(cat "$dir/port")"
cat > "$dir/config.json" <<JSON
{"server": {"path_to_local_data": "$dir/data", "webhook_secret": "s"},
 "source_control": {"access_token": "tok", "owner": "acme", "github_url": "$fake",
                    "github_api_url": "$fake/api/v3", "poll_seconds": 3600},
 "machine_management": {"max_workers": 0}}
JSON
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
repos() { curl -s "$server/api/repos" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
start=$(date +%s%N)
"$bin" serve --config "$dir/config.json" --port 0 > "$dir/serve.out" 2>&1 &
pids+=($!)
until grep -q 'listening' "$dir/serve.out" 2>/dev/null; do sleep 0.05; done
server="http://127.0.0.1:$(grep -o '[0-9]*$' "$dir/serve.out" | head -1)"
until [[ "$(repos)" == "$n" ]]; do sleep 0.1; done
echo "$n repositories listed, cloned and in /api/repos: $(ms "$start") ms after start"

first="repo$(seq -w "$n" | head -1)"
head_of() {
  curl -s "$server/api/repos/$first/branches" |
    python3 -c 'import json,sys; print([b["head"] for b in json.load(sys.stdin) if b["name"]=="main"][0])'
}
total=0
for i in $(seq "$m"); do
  git -C "$dir/work" commit -q --allow-empty -m "push $i"
  sha=$(git -C "$dir/work" rev-parse HEAD)
  git -C "$dir/work" push -q "$dir/host/acme/$first.git" main
  body="{\"ref\":\"refs/heads/main\",\"repository\":{\"name\":\"$first\"}}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac s | sed 's/.*= //')
  start=$(date +%s%N)
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$body" "$server/api/webhooks/github"
  until [[ "$(head_of)" == "$sha" ]]; do sleep 0.02; done
  total=$(( total + $(ms "$start") ))
done
echo "signed webhook -> new head in /api/repos: $(( total / m )) ms on average over $m pushes"

fetches() {
  curl -s "$fake/_fake/requests" |
    python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["path"].endswith("/info/refs")))'
}
before=$(fetches)
sig=$(printf '{}' | openssl dgst -sha256 -hmac s | sed 's/.*= //')
start=$(date +%s%N)
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$sig" \
  --data-binary '{}' "$server/api/refresh"
until [[ $(fetches) -ge $(( before + n )) ]]; do sleep 0.1; done
echo "refresh (list + fetch all $n, nothing new): $(ms "$start") ms"
