"""Sweeps: what makes the system converge after a crash at any step boundary.

Every write to the store happens before the database commit that records it, and every message
after it (db/unit.py); so a process that dies between two steps leaves one of these, and the
sweep puts each right:

| left behind | by a crash | the sweep |
|---|---|---|
| a staging object without a row | after the staging put, before the commit | deleted once older than the grace period |
| a pending image nobody queued | after the commit, before the enqueue | enqueued again |
| an image `processing` past twice the hard time limit | a worker lost with its retries | enqueued again (idempotent) |
| a staging object of a finished image | after the commit, before the staging delete | deleted |
| an image `deleting` with objects left | mid-delete, retries spent | its purge enqueued again |

`imagepipe sweep` runs it (from cron, or Celery beat); it is safe to run at any time and twice.
Objects under `public/` or `originals/` without a row (a crash after rendition uploads of an
image deleted meanwhile) are the orphan scan's concern (storage administration).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus, Upload
from db.unit import after_commit
from storage import ObjectStore

from .keys import STAGING_PREFIX
from .queue import TaskQueue

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    requeued: list[int] = field(default_factory=list)
    purges: list[int] = field(default_factory=list)
    staging_deleted: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"requeued": len(self.requeued), "purges": len(self.purges),
                "staging_deleted": len(self.staging_deleted)}


def sweep(session: Session, store: ObjectStore, queue: TaskQueue, *, grace_s: float, processing_limit_s: float,
          now: datetime | None = None) -> SweepReport:
    """`grace_s`: how old a state must be before it counts as abandoned (longer than a request or
    a queue wait); `processing_limit_s`: past this an image still `processing` has lost its worker."""
    now = now or datetime.now(UTC)
    report = SweepReport()
    pending_before, processing_before = now - timedelta(seconds=grace_s), now - timedelta(seconds=processing_limit_s)
    stale = session.scalars(select(Image.id).where(
        ((Image.status == ImageStatus.PENDING) & (Image.updated_at < pending_before))
        | ((Image.status == ImageStatus.PROCESSING) & (Image.updated_at < processing_before)))).all()
    report.requeued = list(stale)
    report.purges = list(session.scalars(select(Image.id).where(
        Image.status == ImageStatus.DELETING, Image.updated_at < pending_before)).all())

    live = set(session.scalars(select(Image.staging_key).where(
        Image.staging_key.is_not(None), Image.status.in_((ImageStatus.PENDING, ImageStatus.PROCESSING)))).all())
    live |= set(session.scalars(select(Upload.staging_key).where(
        Upload.completed_at.is_(None), Upload.expires_at > now)).all())
    for obj in store.list(STAGING_PREFIX):
        if obj.key in live:
            continue
        modified = obj.last_modified or now
        if modified < pending_before:
            report.staging_deleted.append(obj.key)

    def act() -> None:
        if report.staging_deleted:
            store.delete_many(report.staging_deleted)
        if report.requeued:
            queue.process_images(report.requeued)
        for image_id in report.purges:
            queue.delete_image(image_id)
        log.info("sweep: %s", report.as_dict(), extra={"sweep": report.as_dict()})

    after_commit(session, act)
    return report
