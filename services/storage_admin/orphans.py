"""Orphan reconciliation, both ways (`imagepipe orphans`, `POST /api/v1/admin/storage/cleanup-orphaned`).

A scan lists the bucket page by page and stores each page (key, size, last modified) in
`storage_scan_objects`; the process never holds more than one page, whatever the bucket's size.
The comparison is then two anti-joins in the database, streamed:

- **orphans**: listed objects no row refers to (no image's original, no rendition row, no live
  staging upload), older than the grace period (ORPHAN_GRACE_S, a day by default: an upload in
  flight or a worker between writing and recording is never touched). Deleted unless a dry run,
  after checking once more, just before the delete, that no row has meanwhile started to refer
  to them.
- **missing**: ready images whose original or rendition rows name a key the listing does not
  have (confirmed with a HEAD, so an object written during the listing is not reported). A
  missing original marks the image `missing`; a missing rendition whose original exists is
  rendered again (services/images/renditions.py, on the maintenance queue). A dry run changes nothing.

Every finding and what was done goes to the report, a JSON-lines object under `reports/`
(complete); the scan row keeps the counts and the first keys of each finding.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus, Rendition, ScanStatus, StorageScan, StorageScanObject, Upload
from db.unit import Units, after_commit
from services.images.keys import SCANNED_PREFIXES, entity_prefixes, parse_key, scan_report_key
from services.images.lifecycle import mark_missing
from services.images.serialisers import iso
from services.infra import audit
from services.infra.queue import QueueUnavailable, TaskQueue
from storage import ObjectStore

log = logging.getLogger(__name__)

PAGE = 1000  # keys stored per round trip (S3 lists at most 1000 per page)
SAMPLE = 100  # keys of each finding kept on the scan row (the report has them all)
DELETE_BATCH = 1000


def create_scan(
    session: Session,
    *,
    dry_run: bool,
    grace_s: int,
    requested_by: str,
    entity: tuple[str, int] | None = None,
    actor: audit.Actor | None = None,
) -> StorageScan:
    """A queued scan; one that deletes is audited (`actor`)."""
    scan = StorageScan(
        dry_run=dry_run,
        grace_s=grace_s,
        requested_by=requested_by,
        status=ScanStatus.QUEUED,
        entity_type=entity[0] if entity else None,
        entity_id=entity[1] if entity else None,
    )
    session.add(scan)
    session.flush()
    if not dry_run and actor is not None:
        audit.record(session, actor, audit.Action.ORPHANS_DELETE, entity=entity, detail={"scan": scan.id, "grace_s": grace_s})
    return scan


QUEUE_REFUSED = "the task queue did not take the scan"


def start_scan(session: Session, queue: TaskQueue, scan: StorageScan) -> None:
    """Queue the scan once it is committed. If the broker refuses it, the scan is recorded as
    failed (committed as well) instead of waiting `queued` for ever; the caller sees the status."""
    scan_id = scan.id

    def send() -> None:
        try:
            queue.scan_orphans(scan_id)
        except QueueUnavailable as exc:
            log.error("orphan scan %s not queued: %s", scan_id, exc)
            session.execute(
                update(StorageScan)
                .where(StorageScan.id == scan_id)
                .values(status=ScanStatus.FAILED, error=QUEUE_REFUSED, finished_at=datetime.now(UTC))
            )

    after_commit(session, send)


def _referenced(key, now: datetime):
    """A SQL condition: some row refers to `key` (a column or a bound value)."""
    return (
        exists().where(Image.s3_key == key)
        | exists().where(Rendition.key == key)
        | exists().where(Image.staging_key == key, Image.status.in_((ImageStatus.PENDING, ImageStatus.PROCESSING)))
        | exists().where(Upload.staging_key == key, Upload.completed_at.is_(None), Upload.expires_at > now)
    )


class _Report:
    """Findings as JSON lines in a temporary file (uploaded at the end), plus the samples."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        self.samples: dict[str, list] = {}

    def add(self, finding: str, **fields) -> None:
        fields = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
        self.file.write(json.dumps({"finding": finding, **fields}).encode() + b"\n")
        bucket = self.samples.setdefault(finding, [])
        if len(bucket) < SAMPLE:
            bucket.append(fields)


