#!/usr/bin/env python3
"""A proxy in front of moto_server for the fleet's tests.

moto does not check signatures, so this proxy checks every request's SigV4 signature (header or
presigned query) with botocore's own signer, as AWS would, before forwarding it: a request AWS
would refuse gets 403 SignatureDoesNotMatch here too. It also plays faults the tests ask for
through /__proxy__/ (unsigned control requests):
  PUT /__proxy__/faults?fail_part=N   UploadPart number N answers 500 InternalError
  PUT /__proxy__/faults?hang=TEXT     a request whose path holds TEXT is never answered
  PUT /__proxy__/faults?endless_list=1  every ListObjectsV2 page is empty and says "more"
  PUT /__proxy__/faults               no faults
  GET /__proxy__/hanging              how many requests are being held now
  GET /__proxy__/refused              the signature problems seen so far, one a line

usage: aws_proxy.py --upstream http://127.0.0.1:PORT --port-file FILE
The secret key is $AWS_SECRET_ACCESS_KEY (moto's fake credentials).
"""
import argparse
import hashlib
import http.client
import http.server
import os
import re
import select
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH = re.compile(r'AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, '
                  r'SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$')
lock = threading.Lock()
faults = {}
hanging = [0]
refused = []


def signer(service, region, access_key, token, expires=None):
    credentials = Credentials(access_key, os.environ['AWS_SECRET_ACCESS_KEY'], token)
    if expires is not None:
        return S3SigV4QueryAuth(credentials, service, region, expires=expires)
    return (S3SigV4Auth if service == 's3' else SigV4Auth)(credentials, service, region)


def expected_signature(auth, request, timestamp):
    request.context['timestamp'] = timestamp
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request), canonical


def check_presigned(handler, host):
    parts = urllib.parse.urlsplit(handler.path)
    pairs = [p for p in parts.query.split('&') if p]
    params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    signature = params.get('X-Amz-Signature', '')
    access_key, date, region, service, _ = params.get('X-Amz-Credential', '////').split('/', 4)
    stamp = params.get('X-Amz-Date', '')
    issued = datetime.strptime(stamp, '%Y%m%dT%H%M%SZ').replace(tzinfo=timezone.utc).timestamp()
    if time.time() > issued + int(params.get('X-Amz-Expires', '0')):
        return 'the presigned URL expired'
    unsigned = '&'.join(p for p in pairs if not p.startswith('X-Amz-Signature='))
    request = AWSRequest(method=handler.command, url='http://%s%s?%s' % (host, parts.path, unsigned),
                         headers={'host': host})
    auth = signer(service, region, access_key, params.get('X-Amz-Security-Token'),
                  int(params.get('X-Amz-Expires', '0')))
    expected, canonical = expected_signature(auth, request, stamp)
    if expected != signature:
        return 'presigned signature mismatch; canonical request:\n' + canonical
    return None


def check_signature(handler, body):
    host = handler.headers.get('Host', '')
    if 'X-Amz-Signature=' in handler.path:
        return check_presigned(handler, host)
    match = AUTH.match(handler.headers.get('Authorization', ''))
    if not match:
        return 'no SigV4 Authorization header'
    access_key, date, region, service, signed, signature = match.groups()
    stamp = handler.headers.get('X-Amz-Date', '')
    if not stamp.startswith(date):
        return 'X-Amz-Date does not match the credential scope'
    payload = handler.headers.get('x-amz-content-sha256')
    if service == 's3':
        if payload is None:
            return 'S3 needs x-amz-content-sha256'
        if payload != 'UNSIGNED-PAYLOAD' and payload != hashlib.sha256(body).hexdigest():
            return 'x-amz-content-sha256 is not the hash of the body'
    headers = {}
    for name in signed.split(';'):
        if handler.headers.get(name) is None:
            return 'signed header %s is missing' % name
        headers[name] = handler.headers.get(name)
    if 'host' not in headers:
        return 'host is not signed'
    request = AWSRequest(method=handler.command, url='http://%s%s' % (host, handler.path),
                         headers=headers, data=body)
    auth = signer(service, region, access_key, handler.headers.get('X-Amz-Security-Token'))
    expected, canonical = expected_signature(auth, request, stamp)
    if expected != signature:
        return 'signature mismatch; canonical request:\n' + canonical
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not any(name.lower() == 'content-length' for name, _ in headers):
            self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def control(self):
        parts = urllib.parse.urlsplit(self.path)
        with lock:
            if parts.path == '/__proxy__/faults':
                faults.clear()
                faults.update(urllib.parse.parse_qsl(parts.query))
                return self.answer(200, b'')
            if parts.path == '/__proxy__/hanging':
                return self.answer(200, str(hanging[0]).encode())
            if parts.path == '/__proxy__/refused':
                return self.answer(200, ''.join(r + '\n' for r in refused).encode())
        return self.answer(404, b'')

    def hang(self):
        with lock:
            hanging[0] += 1
        try:  # until the client goes away
            while True:
                readable, _, _ = select.select([self.connection], [], [], 1)
                if readable and not self.connection.recv(1, 0x2):  # MSG_PEEK
                    break
        finally:
            with lock:
                hanging[0] -= 1
        self.close_connection = True

    def handle_any(self):
        if self.path.startswith('/__proxy__/'):
            self.rfile.read(int(self.headers.get('Content-Length') or 0))
            return self.control()
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        try:
            problem = check_signature(self, body)
        except Exception as e:  # a malformed request is refused, as AWS would
            problem = 'cannot check the signature: %r' % e
        if problem:
            with lock:
                refused.append('%s %s: %s' % (self.command, self.path, problem.splitlines()[0]))
            return self.answer(403, ('<Error><Code>SignatureDoesNotMatch</Code><Message>%s'
                                     '</Message></Error>' % escape(problem)).encode())
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        with lock:
            fail_part, hang = faults.get('fail_part'), faults.get('hang')
        if self.command == 'PUT' and fail_part and query.get('partNumber') == fail_part:
            return self.answer(500, b'<Error><Code>InternalError</Code>'
                                    b'<Message>injected by aws_proxy.py</Message></Error>')
        if hang and hang in self.path:
            return self.hang()
        if faults.get('endless_list') and 'list-type=2' in self.path:
            return self.answer(200, b'<ListBucketResult><IsTruncated>true</IsTruncated>'
                                    b'<NextContinuationToken>again</NextContinuationToken>'
                                    b'</ListBucketResult>')
        self.forward(body)

    def forward(self, body):
        # http.client, not urllib: urllib adds a form Content-Type moto would parse the body by.
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ('host', 'connection', 'expect')}
        upstream = urllib.parse.urlsplit(args.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=600)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            kept = [(k, v) for k, v in answer.getheaders()
                    if k.lower() not in ('transfer-encoding', 'connection', 'server', 'date')
                    and (self.command == 'HEAD' or k.lower() != 'content-length')]
            self.answer(answer.status, data, kept)
        finally:
            connection.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--upstream', required=True)
    parser.add_argument('--port-file', required=True)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    with open(args.port_file + '.tmp', 'w') as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + '.tmp', args.port_file)
    server.serve_forever()
