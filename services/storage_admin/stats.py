"""Storage statistics (`GET /api/v1/admin/storage/stats`, `imagepipe stats`).

From the database by default: the sums of `storage_usage`, a rollup that database triggers keep
(migration 0008) and a sweep compacts, so the answer costs the same for a thousand images or a
million (docs/operations.md has the measurement). `recount` computes the same figures from the
images and renditions tables (a full scan) to check the rollup. `source="bucket"` recomputes the object figures from a streaming
listing of the bucket (one page in memory at a time) and reports how they differ from the
database's.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus, Rendition, ScanStatus, StorageScan, StorageUsage
from services.images.keys import SCANNED_PREFIXES, parse_key
from services.images.serialisers import iso
from storage import ObjectStore

DAYS = 30
# Statuses whose original is in the store (a `missing` image's is not; unfinished ones are not
# recorded yet).
STORED_ORIGINAL = (ImageStatus.READY, ImageStatus.DELETING)


def _count() -> dict:
    return {"objects": 0, "bytes": 0}


def _add(target: dict, objects: int, size: int) -> None:
    target["objects"] += int(objects)
    target["bytes"] += int(size or 0)


def _day(session: Session, column):
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores UTC text


def _days(now: datetime) -> list[str]:
    today = now.astimezone(UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(DAYS - 1, -1, -1)]


def database_stats(session: Session, *, now: datetime | None = None) -> dict:
    """The figures from the usage rollup (a few thousand rows whatever the number of images)."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    u = StorageUsage
    rows = session.execute(
        select(u.kind, u.entity_type, u.name, u.format, u.status, func.sum(u.objects), func.sum(u.bytes)).group_by(
            u.kind, u.entity_type, u.name, u.format, u.status
        )
    )
    since = now.astimezone(UTC).date() - timedelta(days=DAYS - 1)
    days = session.execute(
        select(u.day, func.sum(u.objects), func.sum(u.bytes))
        .where(u.day >= since, (u.kind == "rendition") | u.status.in_(STORED_ORIGINAL))
        .group_by(u.day)
    )
    return _from_sums(rows, days, now, started) | {"last_orphan_scan": last_scan(session)}


def recount(session: Session, *, now: datetime | None = None) -> dict:
    """The same figures aggregated from the images and renditions tables themselves: the slow
    path (a full scan), for `imagepipe stats --recount` and the tests that hold the rollup to it."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    image_day, rendition_day = _day(session, Image.created_at), _day(session, Rendition.created_at)
    rows = list(
        session.execute(
            select(
                literal("image"),
                Image.entity_type,
                literal(""),
                literal(""),
                Image.status,
                func.count(),
                func.coalesce(func.sum(Image.file_size), 0),
            ).group_by(Image.entity_type, Image.status)
        )
    )
    rows += list(
        session.execute(
            select(
                literal("rendition"),
                Rendition.entity_type,
                Rendition.name,
                Rendition.format,
                literal(""),
                func.count(),
                func.sum(Rendition.bytes),
            ).group_by(Rendition.entity_type, Rendition.name, Rendition.format)
        )
    )
    since = datetime.combine(now.astimezone(UTC).date() - timedelta(days=DAYS - 1), datetime.min.time(), UTC)
    days = list(
        session.execute(
            select(image_day, func.count(), func.sum(Image.file_size))
            .where(Image.created_at >= since, Image.status.in_(STORED_ORIGINAL))
            .group_by(image_day)
        )
    )
    days += list(
        session.execute(
            select(rendition_day, func.count(), func.sum(Rendition.bytes))
            .where(Rendition.created_at >= since)
            .group_by(rendition_day)
        )
    )
    return _from_sums(rows, days, now, started)


def _from_sums(rows, days, now: datetime, started: float) -> dict:
    entities: dict[str, dict] = defaultdict(lambda: {"originals": _count(), "renditions": _count()})
    by_status = {s.value: 0 for s in ImageStatus}
    renditions: dict[str, dict] = defaultdict(lambda: defaultdict(_count))
    for kind, entity_type, name, fmt, status, n, size in rows:
        if not n and not size:
            continue
        if kind == "image":
            by_status[status] = by_status.get(status, 0) + int(n)
            if status in STORED_ORIGINAL:
                _add(entities[entity_type]["originals"], n, size)
        else:
            _add(entities[entity_type or "unknown"]["renditions"], n, size)
            _add(renditions[name][fmt], n, size)
    per_day = {d: _count() for d in _days(now)}
    for d, n, total in days:
        key = d.isoformat() if isinstance(d, date) else str(d)
        if key in per_day:
            _add(per_day[key], n, total)
    for name in [k for k, v in renditions.items() if not any(c["objects"] or c["bytes"] for c in v.values())]:
        del renditions[name]
    return _shape("database", entities, renditions, None, per_day, started) | {"images_by_status": by_status}


def merge_deltas(session: Session, model, keys: tuple[str, ...], sums: tuple[str, ...], *, limit: int = 50_000) -> int:
    """Merge a rollup's delta rows into one row per `keys`, adding up `sums` (a sweep runs it for
    the storage usage and the egress rollups). The rows are taken by `DELETE ... RETURNING`: two
    merges at once each merge only the rows they deleted themselves, so nothing is counted twice or
    lost; a key whose sums are all zero leaves no row. Returns how many rows were merged."""
    taken = session.execute(
        delete(model)
        .where(model.id.in_(select(model.id).order_by(model.id).limit(limit).scalar_subquery()))
        .returning(*(getattr(model, name) for name in keys + sums))
        .execution_options(synchronize_session=False)
    ).all()
    merged: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(sums))
    for row in taken:
        totals = merged[tuple(row[: len(keys)])]
        for n, value in enumerate(row[len(keys) :]):
            totals[n] += value
    keep = [
        {**dict(zip(keys, key, strict=True)), **dict(zip(sums, totals, strict=True))}
        for key, totals in merged.items()
        if any(totals)
    ]
    if keep:
        session.execute(insert(model), keep)
    return len(taken)


def compact_usage(session: Session, *, limit: int = 50_000) -> int:
    """The storage usage rollup's delta rows merged (`merge_deltas`)."""
    keys = ("day", "entity_type", "kind", "name", "format", "status")
    return merge_deltas(session, StorageUsage, keys, ("objects", "bytes"), limit=limit)


