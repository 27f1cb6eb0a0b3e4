#!/usr/bin/env bash
# S3 transfer figures (issue 14): a file of N MiB (a random 1 MiB block repeated) put and got
# back against moto_server by fleet::S3Client (build/bench/s3_client_bench: multipart above
# 16 MiB, streamed both ways), then by boto3's upload_file/download_file on the same moto as
# the baseline; both copies are checked byte-identical.
# Usage: bench/s3_client_bench.sh [N=200]   (uses build/bench/s3_client_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-200}"
dir="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
: > "$dir/moto.log"
moto_server -H 127.0.0.1 -p 0 > "$dir/moto.log" 2>&1 &
pids+=($!)
until grep -q "Running on" "$dir/moto.log"; do sleep 0.1; done
url="$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/moto.log" | head -1)"
head -c $((1 << 20)) /dev/urandom > "$dir/block"
for _ in $(seq "$n"); do cat "$dir/block"; done > "$dir/file"
build/bench/s3_client_bench "$url" bench-ours "$dir/file"
cmp "$dir/file" "$dir/file.back"
python3 - "$url" "$dir/file" "$n" <<'PY'
import boto3, sys, time
url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s3 = boto3.client('s3', endpoint_url=url)
s3.create_bucket(Bucket='bench-boto3')
start = time.monotonic()
s3.upload_file(path, 'bench-boto3', 'bench/file')
put = time.monotonic() - start
start = time.monotonic()
s3.download_file('bench-boto3', 'bench/file', path + '.boto3')
got = time.monotonic() - start
print('boto3:    %d MiB put in %.2f s (%.0f MiB/s), got in %.2f s (%.0f MiB/s)' %
      (n, put, n / put, got, n / got))
PY
cmp "$dir/file" "$dir/file.boto3"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
