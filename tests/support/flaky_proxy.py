"""A real HTTP proxy in front of an S3 server that fails the first N requests on cue.

It lets the S3 adapter meet real 503s and dropped connections over the wire, with boto3's
real error parsing, without patching any of our code."""

from __future__ import annotations

import http.client
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FlakyProxy:
    def __init__(self, upstream: str):
        u = urlparse(upstream)
        self.upstream_host, self.upstream_port = u.hostname, u.port
        self.fail_next = 0
        self.mode = "503"  # or "reset" or "403"
        # A share of every request fails as well, each as 503 SlowDown or a reset (fault suite).
        self.fail_share = 0.0
        self.share_modes = ("503", "reset")
        self.failed = 0
        self.random = random.Random(7)
        self.requests = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.requests += 1
                    fail = proxy.fail_next > 0
                    mode = proxy.mode
                    if fail:
                        proxy.fail_next -= 1
                    elif proxy.fail_share and proxy.random.random() < proxy.fail_share:
                        fail, mode = True, proxy.random.choice(proxy.share_modes)
                    proxy.failed += fail
                if fail and mode == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fail:
                    status = 503 if mode == "503" else 403
                    payload = SLOW_DOWN if status == 503 else SLOW_DOWN.replace(b"SlowDown", b"AccessDenied")
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