def run_scan(
    units: Units,
    store: ObjectStore,
    queue: TaskQueue,
    scan_id: str,
    *,
    now: datetime | None = None,
    on_page: Callable[[int], None] | None = None,
) -> StorageScan | None:
    """Run (or, after a crash, run again) one scan. Returns the finished scan row (detached)."""
    now = now or datetime.now(UTC)
    with units() as session:
        scan = session.get(StorageScan, scan_id, with_for_update=True)
        if scan is None or scan.status in (ScanStatus.SUCCEEDED, ScanStatus.FAILED):
            return scan
        scan.status, scan.started_at = ScanStatus.RUNNING, now
        scan.objects_listed = scan.bytes_listed = 0
        session.execute(delete(StorageScanObject).where(StorageScanObject.scan_id == scan_id))
        scan.expected_objects = _expected(session, scan)
        scope = (scan.entity_type, scan.entity_id) if scan.entity_type else None
        dry_run, grace_s = scan.dry_run, scan.grace_s
    try:
        listed = _list_into_database(units, store, scan_id, scope, on_page)
        with units() as session:
            counts, report = _compare(session, store, queue, scan_id, scope, now=now, grace_s=grace_s, dry_run=dry_run)
            counts["listed"] = listed
            report.file.seek(0)
            key = scan_report_key(scan_id)
            store.put(key, report.file, content_type="application/x-ndjson", cache_control="private, no-store")
            report.file.close()
            scan = session.get_one(StorageScan, scan_id)
            scan.counts, scan.samples, scan.report_key = json.dumps(counts), json.dumps(report.samples), key
            scan.status, scan.finished_at = ScanStatus.SUCCEEDED, datetime.now(UTC)
            session.execute(delete(StorageScanObject).where(StorageScanObject.scan_id == scan_id))
        log.info("orphan scan %s: %s", scan_id, counts, extra={"scan": counts})
    except Exception as exc:
        with units() as session:
            session.execute(delete(StorageScanObject).where(StorageScanObject.scan_id == scan_id))
            session.execute(
                update(StorageScan)
                .where(StorageScan.id == scan_id)
                .values(status=ScanStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=datetime.now(UTC))
            )
        raise
    with units() as session:
        scan = session.get(StorageScan, scan_id)
        session.expunge(scan)
        return scan


def _in_scope(scope):
    if scope is None:
        return True
    return and_(Image.entity_type == scope[0], Image.entity_id == scope[1])


def _expected(session: Session, scan: StorageScan) -> int:
    """How many objects the database knows of in the scan's scope (for the progress bar)."""
    scope = (scan.entity_type, scan.entity_id) if scan.entity_type else None
    images = session.scalar(select(func.count()).select_from(Image).where(Image.s3_key.is_not(None), _in_scope(scope)))
    renditions = session.scalar(select(func.count()).select_from(Rendition).join(Image).where(_in_scope(scope)))
    return int(images or 0) + int(renditions or 0)


def _list_into_database(units: Units, store: ObjectStore, scan_id: str, scope, on_page) -> dict:
    prefixes = entity_prefixes(*scope) if scope else SCANNED_PREFIXES
    total = {"objects": 0, "bytes": 0}

    def pages() -> Iterator[list]:
        page = []
        for prefix in prefixes:
            for obj in store.list(prefix):
                page.append({"scan_id": scan_id, "key": obj.key, "size": obj.size, "last_modified": obj.last_modified})
                if len(page) == PAGE:
                    yield page
                    page = []
        if page:
            yield page

    for page in pages():
        total["objects"] += len(page)
        total["bytes"] += sum(o["size"] for o in page)
        with units() as session:
            session.execute(insert(StorageScanObject), page)
            session.execute(
                update(StorageScan)
                .where(StorageScan.id == scan_id)
                .values(objects_listed=total["objects"], bytes_listed=total["bytes"])
            )
        if on_page:
            on_page(total["objects"])
    return total


def _stream(session: Session, query):
    return session.execute(query.execution_options(stream_results=True, yield_per=PAGE))


