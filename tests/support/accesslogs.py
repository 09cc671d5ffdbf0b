"""Access log files in the formats AWS writes, for requests the suite chooses (the examples of
docs.aws.amazon.com/AmazonS3/latest/userguide/LogFormat.html and
docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html, with our
keys, sizes and times in place of theirs)."""

from __future__ import annotations

import gzip
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"
CF_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent)"
    " cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken"
    " x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status"
    " fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len"
    " sc-range-start sc-range-end"
).split()


@dataclass
class Hit:
    key: str
    bytes: int
    at: datetime
    status: int = 200
    operation: str = "REST.GET.OBJECT"
    result: str = "Hit"  # CloudFront's x-edge-result-type
    method: str = "GET"


def s3_line(bucket: str, h: Hit, *, extra_fields: bool = True) -> str:
    """One S3 server access log line (anonymous GET of a public object, as a browser makes it)."""
    sent = str(h.bytes) if h.bytes else "-"
    fields = [
        OWNER,
        bucket,
        h.at.strftime("[%d/%b/%Y:%H:%M:%S +0000]"),
        "192.0.2.3",
        "-",  # anonymous requester
        secrets.token_hex(8).upper(),
        h.operation,
        quote(h.key),
        f'"{h.method} /{bucket}/{quote(h.key)}?x-id=GetObject HTTP/1.1"',
        str(h.status),
        "-" if h.status < 400 else "AccessDenied",
        sent,
        str(h.bytes) if h.status < 300 else "-",
        "12",
        "11",
        '"https://www.listings.example/properties/17"',
        f'"{UA}"',
        "-",
        "s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234=",
        "-",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "-",
        f"{bucket}.s3.us-east-1.amazonaws.com",
        "TLSv1.2",
    ]
    if extra_fields:  # fields AWS added later, and may add again: a reader must ignore them
        fields += ["-", "Yes", "us-east-1"]
    return " ".join(fields)


def s3_log(bucket: str, hits: list[Hit], *, gz: bool = False, extra: list[str] = ()) -> bytes:
    text = "\n".join([s3_line(bucket, h) for h in hits] + list(extra)) + "\n"
    return gzip.compress(text.encode()) if gz else text.encode()


def cloudfront_line(h: Hit, fields=CF_FIELDS) -> str:
    values = {
        "date": h.at.strftime("%Y-%m-%d"),
        "time": h.at.strftime("%H:%M:%S"),
        "x-edge-location": "FRA56-P1",
        "sc-bytes": str(h.bytes),
        "c-ip": "198.51.100.7",
        "cs-method": h.method,
        "cs(Host)": "d111111abcdef8.cloudfront.net",
        "cs-uri-stem": "/" + quote(h.key),
        "sc-status": str(h.status),
        "cs(Referer)": "https://www.listings.example/properties/17",
        "cs(User-Agent)": quote(UA),
        "cs-uri-query": "-",
        "cs(Cookie)": "-",
        "x-edge-result-type": h.result,
        "x-edge-request-id": secrets.token_urlsafe(42),
        "x-host-header": "media.listings.example",
        "cs-protocol": "https",
        "cs-bytes": "211",
        "time-taken": "0.002",
        "x-forwarded-for": "-",
        "ssl-protocol": "TLSv1.3",
        "ssl-cipher": "TLS_AES_128_GCM_SHA256",
        "x-edge-response-result-type": h.result,
        "cs-protocol-version": "HTTP/2.0",
        "fle-status": "-",
        "fle-encrypted-fields": "-",
        "c-port": "50812",
        "time-to-first-byte": "0.001",
        "x-edge-detailed-result-type": h.result,
        "sc-content-type": "image/webp",
        "sc-content-len": str(h.bytes),
        "sc-range-start": "-",
        "sc-range-end": "-",
    }
    return "\t".join(values[f] for f in fields)


def cloudfront_log(hits: list[Hit], *, fields=CF_FIELDS, gz: bool = True, extra: list[str] = ()) -> bytes:
    lines = ["#Version: 1.0", "#Fields: " + " ".join(fields)] + [cloudfront_line(h, fields) for h in hits] + list(extra)
    text = "\n".join(lines) + "\n"
    return gzip.compress(text.encode()) if gz else text.encode()
