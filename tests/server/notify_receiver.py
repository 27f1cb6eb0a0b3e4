#!/usr/bin/env python3
"""A webhook receiver for judge_test: checks each POST's X-TestLooper-Signature (HMAC-SHA256 of the
body with --secret) and keeps what came. It answers 500 to the first --fail-first POSTs (so the
server must retry) and 200 to the rest. GET /_deliveries lists every POST as
{"path", "delivery", "event", "signature_ok", "status", "body"}. Prints "port N" once listening on
127.0.0.1 (a kernel-chosen port). Standard library only."""
import argparse
import hashlib
import hmac
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--secret", required=True)
parser.add_argument("--fail-first", type=int, default=0)
args = parser.parse_args()
lock = threading.Lock()
posts = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path != "/_deliveries":
            return self.reply(404, {"error": "no such page"})
        with lock:
            return self.reply(200, list(posts))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        expected = "sha256=" + hmac.new(args.secret.encode(), body, hashlib.sha256).hexdigest()
        signature = self.headers.get("X-TestLooper-Signature", "")
        with lock:
            status = 500 if len(posts) < args.fail_first else 200
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            posts.append({"path": self.path,
                          "delivery": self.headers.get("X-TestLooper-Delivery", ""),
                          "event": self.headers.get("X-TestLooper-Event", ""),
                          "signature_ok": hmac.compare_digest(expected, signature),
                          "status": status,
                          "body": parsed})
        self.reply(status, {"ok": status == 200})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("port %d" % server.server_address[1], flush=True)
sys.stdout.close()
server.serve_forever()