def bucket_stats(store: ObjectStore, *, now: datetime | None = None, prefixes=SCANNED_PREFIXES) -> dict:
    """The same figures from the bucket itself (a listing, page by page)."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    entities: dict[str, dict] = defaultdict(lambda: {"originals": _count(), "renditions": _count()})
    renditions: dict[str, dict] = defaultdict(lambda: defaultdict(_count))
    staging, other = _count(), _count()
    per_day = {d: _count() for d in _days(now)}
    for prefix in prefixes:
        for obj in store.list(prefix):
            info = parse_key(obj.key)
            if info is None:
                _add(other, 1, obj.size)
                continue
            if info["kind"] == "staging":
                _add(staging, 1, obj.size)
            elif info["kind"] == "original":
                _add(entities[info["entity_type"]]["originals"], 1, obj.size)
            else:
                _add(entities[info["entity_type"]]["renditions"], 1, obj.size)
                _add(renditions[info["name"]][info["format"]], 1, obj.size)
            if obj.last_modified and info["kind"] != "staging":
                day = obj.last_modified.astimezone(UTC).date().isoformat()
                if day in per_day:
                    _add(per_day[day], 1, obj.size)
    return _shape("bucket", entities, renditions, {"staging": staging, "outside_layout": other}, per_day, started)


def _shape(source: str, entities, renditions, extra, per_day, started: float) -> dict:
    total = _count()
    out_entities = {}
    for name in sorted(entities):
        e = entities[name]
        both = _count()
        for part in ("originals", "renditions"):
            _add(both, e[part]["objects"], e[part]["bytes"])
        _add(total, both["objects"], both["bytes"])
        out_entities[name] = {**e, **both}
    out: dict[str, Any] = {
        "source": source,
        "totals": total,
        "entities": out_entities,
        "renditions": {name: dict(sorted(fmts.items())) for name, fmts in sorted(renditions.items())},
        "added_per_day": [{"date": d, **c} for d, c in per_day.items()],
    }
    if extra:
        out.update(extra)
    out["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return out


def bucket_report(store: ObjectStore, database: dict) -> dict:
    """`source=bucket`: the bucket's figures, what only the database knows (statuses, the last
    scan), and how the two differ."""
    out = bucket_stats(store) | {
        "images_by_status": database["images_by_status"],
        "last_orphan_scan": database["last_orphan_scan"],
    }
    out["difference"] = difference(out, database)
    return out


def difference(bucket: dict, database: dict) -> dict:
    """bucket minus database, per entity and part, and in total (only what differs)."""
    diff: dict[str, dict] = {}
    for name in sorted(set(bucket["entities"]) | set(database["entities"])):
        for part in ("originals", "renditions"):
            b = bucket["entities"].get(name, {}).get(part, _count())
            d = database["entities"].get(name, {}).get(part, _count())
            delta = {"objects": b["objects"] - d["objects"], "bytes": b["bytes"] - d["bytes"]}
            if delta["objects"] or delta["bytes"]:
                diff.setdefault(name, {})[part] = delta
    return {
        "entities": diff,
        "totals": {k: bucket["totals"][k] - database["totals"][k] for k in ("objects", "bytes")},
        "note": "bucket minus database: positive figures are objects the database does not know of (orphans, "
        "staging leftovers, superseded renditions), negative ones are recorded objects the bucket lacks"
        " (run an orphan scan for the keys)",
    }


def last_scan(session: Session) -> dict | None:
    scan = session.scalars(
        select(StorageScan).where(StorageScan.status == ScanStatus.SUCCEEDED).order_by(StorageScan.finished_at.desc()).limit(1)
    ).first()
    if scan is None:
        return None
    counts = json.loads(scan.counts or "{}")
    return {
        "id": scan.id,
        "finished_at": iso(scan.finished_at),
        "dry_run": scan.dry_run,
        "orphans": counts.get("orphans", _count()),
        "missing": counts.get("missing", _count()),
    }
