#!/usr/bin/env python3
"""A small fake of GitHub's and GitLab's REST APIs and git-over-HTTP, for the hosting tests.

    fake_host.py --root DIR --port-file FILE [--token T] [--page-size N]

Repositories are the bare repos DIR/<owner>/<name>.git (created, pushed to and deleted by the
test while this runs). Served on 127.0.0.1 at a free port written to FILE:

  GitHub:  GET  /api/v3/orgs/{owner}/repos, /api/v3/users/{owner}/repos  (Link pagination)
           POST /api/v3/repos/{owner}/{name}/statuses/{sha}
  GitLab:  GET  /api/v4/groups/{group}/projects   (Link and X-Next-Page pagination)
           POST /api/v4/projects/{id}/statuses/{sha}    ({id}: number or url-encoded path)
  git:     /git/{owner}/{name}.git/...   (git http-backend; fetch and push)
  control: GET  /_fake/requests          every request so far: method, path, query, body, auth,
                                         time (seconds since the epoch, when it arrived), and
                                         "failed": status when a failure was injected
           POST /_fake/fail              {"path_contains": s, "count": n, "status": 500}: the next
                                         n requests whose path contains s get that status
                                         (-1: no answer at all, ever)

With --token, REST calls need "Authorization: Bearer T" (GitHub), "PRIVATE-TOKEN: T" (GitLab),
and git needs HTTP Basic auth whose password is T; others get 401.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
REQUESTS = []
FAILS = []  # [{"path_contains", "count", "status"}]


def repos_of(owner):
    d = os.path.join(ARGS.root, owner)
    if not os.path.isdir(d):
        return None
    names = sorted(n[:-4] for n in os.listdir(d) if n.endswith(".git"))
    return names


def project_id(owner, name):
    # A stable number per repo, as GitLab's ids are.
    return sum(ord(c) * (i + 1) for i, c in enumerate(owner + "/" + name)) % 100000 + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def base(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def reply(self, status, body=b"", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def record(self, body):
        url = urllib.parse.urlsplit(self.path)
        entry = {
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "body": body.decode("utf-8", "replace"),
            "authorization": self.headers.get("Authorization", ""),
            "private_token": self.headers.get("PRIVATE-TOKEN", ""),
            "time": time.time(),
        }
        with LOCK:
            REQUESTS.append(entry)
            for f in FAILS:
                if f["count"] > 0 and f["path_contains"] in url.path:
                    f["count"] -= 1
                    entry["failed"] = f["status"]  # answered with an injected failure
                    return f["status"]
        return None

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def handle_any(self):
        body = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        if path == "/_fake/requests":
            with LOCK:
                return self.reply(200, list(REQUESTS), [("Content-Type", "application/json")])
        if path == "/_fake/fail":
            f = json.loads(body)
            with LOCK:
                FAILS.append({"path_contains": f["path_contains"], "count": f.get("count", 1),
                              "status": f.get("status", 500)})
            return self.reply(200, {})
        failed = self.record(body)
        if failed == -1:
            time.sleep(3600)  # a host that never answers (the test kills the fake)
            return None
        if failed:
            return self.reply(failed, {"message": "injected failure"})
        if path.startswith("/git/"):
            return self.git(url, body)
        if not self.authorized():
            return self.reply(401, {"message": "Bad credentials"})
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        query = urllib.parse.parse_qs(url.query)
        if parts[:2] == ["api", "v3"]:
            return self.github(parts[2:], query, body)
        if parts[:2] == ["api", "v4"]:
            return self.gitlab(parts[2:], query, body)
        return self.reply(404, {"message": "Not Found"})

    def authorized(self):
        if not ARGS.token:
            return True
        return (self.headers.get("Authorization") == "Bearer " + ARGS.token or
                self.headers.get("Authorization") == "token " + ARGS.token or
                self.headers.get("PRIVATE-TOKEN") == ARGS.token)

    def page(self, items, query, make_url):
        per_page = min(int(query.get("per_page", ["30"])[0]), ARGS.page_size or 100)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = [("Content-Type", "application/json")]
        if page * per_page < len(items):
            headers.append(("Link", '<%s>; rel="next"' % make_url(page + 1, per_page)))
            headers.append(("X-Next-Page", str(page + 1)))
        return chunk, headers

    def github(self, parts, query, body):
        if len(parts) == 3 and parts[0] in ("orgs", "users") and parts[2] == "repos":
            owner = parts[1]
            names = repos_of(owner)
            if names is None or (parts[0] == "orgs" and owner.startswith("user-")):
                return self.reply(404, {"message": "Not Found"})
            items = [{
                "name": n, "full_name": owner + "/" + n, "archived": False,
                "default_branch": "main",
                "clone_url": "%s/git/%s/%s.git" % (self.base(), owner, n),
                "ssh_url": "git@127.0.0.1:%s/%s.git" % (owner, n),
                "html_url": "%s/%s/%s" % (self.base(), owner, n),
            } for n in names]
            chunk, headers = self.page(items, query, lambda p, n: "%s/api/v3/%s/%s/repos?per_page=%d&page=%d" % (
                self.base(), parts[0], owner, n, p))
            return self.reply(200, chunk, headers)
        if len(parts) == 5 and parts[0] == "repos" and parts[3] == "statuses":
            return self.reply(201, json.loads(body or b"{}"))
        return self.reply(404, {"message": "Not Found"})

    def gitlab(self, parts, query, body):
        if len(parts) == 3 and parts[0] == "groups" and parts[2] == "projects":
            group = parts[1]
            names = repos_of(group)
            if names is None:
                return self.reply(404, {"message": "404 Group Not Found"})
            items = [{
                "id": project_id(group, n), "name": n, "path": n,
                "path_with_namespace": group + "/" + n, "archived": False,
                "default_branch": "main",
                "http_url_to_repo": "%s/git/%s/%s.git" % (self.base(), group, n),
                "ssh_url_to_repo": "git@127.0.0.1:%s/%s.git" % (group, n),
                "web_url": "%s/%s/%s" % (self.base(), group, n),
            } for n in names]
            chunk, headers = self.page(items, query, lambda p, n: "%s/api/v4/groups/%s/projects?per_page=%d&page=%d" % (
                self.base(), urllib.parse.quote(group, safe=""), n, p))
            return self.reply(200, chunk, headers)
        if len(parts) == 4 and parts[0] == "projects" and parts[2] == "statuses":
            return self.reply(201, json.loads(body or b"{}"))
        return self.reply(404, {"message": "404 Not Found"})

    def git(self, url, body):
        if ARGS.token:
            auth = self.headers.get("Authorization", "")
            ok = False
            if auth.startswith("Basic "):
                try:
                    ok = base64.b64decode(auth[6:]).decode().split(":", 1)[1] == ARGS.token
                except Exception:
                    ok = False
            if not ok:
                return self.reply(401, b"", [("WWW-Authenticate", 'Basic realm="git"')])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": ARGS.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": url.path[len("/git"):],
            "QUERY_STRING": url.query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "testlooper",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        return self.reply(status, rest, headers)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--page-size", type=int, default=0)
    ARGS = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, ARGS.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
