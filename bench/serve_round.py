#!/usr/bin/env python3
"""One round of bench/serve_bench.sh: raises the commit's target for the bench test to TOTAL runs,
then polls the commit until the server shows TOTAL runs, over one kept-alive connection, and
prints the seconds from the request to that answer.

One process for the whole round: the shell loop it replaces (curl, grep, head and cut every
50 ms) took a fifth of the machine's CPU on a machine where starting a process costs 2-5 ms,
and that CPU was taken from the server and its workers being measured.

Usage: serve_round.py API_URL COMMIT_PATH TOTAL [CA_FILE]
  API_URL      http(s)://127.0.0.1:PORT/api
  COMMIT_PATH  repos/<repo>/commits/<sha>
"""
import http.client
import json
import re
import ssl
import sys
import time
import urllib.parse

POLL_SECONDS = 0.05
RUNS = re.compile(rb'"runs":([0-9]+)')


def main():
    api, commit_path, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ca_file = sys.argv[4] if len(sys.argv) > 4 else None
    url = urllib.parse.urlsplit(api)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file)
        connection = http.client.HTTPSConnection(url.hostname, url.port, context=context)
    else:
        connection = http.client.HTTPConnection(url.hostname, url.port)

    def request(method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, f"{url.path}/{path}", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            sys.exit(f"{method} {path}: HTTP {response.status}: {data[:200]!r}")
        return data

    start = time.monotonic()
    request("POST", f"{commit_path}/targets",
            json.dumps({"name": "trivial/host", "runs": total}))
    while True:
        found = RUNS.search(request("GET", commit_path))
        if found and int(found.group(1)) >= total:
            break
        time.sleep(POLL_SECONDS)
    print(f"{time.monotonic() - start:.4f}")


if __name__ == "__main__":
    main()
