"""The two access log formats AWS writes, as AWS documents them, read into requests for our keys.

- S3 server access logs (docs.aws.amazon.com/AmazonS3/latest/userguide/LogFormat.html): one
  request per line, fields separated by spaces, `[time]` in brackets, Request-URI, Referer and
  User-Agent in double quotes, `-` for an empty field; AWS may append fields at the end, so only
  the leading ones are read. The Key field is URL-encoded.
- CloudFront standard logs (AccessLogs.html, "standard logging (legacy)" and v2's W3C form):
  `#Version:` and `#Fields:` header lines, then tab-separated values in the order the `#Fields:`
  line names (read by name: v2 lets the order and the set of fields change); values are
  URL-encoded; `-` is empty. Files are usually gzip.

A line that cannot be read is counted as malformed and skipped, never fatal. Only GETs count
(S3: `*.GET.OBJECT`; CloudFront: method GET) and only answered ones (status below 400): what was
delivered.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import unquote

from services.images.keys import parse_key

S3 = "s3"
CLOUDFRONT = "cloudfront"
_S3_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+')
_S3_FIELDS = 18  # bucket owner .. user agent: what every S3 log line has had since 2013
_CF_HIT = {"Hit", "RefreshHit"}


@dataclass(frozen=True)
class Request:
    """One delivered request for an object of our layout."""

    day: date
    entity_type: str
    name: str  # the rendition's name, or "original"
    format: str
    bytes: int
    hit: bool  # a CDN cache hit (always False for S3)


@dataclass
class FileCounts:
    format: str
    lines: int = 0
    counted: int = 0
    malformed: int = 0


def open_text(raw: bytes) -> str:
    """gzip or plain, by the magic bytes (log delivery names are not a reliable guide). A gzip
    file cut short (a delivery still being written) gives what could be read."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error):
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                raw = decoder.decompress(raw)
            except zlib.error:
                raw = b""
    return raw.decode("utf-8", errors="replace")


def detect(text: str) -> str:
    head = text.lstrip()[:200]
    if head.startswith("#Version:") or head.startswith("#Fields:"):
        return CLOUDFRONT
    return S3


def _what(path: str) -> tuple[str, str, str] | None:
    """(entity type, rendition or `original`, format) of a key of ours; None for anything else."""
    info = parse_key(path.lstrip("/"))
    if info is None or info["kind"] == "staging":
        return None
    name = "original" if info["kind"] == "original" else info["name"]
    return info["entity_type"], name[:30], str(info["format"])[:10]  # the columns' widths


def _number(value: str) -> int:
    if value == "-":
        return 0
    n = int(value)
    if n < 0:
        raise ValueError(value)
    return n


def parse(text: str, counts: FileCounts) -> Iterator[Request]:
    """The delivered requests for our keys in a log file's text; `counts` is kept as it goes."""
    if counts.format == CLOUDFRONT:
        yield from _cloudfront(text, counts)
    else:
        yield from _s3(text, counts)


def _s3(text: str, counts: FileCounts) -> Iterator[Request]:
    for line in text.splitlines():
        if not line.strip():
            continue
        counts.lines += 1
        try:
            fields = _S3_TOKEN.findall(line)
            if len(fields) < _S3_FIELDS or not fields[2].startswith("["):
                raise ValueError("too few fields")
            when = datetime.strptime(fields[2][1:-1], "%d/%b/%Y:%H:%M:%S %z")
            operation, key, status, sent = fields[6], fields[7], fields[9], fields[11]
            sent_bytes = _number(sent)
            status_code = int(status) if status != "-" else 0
        except (ValueError, IndexError):
            counts.malformed += 1
            continue
        if not operation.endswith(".GET.OBJECT") or not 0 < status_code < 400 or key == "-":
            continue
        what = _what(unquote(key))
        if what is None:
            continue
        counts.counted += 1
        yield Request(when.astimezone(UTC).date(), *what, bytes=sent_bytes, hit=False)


def _cloudfront(text: str, counts: FileCounts) -> Iterator[Request]:
    names: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                names = line[len("#Fields:") :].split()
            continue
        if not line.strip():
            continue
        counts.lines += 1
        values = line.split("\t")
        if names is None or len(values) != len(names):
            counts.malformed += 1
            continue
        row = dict(zip(names, values, strict=True))
        try:
            day = date.fromisoformat(row["date"])
            method, status = row["cs-method"], int(row["sc-status"])
            stem, sent = unquote(row["cs-uri-stem"]), _number(row["sc-bytes"])
            result = row.get("x-edge-result-type", "-")
        except (KeyError, ValueError):
            counts.malformed += 1
            continue
        if method != "GET" or not 0 < status < 400:
            continue
        what = _what(stem)
        if what is None:
            continue
        counts.counted += 1
        yield Request(day, *what, bytes=sent, hit=result in _CF_HIT)
