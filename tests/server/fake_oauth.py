#!/usr/bin/env python3
"""A fake GitHub or GitLab for the OAuth sign-in tests (tests/server/oauth_test.cc, the browser
suite): the authorize page, the token endpoint and the user and membership endpoints, as those
services define them, on a loopback port the kernel chooses (printed first: "port N").

  fake_oauth.py --kind github|gitlab --client-id ID --client-secret SECRET --org ORG \
                --user alice:1 --user bob:2 --member alice

The authorize page (GitHub /login/oauth/authorize, GitLab /oauth/authorize) shows an "Authorize"
button for the user named by --default-user (or the query's `as=`); with `auto=1` in the query it
redirects at once. Test controls: GET /_control/mode?set=normal|garbage|hang makes the token
endpoint answer normally, with garbage, or hang until GET /_control/release; GET /_control/calls
counts the token endpoint's calls. Standard library only.
"""
import argparse
import html
import json
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
USERS = {}  # login -> id
CODES = {}  # code -> (login, client_id, redirect_uri)
TOKENS = {}  # access token -> login
STATE = {"mode": "normal", "calls": 0}
RELEASE = threading.Event()
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", content_type="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def bearer(self):
        value = self.headers.get("Authorization", "")
        for prefix in ("Bearer ", "token "):
            if value.startswith(prefix):
                return TOKENS.get(value[len(prefix):])
        return None

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        if path == "/_control/mode":
            STATE["mode"] = q.get("set", "normal")
            RELEASE.clear()
            return self.send(200, {"mode": STATE["mode"]})
        if path == "/_control/release":
            RELEASE.set()
            return self.send(200, {"released": True})
        if path == "/_control/calls":
            return self.send(200, {"calls": STATE["calls"]})
        authorize = "/oauth/authorize" if ARGS.kind == "gitlab" else "/login/oauth/authorize"
        if path == authorize:
            return self.authorize(q)
        api = "/api/v4" if ARGS.kind == "gitlab" else ""
        if path == api + "/user":
            login = self.bearer()
            if login is None:
                return self.send(401, {"message": "Bad credentials"})
            key = "username" if ARGS.kind == "gitlab" else "login"
            return self.send(200, {key: login, "id": USERS[login], "name": login.title()})
        parts = path[len(api):].split("/")
        if ARGS.kind == "github" and len(parts) == 5 and parts[1] == "orgs" and parts[3] == "members":
            if self.bearer() is None:
                return self.send(401, {"message": "Bad credentials"})
            member = parts[2] == ARGS.org and parts[4] in ARGS.member
            return self.send(204 if member else 404, b"" if member else {"message": "Not Found"})
        if (ARGS.kind == "gitlab" and len(parts) == 6 and parts[1] == "groups"
                and parts[3] == "members" and parts[4] == "all"):
            if self.bearer() is None:
                return self.send(401, {"message": "401 Unauthorized"})
            group = urllib.parse.unquote(parts[2])
            login = next((l for l, i in USERS.items() if str(i) == parts[5]), None)
            if group == ARGS.org and login in ARGS.member:
                return self.send(200, {"id": USERS[login], "username": login, "access_level": 30,
                                       "state": "active"})
            return self.send(404, {"message": "404 Not found"})
        return self.send(404, {"message": "Not Found"})

    def authorize(self, q):
        if q.get("client_id") != ARGS.client_id:
            return self.send(400, "unknown client_id", "text/plain")
        if ARGS.kind == "gitlab" and q.get("response_type") != "code":
            return self.send(400, "response_type must be code", "text/plain")
        redirect_uri = q.get("redirect_uri", "")
        login = q.get("as", ARGS.default_user)
        if q.get("approve") == "1" or q.get("auto") == "1":
            if login not in USERS:
                return self.send(400, "no such user", "text/plain")
            code = secrets.token_hex(16)
            with LOCK:
                CODES[code] = (login, q["client_id"], redirect_uri)
            sep = "&" if "?" in redirect_uri else "?"
            location = redirect_uri + sep + urllib.parse.urlencode(
                {"code": code, "state": q.get("state", "")})
            return self.send(302, b"", "text/plain", [("Location", location)])
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in q.items())
        page = (f"<!doctype html><title>Fake {ARGS.kind}</title><h1>Fake {ARGS.kind}</h1>"
                f"<p>Sign in to TestLooper as <b id=user>{html.escape(login)}</b>?</p>"
                f'<form method=get>{fields}<input type=hidden name=approve value=1>'
                f'<button id=authorize type=submit>Authorize</button></form>')
        return self.send(200, page, "text/html; charset=utf-8")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        token_path = "/oauth/token" if ARGS.kind == "gitlab" else "/login/oauth/access_token"
        if url.path != token_path:
            return self.send(404, {"message": "Not Found"})
        STATE["calls"] += 1
        if STATE["mode"] == "hang":
            RELEASE.wait(120)
            return self.send(200, b"\x00garbage{", "application/json")
        if STATE["mode"] == "garbage":
            return self.send(200, b"<html>not json at all", "application/json")
        if form.get("client_id") != ARGS.client_id or form.get("client_secret") != ARGS.client_secret:
            return self.send(401, {"error": "invalid_client"})
        if ARGS.kind == "gitlab" and form.get("grant_type") != "authorization_code":
            return self.send(400, {"error": "unsupported_grant_type"})
        with LOCK:
            entry = CODES.pop(form.get("code", ""), None)
        if entry is None or entry[2] != form.get("redirect_uri"):
            # GitHub answers 200 with an error; GitLab 400.
            return self.send(200 if ARGS.kind == "github" else 400,
                             {"error": "bad_verification_code" if ARGS.kind == "github"
                              else "invalid_grant"})
        token = secrets.token_hex(20)
        TOKENS[token] = entry[0]
        return self.send(200, {"access_token": token, "token_type": "bearer", "scope": "read:org"})


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--kind", choices=["github", "gitlab"], default="github")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--org", default="")
    p.add_argument("--user", action="append", default=[], help="LOGIN:ID")
    p.add_argument("--member", action="append", default=[])
    p.add_argument("--default-user", default="")
    ARGS = p.parse_args()
    for u in ARGS.user:
        login, _, uid = u.partition(":")
        USERS[login] = int(uid or len(USERS) + 1)
    if not ARGS.default_user and USERS:
        ARGS.default_user = next(iter(USERS))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