def _compare(
    session: Session, store: ObjectStore, queue: TaskQueue, scan_id: str, scope, *, now: datetime, grace_s: int, dry_run: bool
) -> tuple[dict, _Report]:
    report = _Report()
    cutoff = now - timedelta(seconds=grace_s)
    o = StorageScanObject
    counts: dict = {
        "dry_run": dry_run,
        "grace_s": grace_s,
        "orphans": {"objects": 0, "bytes": 0},
        "orphans_by_kind": {},
        "young_unreferenced": {"objects": 0, "bytes": 0},
        "deleted": {"objects": 0, "bytes": 0},
        "delete_errors": 0,
        "referenced_meanwhile": 0,
        "missing": {"originals": 0, "renditions": 0},
        "marked_missing": 0,
        "rerender_queued": 0,
    }

    young = session.execute(
        select(func.count(), func.sum(o.size)).where(
            o.scan_id == scan_id, ~_referenced(o.key, now), (o.last_modified.is_(None)) | (o.last_modified >= cutoff)
        )
    ).one()
    counts["young_unreferenced"] = {"objects": int(young[0] or 0), "bytes": int(young[1] or 0)}

    # -- objects no row refers to --------------------------------------------------------------
    batch: list[tuple[str, int, datetime | None]] = []

    def flush() -> None:
        keys = [k for k, _, _ in batch]
        # Once more, just before deleting: a row may have started to refer to one meanwhile.
        still = set(session.scalars(select(o.key).where(o.scan_id == scan_id, o.key.in_(keys), _referenced(o.key, now))))
        doomed = [(k, s, m) for k, s, m in batch if k not in still]
        counts["referenced_meanwhile"] += len(still)
        errors: dict[str, str] = {}
        if not dry_run and doomed:
            errors = store.delete_many([k for k, _, _ in doomed]).errors
        for key, size, modified in doomed:
            kind = (parse_key(key) or {"kind": "outside_layout"})["kind"]
            _bump(counts["orphans"], size)
            _bump(counts["orphans_by_kind"].setdefault(kind, {"objects": 0, "bytes": 0}), size)
            if dry_run:
                action = "none (dry run)"
            elif key in errors:
                action, counts["delete_errors"] = f"delete failed: {errors[key]}", counts["delete_errors"] + 1
            else:
                action = "deleted"
                _bump(counts["deleted"], size)
            report.add("orphan", key=key, kind=kind, bytes=size, last_modified=modified, action=action)
        batch.clear()

    orphans = (
        select(o.key, o.size, o.last_modified)
        .where(o.scan_id == scan_id, o.last_modified < cutoff, ~_referenced(o.key, now))
        .order_by(o.key)
    )
    for key, size, modified in _stream(session, orphans):
        batch.append((key, size, modified))
        if len(batch) == DELETE_BATCH:
            flush()
    if batch:
        flush()

    # -- rows whose objects are missing ------------------------------------------------------
    listed = exists().where(o.scan_id == scan_id, o.key == Image.s3_key)
    originals = (
        select(Image.id, Image.s3_key)
        .where(Image.status == ImageStatus.READY, Image.s3_key.is_not(None), Image.updated_at < now, _in_scope(scope), ~listed)
        .order_by(Image.id)
    )
    lost: list[int] = []
    for image_id, key in _stream(session, originals):
        if store.exists(key):  # written after the listing passed it
            continue
        counts["missing"]["originals"] += 1
        lost.append(image_id)
        report.add("missing_original", image_id=image_id, key=key, action="none (dry run)" if dry_run else "image marked missing")
        if len(lost) == DELETE_BATCH:
            counts["marked_missing"] += _mark_missing(session, lost, dry_run)
    counts["marked_missing"] += _mark_missing(session, lost, dry_run)

    rendition_listed = exists().where(o.scan_id == scan_id, o.key == Rendition.key)
    renditions = (
        select(Rendition.image_id, Rendition.key)
        .join(Image)
        .where(Image.status == ImageStatus.READY, Image.updated_at < now, _in_scope(scope), ~rendition_listed)
        .order_by(Rendition.image_id)
    )
    pending: list[int] = []
    last_image = None
    for image_id, key in _stream(session, renditions):
        if store.exists(key):
            continue
        counts["missing"]["renditions"] += 1
        report.add(
            "missing_rendition", image_id=image_id, key=key, action="none (dry run)" if dry_run else "rendered again (queued)"
        )
        if image_id != last_image:
            pending.append(image_id)
            last_image = image_id
        if len(pending) >= DELETE_BATCH:
            counts["rerender_queued"] += _rerender(queue, pending, dry_run)
    counts["rerender_queued"] += _rerender(queue, pending, dry_run)
    return counts, report


def _bump(target: dict, size: int) -> None:
    target["objects"] += 1
    target["bytes"] += int(size or 0)


def _mark_missing(session: Session, image_ids: list[int], dry_run: bool) -> int:
    done = 0 if dry_run else mark_missing(session, image_ids)
    image_ids.clear()
    return done


def _rerender(queue: TaskQueue, image_ids: list[int], dry_run: bool) -> int:
    """Enqueued at once (not after the commit): rendering a missing rendition depends on nothing
    this scan writes."""
    n = 0 if dry_run else len(image_ids)
    if n:
        queue.regenerate_renditions(list(image_ids))
    image_ids.clear()
    return n


def scan_json(scan: StorageScan) -> dict:
    return {
        "id": scan.id,
        "status": scan.status,
        "dry_run": scan.dry_run,
        "scope": {"entity_type": scan.entity_type, "entity_id": scan.entity_id} if scan.entity_type else None,
        "grace_s": scan.grace_s,
        "requested_by": scan.requested_by,
        "created_at": iso(scan.created_at),
        "started_at": iso(scan.started_at),
        "finished_at": iso(scan.finished_at),
        "progress": {
            "objects_listed": scan.objects_listed or 0,
            "bytes_listed": scan.bytes_listed or 0,
            "expected_objects": scan.expected_objects,
        },
        "counts": json.loads(scan.counts) if scan.counts else None,
        "samples": json.loads(scan.samples) if scan.samples else None,
        "samples_capped_at": SAMPLE,
        "report_key": scan.report_key,
        "error": scan.error,
    }
