#!/usr/bin/env python3
"""Plays the EC2 instances of a TestLooper fleet against moto_server (tests only).

For every instance moto reports pending or running under our worker_name tag, it reads the user
data the server launched it with (and, for a stub that fetches its boot script from the bootstrap
bucket, that script from S3), and starts a real `testlooper worker` with the parameters the script
assigns (TL_SERVER, TL_MACHINE, TL_TOKEN, TL_AMI), in a directory of its own, with the cores and
RAM of the instance type. A PowerShell script (Windows) is only kept: nothing Windows runs here.
When moto shows the instance terminated (or gone), its worker is stopped.

Every event is a line of <dir>/harness.log: "started <instance> <machine> <type>",
"windows <instance> <machine>", "stopped <instance> <machine>". Stops on SIGTERM, stopping its
workers first.
"""
import argparse
import base64
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import boto3

ASSIGNMENT = re.compile(r"^(TL_[A-Z_]+)=(.*)$")
BOOTSTRAP = re.compile(r"^# testlooper-bootstrap: s3://([^/]+)/(.+)$", re.M)


def assignments(script):
    """The TL_* variables a bash boot script assigns literally (quoted as the server quotes)."""
    out = {}
    for line in script.splitlines():
        m = ASSIGNMENT.match(line)
        if m:
            words = shlex.split(m.group(2))
            out[m.group(1)] = words[0] if words else ""
    return out


class Harness:
    def __init__(self, args):
        self.args = args
        self.ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=args.moto)
        self.s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=args.moto)
        self.types = json.loads(args.types)
        self.workers = {}  # instance id -> (machine id, Popen or None)
        self.log = open(os.path.join(args.dir, "harness.log"), "a", buffering=1)
        self.stopping = False

    def instances(self):
        pages = self.ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag:testlooper-worker-name", "Values": [self.args.worker_name]}])
        out = {}
        for page in pages:
            for r in page["Reservations"]:
                for i in r["Instances"]:
                    out[i["InstanceId"]] = i
        return out

    def script_of(self, instance_id):
        attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        data = base64.b64decode(attr.get("UserData", {}).get("Value", "")).decode()
        m = BOOTSTRAP.search(data)
        if m:
            body = self.s3.get_object(Bucket=m.group(1), Key=m.group(2))["Body"].read().decode()
            return data, body
        return data, data

    def start(self, instance):
        iid = instance["InstanceId"]
        user_data, script = self.script_of(iid)
        home = os.path.join(self.args.dir, iid)
        os.makedirs(home, exist_ok=True)
        with open(os.path.join(home, "user_data"), "w") as f:
            f.write(user_data)
        with open(os.path.join(home, "boot_script"), "w") as f:
            f.write(script)
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        machine = tags.get("testlooper-machine", "")
        if user_data.startswith("<powershell>"):
            self.workers[iid] = (machine, None)
            self.log.write("windows %s %s\n" % (iid, machine))
            return
        v = assignments(script)
        token_file = os.path.join(home, "worker.token")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, (v["TL_TOKEN"] + "\n").encode())
        os.close(fd)
        cores, ram = self.types.get(instance["InstanceType"], [1, 1])
        cmd = [self.args.testlooper, "worker", "--server", v["TL_SERVER"], "--id",
               v["TL_MACHINE"], "--token-file", token_file, "--dir", os.path.join(home, "work"),
               "--cores", str(cores), "--ram-gb", str(ram), "--parent-pid", str(os.getpid())]
        if v.get("TL_AMI"):
            cmd += ["--ami", v["TL_AMI"]]
        err = open(os.path.join(home, "worker.log"), "w")
        proc = subprocess.Popen(cmd, stdout=err, stderr=err, start_new_session=True)
        self.workers[iid] = (machine, proc)
        self.log.write("started %s %s %s\n" % (iid, machine, instance["InstanceType"]))

    def stop(self, iid):
        machine, proc = self.workers.pop(iid)
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        self.log.write("stopped %s %s\n" % (iid, machine))

    def poll(self):
        seen = self.instances()
        for iid, i in seen.items():
            state = i["State"]["Name"]
            if state in ("pending", "running") and iid not in self.workers:
                self.start(i)
        for iid in list(self.workers):
            if iid not in seen or seen[iid]["State"]["Name"] not in ("pending", "running"):
                self.stop(iid)

    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        while not self.stopping:
            try:
                self.poll()
            except Exception as e:  # moto busy or going away: try again
                self.log.write("error %s\n" % (e,))
            time.sleep(0.2)
        for iid in list(self.workers):
            self.stop(iid)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--moto", required=True)
    p.add_argument("--worker-name", required=True)
    p.add_argument("--testlooper", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--types", default="{}", help='{"type": [cores, ram_gb], ...}')
    Harness(p.parse_args()).run()


if __name__ == "__main__":
    main()
