"""A small web server the suite starts on loopback, standing in for the sites photos are imported
from and for an MLS's RESO Web API Media feed (services/syndication: imports and feed sync).

It listens on 127.0.0.2 (the suite's FETCH_ALLOWED_NETWORKS), serves corpus photos and the
misbehaviours an importer meets (redirects, errors, slow or endless bodies, a lying size), and
`feed` records in RESO's JSON shape with OData paging; it logs every request it was sent."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.conftest import corpus


@dataclass
class Feed:
    """RESO Media records by MediaKey, served in pages of at most `page_size`; a page whose
    skiptoken is in `stall_once` hangs past the fetcher's read timeout, once."""

    records: dict[str, dict] = field(default_factory=dict)
    page_size: int = 2
    stall_once: set[str] = field(default_factory=set)  # skiptokens whose page hangs once
    stall_s: float = 12.0
    photos: dict[str, bytes] = field(default_factory=dict)  # served at /media/<name>


class PhotoServer:
    def __init__(self, host: str = "127.0.0.2"):
        self.requests: list[str] = []
        self.feed = Feed()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002
                pass

            def do_GET(self):  # noqa: N802
                server.requests.append(self.path)
                server.handle(self)

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.base = f"http://{host}:{self._httpd.server_port}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- routes ------------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if path.startswith("/photos/"):
            return self._send(h, 200, corpus("photos", path.removeprefix("/photos/")).read_bytes(), "image/jpeg")
        if path.startswith("/reject/"):  # the corpus' files imagepipe refuses
            return self._send(h, 200, corpus("reject", path.removeprefix("/reject/")).read_bytes(), "image/jpeg")
        if path.startswith("/media/") and path.removeprefix("/media/") in self.feed.photos:
            return self._send(h, 200, self.feed.photos[path.removeprefix("/media/")], "image/jpeg")
        if path == "/redirect":
            hops = int(query.get("hops", "1"))
            target = query["to"] if hops <= 1 else f"/redirect?{urlencode({'to': query['to'], 'hops': hops - 1})}"
            return self._send(h, 302, b"", "text/plain", {"Location": target})
        if path.startswith("/status/"):
            return self._send(h, int(path.removeprefix("/status/")), b"no", "text/plain")
        if path == "/huge":  # says 1 GB, sends a little
            return self._send(h, 200, b"\xff\xd8\xff" + b"\0" * 100, "image/jpeg", {"Content-Length": str(10**9)}, close=True)
        if path == "/endless":  # chunked, no length, never ends on its own
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            try:
                block = b"\xff" * 65536
                for _ in range(10_000):
                    h.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
            except OSError:
                pass
            return None
        if path == "/slow":  # headers, then nothing
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Content-Length", "1000")
            h.end_headers()
            time.sleep(float(query.get("s", "3")))
            return None
        if path == "/drip":  # one byte at a time, forever
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Content-Length", "100000")
            h.end_headers()
            try:
                for _ in range(100000):
                    h.wfile.write(b"\xff")
                    h.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
            return None
        if path == "/reso/Media":
            return self._feed_page(h, query)
        return self._send(h, 404, b"not here", "text/plain")

    def _send(self, h, status, body, ctype, headers=None, close=False):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        headers = headers or {}
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k, v)
        if close:
            h.send_header("Connection", "close")
        h.end_headers()
        try:
            h.wfile.write(body)
        except OSError:
            pass
        if close:
            h.close_connection = True

    def _feed_page(self, h, query):
        """OData as an MLS's Web API serves it: `ModificationTimestamp gt|ge X` filters, ordered by
        (ModificationTimestamp, MediaKey), `$top`, and a nextLink with a skiptoken."""
        token = query.get("$skiptoken", "")
        if token in self.feed.stall_once:
            self.feed.stall_once.discard(token)
            time.sleep(self.feed.stall_s)
        rows = sorted(self.feed.records.values(), key=lambda r: (r["ModificationTimestamp"], r["MediaKey"]))
        flt = query.get("$filter", "")
        for op in ("gt", "ge"):
            marker = f"ModificationTimestamp {op} "
            if marker in flt:
                since = flt.split(marker, 1)[1].split(" ")[0]
                rows = [
                    r for r in rows if (r["ModificationTimestamp"] > since if op == "gt" else r["ModificationTimestamp"] >= since)
                ]
        if token:
            stamp, _, key = token.partition("~")
            rows = [r for r in rows if (r["ModificationTimestamp"], r["MediaKey"]) > (stamp, key)]
        top = min(int(query.get("$top", self.feed.page_size)), self.feed.page_size)  # servers cap $top
        page, more = rows[:top], len(rows) > top
        body: dict = {"@odata.context": "$metadata#Media", "value": page}
        if more:
            last = page[-1]
            link = {k: v for k, v in query.items() if k != "$skiptoken"}
            link["$skiptoken"] = f"{last['ModificationTimestamp']}~{last['MediaKey']}"
            body["@odata.nextLink"] = f"{self.base}/reso/Media?{urlencode(link)}"
        self._send(h, 200, json.dumps(body).encode(), "application/json")
