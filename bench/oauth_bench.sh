#!/usr/bin/env bash
# Sign-in figures (issue 12, part C): N complete GitHub sign-ins (login, the fake provider's
# authorize, the callback with its three provider calls) one after another against
# tests/server/fake_oauth.py; then 100 GET /api/session while 8 sign-ins hang on the provider
# (the io thread is not blocked: they are answered at once).
# Usage: bench/oauth_bench.sh [N=100]   (uses build/testlooper)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"
bin="$PWD/build/testlooper"
dir="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
mkdir -p "$dir/repos"
python3 tests/server/fake_oauth.py --kind github --client-id app --client-secret secret --org acme \
  --user alice:1 --member alice > "$dir/fake.out" &
pids+=($!)
until grep -q '^port' "$dir/fake.out" 2>/dev/null; do sleep 0.1; done
fake="http://127.0.0.1:$(awk '{print $2}' "$dir/fake.out")"
cat > "$dir/config.json" <<JSON
{"server": {"path_to_local_data": "$dir/data"},
 "source_control": {"path_to_repos": "$dir/repos", "oauth_key": "app", "oauth_secret": "secret",
                    "github_login_url": "$fake", "github_api_url": "$fake", "owner": "acme"},
 "auth": {"mode": "oauth", "provider_timeout_seconds": 60},
 "machine_management": {"max_workers": 0}}
JSON
"$bin" serve --config "$dir/config.json" --port 0 > "$dir/serve.out" 2>&1 &
pids+=($!)
until grep -q 'listening' "$dir/serve.out" 2>/dev/null; do sleep 0.1; done
server="http://127.0.0.1:$(grep -o '[0-9]*$' "$dir/serve.out" | head -1)"

sign_in() {  # $1: cookie jar
  local login authorize
  login=$(curl -s -c "$1" -b "$1" -o /dev/null -w '%{redirect_url}' "$server/auth/login")
  authorize=$(curl -s -o /dev/null -w '%{redirect_url}' "$login&auto=1")
  curl -s -c "$1" -b "$1" -o /dev/null -w '%{http_code}' "$authorize"
}
start=$(date +%s%N)
for i in $(seq "$n"); do
  [[ "$(sign_in "$dir/jar$i")" == 302 ]] || { echo "sign-in $i failed"; exit 1; }
done
end=$(date +%s%N)
echo "$n sign-ins: $(( (end - start) / 1000000 )) ms, $(( (end - start) / n / 1000000 )) ms each"

curl -s -o /dev/null "$fake/_control/mode?set=hang"
for i in $(seq 8); do (sign_in "$dir/hang$i" > /dev/null &) ; done
until [[ "$(curl -s "$fake/_control/calls" | python3 -c 'import json,sys; print(json.load(sys.stdin)["calls"])')" -ge $((n + 8)) ]]; do sleep 0.1; done
start=$(date +%s%N)
for i in $(seq 100); do curl -s -o /dev/null "$server/api/session"; done
end=$(date +%s%N)
echo "100 GET /api/session while 8 sign-ins hang on the provider: $(( (end - start) / 1000000 )) ms"
curl -s -o /dev/null "$fake/_control/release"
