"""Moving the platform's legacy photos (local disk, rows with status `legacy`) into the store.

A run records every image it takes as an item holding the row as it was (`before`), so that a
rollback restores it column by column. Items are queued page by page on the migration queue;
each task reads the local file (strictly inside the run's source folder), validates and renders
it like any upload, stores the original and the renditions under the standard keys, and marks the
image ready, keeping its legacy URL for the redirects. A file that fails is recorded with its
error code; the image stays `legacy`. Everything here is idempotent: a task that runs twice, a
run started again, a rollback repeated.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from db.models import (
    Image,
    ImageStatus,
    MigrationItem,
    MigrationItemStatus,
    MigrationRun,
    MigrationRunStatus,
    UtcDateTime,
)
from db.unit import after_commit
from pipeline.errors import ImageError
from services.entities import entity_types
from services.images.process import record, render_and_store
from services.infra import audit
from services.infra.queue import TaskQueue
from services.infra.settings import Settings
from storage import ObjectNotFound, ObjectStore, StorageError

# The columns a migration changes; a rollback puts each back (renditions rows are removed).
SNAPSHOT_COLUMNS = [c.name for c in Image.__table__.columns if c.name != "id"]
_DATETIMES = {c.name for c in Image.__table__.columns if isinstance(c.type, UtcDateTime)}


class LegacyFileError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# --- paths -----------------------------------------------------------------------------------------


def legacy_path(source_dir: Path, url: str | None, prefix: str) -> Path:
    """The local file behind a legacy URL (`/uploads/properties/17/a.jpg` -> SOURCE/properties/17/a.jpg),
    resolved strictly inside `source_dir` (no `..`, no link leading out)."""
    if not url or not url.startswith(prefix):
        raise LegacyFileError("not_a_legacy_url", f"the legacy URL {url!r} does not start with {prefix!r}")
    relative = unquote(url[len(prefix) :].split("?", 1)[0]).lstrip("/")
    if "\x00" in relative:
        raise LegacyFileError("path_outside_source", f"{url!r} does not name a file inside the source folder")
    root = source_dir.resolve()
    path = (root / relative).resolve()
    if not relative or root not in path.parents:
        raise LegacyFileError("path_outside_source", f"{url!r} does not name a file inside the source folder")
    return path


# --- runs ------------------------------------------------------------------------------------------


def _snapshot(image: Image) -> str:
    out = {}
    for name in SNAPSHOT_COLUMNS:
        value = getattr(image, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return json.dumps(out)


def _in_scope(entity_type: str | None, *columns):
    query = select(*(columns or (Image.id,))).where(Image.legacy_table.is_not(None))
    return query.where(Image.entity_type == entity_type) if entity_type else query


def start_run(session: Session, source_dir: Path, entity_type: str | None) -> MigrationRun:
    already = session.scalar(
        select(func.count()).select_from(
            _in_scope(entity_type).where(Image.status.not_in((ImageStatus.LEGACY, ImageStatus.DELETING))).subquery()
        )
    )
    run = MigrationRun(
        source_dir=str(source_dir.resolve()), entity_type=entity_type, status=MigrationRunStatus.ENQUEUED, skipped=already or 0
    )
    session.add(run)
    session.flush()
    return run


def previously_failed(session: Session, entity_type: str | None) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(
                _legacy(entity_type, retry_failed=True)
                .where(exists().where(MigrationItem.image_id == Image.id, MigrationItem.status == MigrationItemStatus.FAILED))
                .subquery()
            )
        )
        or 0
    )


def _legacy(entity_type: str | None, *columns, retry_failed: bool):
    query = _in_scope(entity_type, *columns).where(Image.status == ImageStatus.LEGACY)
    if not retry_failed:  # a file that failed before waits for --retry-failed
        query = query.where(
            ~exists().where(MigrationItem.image_id == Image.id, MigrationItem.status == MigrationItemStatus.FAILED)
        )
    return query


def enqueue_page(
    session: Session, queue: TaskQueue, run: MigrationRun, *, after_id: int, batch_size: int, retry_failed: bool
) -> int | None:
    """Take the next page of legacy images into the run (items with their snapshot) and queue them
    once committed. The last id of the page, or None when there is nothing left: the caller commits
    page by page, so memory stays flat whatever the number of rows."""
    ids = session.scalars(
        _legacy(run.entity_type, retry_failed=retry_failed).where(Image.id > after_id).order_by(Image.id).limit(batch_size)
    ).all()
    if not ids:
        return None
    for image in session.scalars(select(Image).where(Image.id.in_(ids))):
        session.add(
            MigrationItem(
                run_id=run.id,
                image_id=image.id,
                status=MigrationItemStatus.QUEUED,
                entity_type=image.entity_type,
                before=_snapshot(image),
            )
        )
    session.flush()
    after_commit(session, partial(queue.migrate_images, run.id, list(ids)))
    return ids[-1]


def plan(
    session: Session, source_dir: Path, settings: Settings, entity_type: str | None, retry_failed: bool, page: int = 1000
) -> dict:
    """--dry-run: what a run would take, and which files are missing, without writing anything."""
    counts: Counter = Counter()
    missing: list[str] = []
    last = 0
    while True:
        rows = session.execute(
            _legacy(entity_type, Image.id, Image.entity_type, Image.url, retry_failed=retry_failed)
            .where(Image.id > last)
            .order_by(Image.id)
            .limit(page)
        ).all()
        if not rows:
            break
        for image_id, kind, url in rows:
            counts[kind] += 1
            try:
                if not legacy_path(source_dir, url, settings.legacy_url_prefix).is_file():
                    missing.append(url)
            except LegacyFileError:
                missing.append(url or f"image {image_id}")
        last = rows[-1][0]
    return {
        "would_migrate": dict(counts),
        "total": sum(counts.values()),
        "missing_files": missing[:1000],
        "missing": len(missing),
    }


# --- one image -------------------------------------------------------------------------------------


def migrate_one(session: Session, store: ObjectStore, settings: Settings, run_id: str, image_id: int) -> MigrationItemStatus:
    item = session.scalars(
        select(MigrationItem).where(MigrationItem.run_id == run_id, MigrationItem.image_id == image_id).with_for_update()
    ).first()
    if item is None or item.status != MigrationItemStatus.QUEUED:
        return MigrationItemStatus.SKIPPED  # done, failed or rolled back already: a redelivery
    image = session.get(Image, image_id)
    run = session.get_one(MigrationRun, run_id)
    if image is None or image.status != ImageStatus.LEGACY:
        return _finish(item, MigrationItemStatus.SKIPPED)
    try:
        path = legacy_path(Path(run.source_dir), image.url, settings.legacy_url_prefix)
        item.source_path = str(path.relative_to(Path(run.source_dir)))
        data = _read(path, settings.limits.max_upload_bytes)
    except LegacyFileError as exc:
        return _finish(item, MigrationItemStatus.FAILED, exc.code, exc.message)
    item.source_bytes, item.source_sha256 = len(data), hashlib.sha256(data).hexdigest()
    try:
        stored = render_and_store(store, settings, image, data)
    except ImageError as exc:
        return _finish(item, MigrationItemStatus.FAILED, exc.code, exc.message)
    if not image.original_filename:
        image.original_filename = path.name[:255]
    record(image, store, stored)
    item.bytes_written = stored.bytes_written
    return _finish(item, MigrationItemStatus.DONE)


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise LegacyFileError("source_missing", "the legacy file is not in the source folder") from None
    if size == 0:
        raise LegacyFileError("empty_file", "the legacy file is empty (0 bytes)")
    if size > max_bytes:
        raise LegacyFileError("file_too_large", f"the legacy file is {size} bytes; the limit is {max_bytes}")
    return path.read_bytes()


def _finish(
    item: MigrationItem, status: MigrationItemStatus, code: str | None = None, message: str | None = None
) -> MigrationItemStatus:
    item.status, item.error_code, item.error_message = status, code, (message or "")[:2000] or None
    item.finished_at = datetime.now(UTC)
    return status


def fail_item(session: Session, run_id: str, image_id: int, code: str, message: str) -> None:
    """Retries spent on a transient error: the file is failed (a later run with --retry-failed
    tries it again); the image stays legacy."""
    item = session.get(MigrationItem, (run_id, image_id))
    if item is not None and item.status == MigrationItemStatus.QUEUED:
        _finish(item, MigrationItemStatus.FAILED, code, message)


# --- progress and report -----------------------------------------------------------------------


def latest_run(session: Session) -> MigrationRun | None:
    return session.scalars(select(MigrationRun).order_by(MigrationRun.created_at.desc()).limit(1)).first()


def progress(session: Session, run_id: str) -> dict:
    counts = dict(
        session.execute(
            select(MigrationItem.status, func.count()).where(MigrationItem.run_id == run_id).group_by(MigrationItem.status)
        ).all()
    )
    total = sum(counts.values())
    done, failed, skipped = (
        counts.get(s, 0) for s in (MigrationItemStatus.DONE, MigrationItemStatus.FAILED, MigrationItemStatus.SKIPPED)
    )
    first, last = session.execute(
        select(func.min(MigrationItem.finished_at), func.max(MigrationItem.finished_at)).where(MigrationItem.run_id == run_id)
    ).one()
    run = session.get(MigrationRun, run_id)
    elapsed = ((last or datetime.now(UTC)) - (run.created_at if run else first or datetime.now(UTC))).total_seconds()
    finished = done + failed + skipped
    rate = finished / elapsed if elapsed > 0 and finished else 0.0
    remaining = total - finished - counts.get(MigrationItemStatus.ROLLED_BACK, 0)
    return {
        "run": run_id,
        "total": total,
        "done": done,
        "failed": failed,
        "skipped": skipped,
        "already_migrated": run.skipped if run else 0,
        "queued": counts.get(MigrationItemStatus.QUEUED, 0),
        "rolled_back": counts.get(MigrationItemStatus.ROLLED_BACK, 0),
        "images_per_s": round(rate, 2),
        "eta_s": round(remaining / rate) if rate and remaining else (0 if not remaining else None),
    }


def report(session: Session, run_id: str) -> dict:
    run = session.get_one(MigrationRun, run_id)
    out = {
        **progress(session, run_id),
        "source_dir": run.source_dir,
        "entity_type": run.entity_type,
        "started_at": run.created_at.isoformat(),
    }
    failed: dict[str, list[str]] = defaultdict(list)
    per_entity: dict[str, Counter] = defaultdict(Counter)
    read = written = 0
    last = None
    query = select(
        MigrationItem.entity_type,
        MigrationItem.status,
        MigrationItem.error_code,
        MigrationItem.source_path,
        MigrationItem.source_bytes,
        MigrationItem.bytes_written,
        MigrationItem.finished_at,
        MigrationItem.image_id,
    ).where(MigrationItem.run_id == run_id)
    for kind, status, code, path, source_bytes, bytes_written, finished_at, image_id in session.execute(
        query.execution_options(yield_per=1000)
    ):
        per_entity[kind][status] += 1
        read += source_bytes or 0
        written += bytes_written or 0
        if status == MigrationItemStatus.FAILED:
            failed[code or "unknown"].append(path or f"image {image_id}")
        if finished_at and (last is None or finished_at > last):
            last = finished_at
    out.update(
        failed_by_code={code: {"count": len(files), "files": files[:100]} for code, files in sorted(failed.items())},
        bytes_read=read,
        bytes_written=written,
        duration_s=round(((last or run.created_at) - run.created_at).total_seconds(), 1),
        per_entity={kind: dict(c) for kind, c in sorted(per_entity.items())},
    )
    return out


# --- verification -------------------------------------------------------------------------------


def verify(session: Session, store: ObjectStore, settings: Settings, run_id: str | None = None) -> dict:
    """Every image the run (default: every run) migrated has its original and renditions in the
    store with the recorded sizes; the original read back hashes to the local file's SHA-256
    (recorded at migration, and the file as it is now); legacy files and rows are compared per
    entity, in the run's source folder (default: the latest run's)."""
    run = session.get(MigrationRun, run_id) if run_id else latest_run(session)
    if run is None:
        return {"run": run_id, "checked": 0, "ok": True, "problems": []}
    problems: list[dict] = []
    checked = 0
    query = (
        select(MigrationItem, MigrationRun.source_dir)
        .join(MigrationRun, MigrationRun.id == MigrationItem.run_id)
        .where(MigrationItem.status == MigrationItemStatus.DONE)
        .execution_options(yield_per=500)
    )
    if run_id:
        query = query.where(MigrationItem.run_id == run_id)
    for item, source_dir in session.execute(query):
        source = Path(source_dir)
        checked += 1
        image = session.get(Image, item.image_id)
        where = {"image_id": item.image_id, "file": item.source_path}
        if image is None or image.status != ImageStatus.READY:
            problems.append({**where, "problem": "image_not_ready", "status": image.status if image else None})
            continue
        expected = [(image.s3_key, image.file_size)] + [(r.key, r.bytes) for r in image.renditions]
        if len(image.renditions) < 6:
            problems.append({**where, "problem": "renditions_missing", "renditions": len(image.renditions)})
        for key, size in expected:
            if key is None:
                problems.append({**where, "problem": "object_missing", "key": None})
                continue
            try:
                info = store.head(key)
            except ObjectNotFound:
                problems.append({**where, "problem": "object_missing", "key": key})
                continue
            if size is not None and info.size != size:
                problems.append({**where, "problem": "size_differs", "key": key, "recorded": size, "stored": info.size})
        try:
            stored_sha = hashlib.sha256(store.get(image.s3_key or "")).hexdigest()
        except (ObjectNotFound, StorageError):
            continue  # reported above
        if stored_sha != item.source_sha256:
            problems.append({**where, "problem": "checksum_differs", "key": image.s3_key})
        local = source / (item.source_path or "")
        if not local.is_file():
            problems.append({**where, "problem": "local_file_gone"})
        elif hashlib.sha256(local.read_bytes()).hexdigest() != item.source_sha256:
            problems.append({**where, "problem": "local_file_changed"})
    problems += _files_against_rows(session, Path(run.source_dir), settings, run.entity_type if run_id else None)
    return {"run": run_id or "all", "checked": checked, "ok": not problems, "problems": problems}


def _files_against_rows(session: Session, source: Path, settings: Settings, entity_type: str | None) -> list[dict]:
    """Legacy files with no legacy row, and legacy rows whose file is missing, per entity type."""
    known: set[str] = set()
    problems = []
    query = select(Image.id, Image.entity_type, Image.url, Image.status).where(Image.legacy_table.is_not(None))
    if entity_type:
        query = query.where(Image.entity_type == entity_type)
    for image_id, kind, url, status in session.execute(query.execution_options(yield_per=1000)):
        try:
            path = legacy_path(source, url, settings.legacy_url_prefix)
        except LegacyFileError:
            continue
        known.add(str(path))
        if not path.is_file() and status != ImageStatus.DELETING:
            problems.append({"image_id": image_id, "entity_type": kind, "problem": "row_without_file", "url": url})
    for kind in [entity_type] if entity_type else entity_types():
        folder = source / kind
        if not folder.is_dir():
            continue
        root = source.resolve()
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                found = Path(dirpath, name)
                path = found.resolve()
                if not path.is_relative_to(root):  # a link leading out of the source folder
                    problems.append({"entity_type": kind, "problem": "link_outside_source",
                                     "file": str(found.relative_to(source)), "target": str(path)})  # fmt: skip
                elif str(path) not in known:
                    problems.append({"entity_type": kind, "problem": "file_without_row", "file": str(path.relative_to(root))})
    return problems


# --- rollback and redirects -----------------------------------------------------------------------


def rollback(
    session: Session, store: ObjectStore, run_id: str, *, delete_objects: bool, actor: audit.Actor | None = None
) -> dict:
    """Put every image the run migrated back as it was (from its snapshot); idempotent. Objects stay
    in the bucket as a backup unless `delete_objects`. `actor`: who, for the audit trail."""
    restored, keys = 0, []
    items = session.scalars(
        select(MigrationItem).where(MigrationItem.run_id == run_id, MigrationItem.status == MigrationItemStatus.DONE)
    )
    for item in items:
        image = session.get(Image, item.image_id)
        if image is None:
            continue
        keys += [k for k in [image.s3_key, *(r.key for r in image.renditions)] if k]
        for rendition in list(image.renditions):
            session.delete(rendition)
        before = json.loads(item.before)
        for name in SNAPSHOT_COLUMNS:
            value = before.get(name)
            setattr(image, name, datetime.fromisoformat(value) if value and name in _DATETIMES else value)
        item.status = MigrationItemStatus.ROLLED_BACK
        restored += 1
    run = session.get_one(MigrationRun, run_id)
    run.status, run.rolled_back_at = MigrationRunStatus.ROLLED_BACK, datetime.now(UTC)
    session.flush()
    if delete_objects and keys:
        after_commit(session, lambda: store.delete_many(keys))
    if actor is not None:
        audit.record(
            session,
            actor,
            audit.Action.MIGRATION_ROLLBACK,
            detail={"run": run_id, "restored": restored, "objects_deleted": len(keys) if delete_objects else 0},
        )
    return {"run": run_id, "restored": restored, "objects_deleted": len(keys) if delete_objects else 0}
