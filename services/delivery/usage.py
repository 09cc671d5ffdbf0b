"""Bandwidth and requests from the access logs that already exist (`imagepipe usage ingest`, and
Celery beat when ACCESS_LOG_PREFIX is set): S3 server access logs and CloudFront standard logs,
read from a log bucket/prefix or a local folder, each file once (the file is recorded in the
transaction that adds its counts: a second ingest running at the same time fails on the unique
key and skips it), aggregated per day × source × entity type × rendition × format
(`egress_usage`), and read back by the storage statistics (`egress`: per day, per rendition, the
CDN's cache hit ratio, renditions never served in the window).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import AccessLogFile, EgressUsage
from services.delivery import accesslogs
from services.images.serialisers import iso
from services.storage_admin.stats import merge_deltas

log = logging.getLogger(__name__)
MAX_LOG_FILE_BYTES = 512 * 1024 * 1024  # a file larger than this is skipped (and said): no log AWS writes is


class LogSource:
    """Where access logs are delivered: `location` is what is recorded per file."""

    location: str

    def names(self) -> Iterator[tuple[str, int]]:  # (name, size), in name order
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        raise NotImplementedError


class FolderSource(LogSource):
    def __init__(self, folder: Path):
        self.folder = Path(folder).resolve()
        self.location = str(self.folder)

    def names(self) -> Iterator[tuple[str, int]]:
        found = []
        for root, _dirs, files in os.walk(self.folder):
            for f in files:
                path = Path(root) / f
                found.append((path.relative_to(self.folder).as_posix(), path.stat().st_size))
        yield from sorted(found)

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()


class BucketSource(LogSource):
    """A prefix of a bucket, through an object store for that bucket (the log bucket: S3 and
    CloudFront deliver there with their own service principals)."""

    def __init__(self, store, bucket: str, prefix: str):
        self.store, self.prefix = store, prefix
        self.location = f"s3://{bucket}/{prefix}"

    def names(self) -> Iterator[tuple[str, int]]:
        for obj in self.store.list(self.prefix):
            yield obj.key, obj.size

    def read(self, name: str) -> bytes:
        return self.store.get(name)


def split_location(value: str, default_bucket: str) -> tuple[str, str]:
    """ACCESS_LOG_PREFIX: `s3://bucket/prefix/` or a prefix of AWS_S3_BUCKET."""
    if value.startswith("s3://"):
        bucket, _, prefix = value[len("s3://") :].partition("/")
        return bucket, prefix
    return default_bucket, value


def bucket_source(settings, location: str) -> BucketSource:
    from services.infra.stores import make_store

    bucket, prefix = split_location(location, settings.aws_s3_bucket)
    return BucketSource(make_store(settings.model_copy(update={"aws_s3_bucket": bucket})), bucket, prefix)


@dataclass
class IngestReport:
    location: str
    files_read: int = 0
    files_known: int = 0
    files_skipped: list[str] = field(default_factory=list)
    lines: int = 0
    counted: int = 0
    malformed: int = 0
    requests: int = 0
    bytes: int = 0
    formats: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "files_read": self.files_read,
            "files_already_read": self.files_known,
            "files_skipped": self.files_skipped,
            "lines": self.lines,
            "requests_counted": self.counted,
            "malformed_lines": self.malformed,
            "bytes": self.bytes,
            "formats": dict(self.formats),
        }


def ingest(
    unit_of_work: Callable[[], AbstractContextManager[Session]], source: LogSource, *, max_files: int | None = None
) -> IngestReport:
    """Read every file of `source` not read before; one transaction per file."""
    report = IngestReport(source.location)
    with unit_of_work() as session:
        known = set(session.scalars(select(AccessLogFile.name).where(AccessLogFile.location == source.location)))
    for name, size in source.names():
        if name in known:
            report.files_known += 1
            continue
        if max_files is not None and report.files_read >= max_files:
            break
        if size > MAX_LOG_FILE_BYTES:
            report.files_skipped.append(f"{name}: {size} bytes, larger than any access log file")
            continue
        text = accesslogs.open_text(source.read(name))
        counts = accesslogs.FileCounts(accesslogs.detect(text))
        sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
        for r in accesslogs.parse(text, counts):
            s = sums[(r.day, counts.format, r.entity_type, r.name, r.format)]
            s[0] += 1
            s[1] += r.bytes
            s[2] += int(r.hit)
        try:
            with unit_of_work() as session:
                session.add(
                    AccessLogFile(
                        location=source.location,
                        name=name,
                        format=counts.format,
                        bytes=size,
                        lines=counts.lines,
                        counted=counts.counted,
                        malformed=counts.malformed,
                    )
                )
                session.flush()  # the unique key first: a concurrent ingest of this file stops here
                if sums:
                    session.execute(insert(EgressUsage), [_row(key, v) for key, v in sums.items()])
        except IntegrityError:
            report.files_known += 1  # another ingest took it meanwhile
            continue
        report.files_read += 1
        report.formats[counts.format] += 1
        report.lines += counts.lines
        report.counted += counts.counted
        report.malformed += counts.malformed
        report.requests += sum(v[0] for v in sums.values())
        report.bytes += sum(v[1] for v in sums.values())
        if counts.malformed:
            log.warning("%s: %d malformed line(s) of %d skipped", name, counts.malformed, counts.lines)
    return report


def _row(key: tuple, value: list[int]) -> dict:
    day, source, entity_type, name, fmt = key
    return {
        "day": day,
        "source": source,
        "entity_type": entity_type,
        "name": name,
        "format": fmt,
        "requests": value[0],
        "bytes": value[1],
        "hits": value[2],
    }


def compact_egress(session: Session, *, limit: int = 50_000) -> int:
    """The egress rollup's rows merged into one per key (the usage sweep runs it)."""
    keys = ("day", "source", "entity_type", "name", "format")
    return merge_deltas(session, EgressUsage, keys, ("requests", "bytes", "hits"), limit=limit)


