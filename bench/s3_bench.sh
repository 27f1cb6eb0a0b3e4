#!/usr/bin/env bash
# Issue 14's S3 figures: a build writing SIZE MiB (one random MiB repeated) with its artifacts in
# S3 on moto_server: `testlooper serve` (no local workers) with `artifacts.bucket` on moto, one
# remote `testlooper worker`. Prints the build's time (start to recorded: build, upload to the
# server, multipart put in S3), the object's ETag (-N: N parts), the server's peak RSS (the file
# is streamed, never whole in memory), and the longest answer to GET .../runs while it ran
# (the S3 puts run on a thread of their own: the server keeps answering). VIA `direct` (the
# default): the worker has credentials and puts the build in S3 itself, the server verifies it;
# `server`: the worker has none and uploads to the server, which puts it in S3.
# Usage: bench/s3_bench.sh [path/to/testlooper] [MiB, default 200] [direct|server]
set -euo pipefail

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
mib="${2:-200}"
via="${3:-direct}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
moto_server -H 127.0.0.1 -p 0 >"$work/moto.log" 2>&1 &
pids+=($!)
until grep -q 'Running on http' "$work/moto.log" 2>/dev/null; do sleep 0.1; done
moto="$(grep -o 'http://127.0.0.1:[0-9]*' "$work/moto.log" | head -1)"
python3 -c "import boto3; boto3.client('s3', endpoint_url='$moto').create_bucket(Bucket='bench')"

mkdir -p "$work/repos/bench"
git -C "$work/repos/bench" init -q -b main
cat > "$work/repos/bench/testlooper.yml" <<YAML
looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
builds:
  big/linux:
    stages:
      - command: 'mkdir -p \$TEST_BUILD_OUTPUT_DIR/big && head -c 1048576 /dev/urandom > \$TEST_SCRATCH_DIR/b && for i in \$(seq $mib); do cat \$TEST_SCRATCH_DIR/b; done > \$TEST_BUILD_OUTPUT_DIR/big/big.bin'
        artifacts: [{name: big, directory: big}]
YAML
git -C "$work/repos/bench" add testlooper.yml
git -C "$work/repos/bench" -c user.name=bench -c user.email=bench@localhost commit -qm bench
head="$(git -C "$work/repos/bench" rev-parse HEAD)"
cat > "$work/config.json" <<JSON
{"server": {"path_to_local_data": "$work/data", "poll_seconds": 0.2, "extra_runs": 0},
 "source_control": {"path_to_repos": "$work/repos"},
 "artifacts": {"bucket": "bench", "region": "us-east-1", "key_prefix": "tl/",
               "endpoint_url": "$moto"}}
JSON

"$testlooper" serve --config "$work/config.json" --port 0 --workers 0 >"$work/serve.out" \
  2>"$work/serve.err" &
server_pid=$!
pids+=($server_pid)
until grep -q ':[0-9]' "$work/serve.out" 2>/dev/null; do sleep 0.1; done
port="$(grep -o ':[0-9]*' "$work/serve.out" | tail -1 | tr -d :)"
api="http://127.0.0.1:$port/api"
until curl -sf "$api/repos" | grep -q bench; do sleep 0.2; done
worker_env=()
if [ "$via" = server ]; then
  worker_env=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY
    AWS_SHARED_CREDENTIALS_FILE="$work/none" AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1)
fi
"${worker_env[@]}" "$testlooper" worker --server "http://127.0.0.1:$port" --dir "$work/worker" --cores 1 \
  --ram-gb 1 --id bench --token-file "$work/data/worker.token" >"$work/worker.log" 2>&1 &
pids+=($!)
until curl -sf "$api/workers" | grep -q '"bench"'; do sleep 0.2; done

start=$(date +%s.%N)
curl -sf -X POST -H 'Content-Type: application/json' -d '{"enabled": true, "depth": 0}' \
  "$api/repos/bench/branches/main/test" >/dev/null
state() { curl -sf "$api/repos/bench/commits/$head/runs" | grep -o '"state": *"[a-z_]*"' | head -1; }
slowest=0  # the longest answer to GET .../runs while the build runs
while :; do
  t=$(curl -s -o "$work/runs.json" -w '%{time_total}' "$api/repos/bench/commits/$head/runs")
  slowest=$(echo "if ($t > $slowest) $t else $slowest" | bc)
  if grep -q '"state"' "$work/runs.json" && ! grep -q '"state": *"running"' "$work/runs.json"; then
    break
  fi
  sleep 0.05
done
seconds=$(echo "$(date +%s.%N) - $start" | bc)
hash="$(curl -sf "$api/repos/bench/commits/$head/runs" | grep -o '"hash": *"[0-9a-f]*"' | head -1 |
  grep -o '[0-9a-f]\{64\}')"
etag="$(python3 -c "import boto3; print(boto3.client('s3', endpoint_url='$moto').head_object(
  Bucket='bench', Key='tl/builds/$hash/big.tar')['ETag'])")"
printf 'a build writing %d MiB, artifacts in S3 (moto), via %s: %s in %.1f s; S3 ETag %s\n' \
  "$mib" "$via" "$(state | grep -o '"[a-z_]*"$')" "$seconds" "$etag"
printf 'put by the worker itself and verified by the server: %s\n' \
  "$(grep -q "put the run's files in S3 itself" "$work/serve.err" && echo yes || echo no)"
printf 'server peak RSS (VmHWM) %d MB; slowest GET of the runs meanwhile %.2f s\n' \
  "$(awk '$1 == "VmHWM:" {print int($2 / 1024)}' "/proc/$server_pid/status")" "$slowest"
