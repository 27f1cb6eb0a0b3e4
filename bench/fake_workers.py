#!/usr/bin/env python3
"""Many worker connections in one process, for bench/dispatch_bench.sh (issue 18, row 3).

Opens N WebSocket connections to a `testlooper serve` at /api/worker with the worker token, says
hello on each (one core, so each holds one job at a time) and answers each job at once with a
passing result (the server acknowledges it once stored). Counts jobs until TOTAL came, then
prints one JSON line: the seconds from the target's POST (below) to the TOTAL-th job, and how
often, sampled every SAMPLE seconds, a worker had waited longer than IDLE seconds for a job while
runs waited (runs not yet given to any worker: TOTAL minus the jobs so far), not counting a worker
whose job is already waiting in its socket (this process was slow to read it, not the server to
send it).
With RESULT_LOG=1 in the environment each result carries a log of about the size a real worker's
trivial run writes (four lines, ~250 bytes), so that the server creates and writes each run's log
file, as it does for real workers. With RESULT_DELAY=S each result is sent S seconds after its job
came (a run that takes that long), to see the server at a real worker's rate without the runs'
processes on its cores.
Runs wait from the moment a line arrives on standard input (the bench writes one when it has
posted the round's target): a worker's wait before then, since it connected, is not counted.
Each idle sample is described on standard error. python3 stdlib only (selectors, raw RFC 6455
framing: client frames masked, no extensions).
Usage: fake_workers.py PORT TOKEN WORKERS TOTAL
"""
import base64
import json
import os
import selectors
import socket
import struct
import sys
import time

IDLE = 0.1
SAMPLE = 0.05
RESULT_LOG = os.environ.get("RESULT_LOG") == "1"
RESULT_DELAY = float(os.environ.get("RESULT_DELAY", "0"))


class Conn:
    def __init__(self, port, token, wid):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /api/worker HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Authorization: Bearer {token}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                sys.exit(f"worker {wid}: the server closed the upgrade")
            head += chunk
        status, _, rest = head.partition(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n")[0]:
            sys.exit(f"worker {wid}: upgrade refused: {status.splitlines()[0]!r}")
        self.buf = rest
        self.out = b""
        self.idle_since = time.monotonic()  # waiting for a job since
        self.send({"type": "hello", "worker": wid, "cores": 1, "ram_gb": 1, "host": "bench",
                   "job_acks": True})  # acks may come in jobs, as the real worker reads them

    def send(self, message):
        data = json.dumps(message).encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
        self.out += head + mask + masked

    def flush(self):
        while self.out:
            try:
                sent = self.sock.send(self.out)
            except BlockingIOError:
                return
            self.out = self.out[sent:]

    def frames(self):
        """Complete frames in the buffer: (opcode, payload)."""
        while True:
            b = self.buf
            if len(b) < 2:
                return
            opcode, n = b[0] & 0x0F, b[1] & 0x7F
            at = 2
            if n == 126:
                if len(b) < 4:
                    return
                n, at = struct.unpack("!H", b[2:4])[0], 4
            elif n == 127:
                if len(b) < 10:
                    return
                n, at = struct.unpack("!Q", b[2:10])[0], 10
            if len(b) < at + n:
                return
            self.buf = b[at + n:]
            yield opcode, b[at:at + n]


def main():
    port, token, workers, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    conns = [Conn(port, token, f"bench-{i}") for i in range(workers)]
    sel = selectors.DefaultSelector()
    for c in conns:
        c.flush()
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    print("connected", flush=True)
    jobs = 0
    first = last = None
    posted = None  # when the runs began to wait
    samples = idle_samples = idle_worker_samples = 0
    next_sample = time.monotonic() + SAMPLE
    due = []  # (when, connection, result): results held back RESULT_DELAY seconds, in order
    while jobs < total or due:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, dc, result = due.pop(0)
            dc.send(result)
            dc.flush()
            dc.idle_since = now  # free for a job from now
        wait = SAMPLE if not due else max(0, min(SAMPLE, due[0][0] - now))
        for key, _ in sel.select(timeout=wait):
            c = key.data
            if c is None:  # the bench posted the target
                sys.stdin.readline()
                sel.unregister(sys.stdin)
                posted = time.monotonic()
                continue
            try:
                chunk = c.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                sys.exit("the server closed a worker connection")
            c.buf += chunk
            for opcode, payload in c.frames():
                if opcode == 0x8:
                    sys.exit(f"the server closed a worker connection: {payload[2:]!r}")
                if opcode == 0x9:  # ping: pong with the same payload
                    mask = os.urandom(4)
                    c.out += struct.pack("!BB", 0x8A, 0x80 | len(payload)) + mask + bytes(
                        x ^ mask[i & 3] for i, x in enumerate(payload))
                    continue
                if opcode != 0x1:
                    continue
                m = json.loads(payload)
                if m.get("type") == "job":
                    now = time.monotonic()
                    jobs += 1
                    first = first or now
                    last = now
                    result = {"type": "result", "run_id": m["run_id"], "outcome": "success",
                              "exit_code": 0, "cases": []}
                    if RESULT_LOG:
                        result["log"] = f"[testlooper] run {m['run_id']}: a fake worker's run\n" * 4
                    if RESULT_DELAY > 0:
                        due.append((now + RESULT_DELAY, c, result))
                        c.idle_since = float("inf")  # busy with the run until its result
                    else:
                        c.send(result)
                        c.idle_since = now
            c.flush()
        now = time.monotonic()
        if first is not None and posted is not None and now >= next_sample:
            next_sample = now + SAMPLE
            waiting = total - jobs
            # A job already in a socket's buffer is this process's delay, not the server's.
            pending = {key.data for key, _ in sel.select(timeout=0)}
            idle = [now - max(c.idle_since, posted) for c in conns
                    if c not in pending and len(c.buf) == 0]
            idle = [wait for wait in idle if wait > IDLE]
            samples += 1
            if idle and waiting > 0:
                idle_samples += 1
                idle_worker_samples += min(len(idle), waiting)
                print(f"idle sample {now - posted:.3f} s after the target: {len(idle)} workers "
                      f"waiting up to {max(idle):.3f} s, {waiting} runs not given",
                      file=sys.stderr, flush=True)
    start = posted if posted is not None else first
    seconds = (last - start) if start is not None and last > start else float("nan")
    print(json.dumps({"jobs": jobs, "seconds": seconds, "samples": samples,
                      "idle_samples": idle_samples, "idle_worker_samples": idle_worker_samples}),
          flush=True)
    # Let the last results be acknowledged before closing.
    end = time.monotonic() + 2
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.1):
            try:
                key.data.sock.recv(1 << 20)
            except BlockingIOError:
                pass


if __name__ == "__main__":
    main()