def _count() -> dict[str, int]:
    return {"requests": 0, "bytes": 0}


def egress(session: Session, stored_renditions: dict, *, days: int = 30, now: datetime | None = None) -> dict:
    """What the ingested logs say about the last `days` days (UTC, today included)."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    since = today - timedelta(days=days - 1)
    files = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(AccessLogFile.lines), 0),
            func.coalesce(func.sum(AccessLogFile.malformed), 0),
            func.max(AccessLogFile.ingested_at),
        )
    ).one()
    logs = {"files": int(files[0]), "lines": int(files[1]), "malformed_lines": int(files[2]), "last_ingested_at": iso(files[3])}
    if not files[0]:
        return {
            "known": False,
            "days": days,
            "logs": logs,
            "why": "no access log has been ingested: turn on S3 server access logging or CloudFront standard logging"
            ' and run `imagepipe usage ingest` (or set ACCESS_LOG_PREFIX; docs/operations.md "Cost and delivery")',
        }
    e = EgressUsage
    rows = session.execute(
        select(e.day, e.source, e.entity_type, e.name, e.format, func.sum(e.requests), func.sum(e.bytes), func.sum(e.hits))
        .where(e.day >= since, e.day <= today)
        .group_by(e.day, e.source, e.entity_type, e.name, e.format)
    ).all()
    per_day = {(since + timedelta(days=n)).isoformat(): _count() for n in range(days)}
    sources: dict[str, dict] = {}
    entities: dict[str, dict] = defaultdict(_count)
    renditions: dict[str, dict] = defaultdict(lambda: defaultdict(_count))
    first: date | None = None
    for day, source, entity_type, name, fmt, requests, size, hits in rows:
        requests, size, hits = int(requests), int(size), int(hits)
        key = day.isoformat() if isinstance(day, date) else str(day)
        first = min(first, date.fromisoformat(key)) if first else date.fromisoformat(key)
        for target in (per_day[key], entities[entity_type], renditions[name][fmt]):
            target["requests"] += requests
            target["bytes"] += size
        src = sources.setdefault(source, {"requests": 0, "bytes": 0, "hits": 0})
        src["requests"] += requests
        src["bytes"] += size
        src["hits"] += hits
    for name, src in sources.items():
        hits = src.pop("hits")
        if name == accesslogs.CLOUDFRONT:
            src["cache_hit_ratio"] = round(hits / src["requests"], 4) if src["requests"] else None
    never = [
        {"rendition": name, "format": fmt, **stored}
        for name, formats in sorted(stored_renditions.items())
        for fmt, stored in sorted(formats.items())
        if not renditions.get(name, {}).get(fmt, {}).get("requests")
    ]
    return {
        "known": True,
        "days": days,
        "first_day_with_requests": first.isoformat() if first else None,
        "totals": {
            "requests": sum(s["requests"] for s in sources.values()),
            "bytes": sum(s["bytes"] for s in sources.values()),
        },
        "sources": dict(sorted(sources.items())),
        "per_day": [{"date": d, **c} for d, c in per_day.items()],
        "entities": dict(sorted(entities.items())),
        "renditions": {n: dict(sorted(f.items())) for n, f in sorted(renditions.items())},
        "never_served": never,
        "logs": logs,
    }
