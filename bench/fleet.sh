#!/usr/bin/env bash
# The fleet (issue 14) against moto_server, its instances played by tests/fleet/instance_harness.py
# with real workers. A mixed queue: 8 one-core tests, 6 four-core tests, a 32-core build and 2
# tests of an AMI environment (one job per machine). Prints the machines booted by type, and the
# time from the branch put under test (every run waiting) to each run starting on a booted machine.
# Usage: bench/fleet.sh [path/to/testlooper]
set -euo pipefail

testlooper="$(realpath "${1:-$(dirname "$0")/../build/testlooper}")"
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1

moto_port=$((20000 + RANDOM % 20000))
moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
moto="http://127.0.0.1:$moto_port"
until curl -s "$moto" >/dev/null; do sleep 0.2; done

mkdir -p "$work/repos/app"
{
  echo 'looper_version: 5'
  echo 'environments:'
  echo '  linux: {platform: linux, image: {host: true}}'
  echo '  cloud: {platform: linux, image: {base_ami: ami-0feedfacecafe0001}}'
  echo 'builds:'
  echo '  big/linux: {min_cores: 32, stages: [{command: "sleep 1"}]}'
  echo 'tests:'
  for i in $(seq 1 8); do echo "  one$i/linux: {stages: [{command: 'sleep 2'}]}"; done
  for i in $(seq 1 6); do echo "  four$i/linux: {min_cores: 4, stages: [{command: 'sleep 2'}]}"; done
  for i in 1 2; do echo "  ami$i/cloud: {stages: [{command: 'sleep 2'}]}"; done
} >"$work/repos/app/testlooper.yml"
git -C "$work/repos/app" init -q -b main
git -C "$work/repos/app" -c user.name=b -c user.email=b@localhost add testlooper.yml
git -C "$work/repos/app" -c user.name=b -c user.email=b@localhost commit -qm app

types='{"t3.small": [2, 2], "m5.xlarge": [4, 16], "m5.8xlarge": [32, 128]}'
cat >"$work/config.json" <<JSON
{"source_control": {"path_to_repos": "$work/repos"},
 "machine_management": {"worker_name": "bench", "region": "us-east-1", "endpoint_url": "$moto",
   "instance_types": [[{"cores": 2, "ram_gb": 2}, "t3.small"], [{"cores": 4, "ram_gb": 16}, "m5.xlarge"],
                      [{"cores": 32, "ram_gb": 128}, "m5.8xlarge"]],
   "linux_ami": "ami-0a1b2c3d4e5f60718", "max_cores": 64, "idle_shutdown_seconds": 5}}
JSON
python3 "$here/tests/fleet/instance_harness.py" --moto "$moto" --worker-name bench \
  --testlooper "$testlooper" --dir "$work/harness" --types "$types" 2>"$work/harness.err" &
pids+=($!)
mkdir -p "$work/harness"
port=$((20000 + RANDOM % 20000))
"$testlooper" serve --config "$work/config.json" --data "$work/data" --port "$port" \
  --poll-seconds 0.3 >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
api="http://127.0.0.1:$port"
until curl -s "$api/api/repos" | grep -q app; do sleep 0.2; done
sha="$(git -C "$work/repos/app" rev-parse HEAD)"
t0="$(date +%s.%N)"
curl -s -X POST -H 'Content-Type: application/json' -d '{"enabled": true}' \
  "$api/api/repos/app/branches/main/test" >/dev/null
total=17
while :; do
  done_runs="$(curl -s "$api/api/repos/app/commits/$sha/runs" |
    python3 -c 'import json,sys; print(sum(r["state"]=="succeeded" for r in json.load(sys.stdin)))')"
  [ "$done_runs" -ge "$total" ] && break
  sleep 0.5
done
curl -s "$api/api/repos/app/commits/$sha/runs" | T0="$t0" python3 -c '
import json, os, sys
t0 = float(os.environ["T0"])
runs = json.load(sys.stdin)
waits = sorted(r["started"] - t0 for r in runs)
print("runs: %d; waiting -> running (s): min %.1f, median %.1f, max %.1f" %
      (len(waits), waits[0], waits[len(waits) // 2], waits[-1]))'
python3 - "$moto" <<'PY'
import boto3, collections, sys
ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=sys.argv[1])
c = collections.Counter()
for r in ec2.describe_instances(Filters=[{"Name": "tag:testlooper-worker-name", "Values": ["bench"]}])["Reservations"]:
    for i in r["Instances"]:
        c[(i["InstanceType"], i["ImageId"])] += 1
print("machines booted:", ", ".join("%d x %s (%s)" % (n, t, a) for (t, a), n in sorted(c.items())))
PY
