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

| a direct upload never completed | the browser gave up | its row and staged object removed once expired |

One sweep is housekeeping rather than repair: the storage usage rollup's delta rows are merged
(services/storage_admin/stats.py `compact_usage`), so the statistics keep reading a small table.

Each sweep is its own task, run by Celery beat every SWEEP_INTERVAL_S (workers/tasks.py), and
`imagepipe sweep` runs them all. Two sweeps may run at once (two beat processes, a manual run
during a scheduled one): each claims its rows with a **conditional update** (`UPDATE ... WHERE`
the row is still in the state that made it a candidate, `RETURNING` the ids it changed), so each
image is re-queued, purged or failed by exactly one of them; deleting an object twice is harmless.
An image re-queued SWEEP_MAX_REQUEUES times without finishing is failed (`processing_timeout`):
a file that kills every worker it meets must not circulate for ever.
Objects under `public/` or `originals/` without a row are the orphan scan's concern
(services/storage_admin/orphans.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from db.models import UNFINISHED, Image, ImageStatus, Upload
from db.unit import after_commit
from services.delivery.usage import compact_egress
from services.images.keys import STAGING_PREFIX
from services.images.lifecycle import fail_unfinished
from services.infra.queue import TaskQueue
from services.storage_admin.stats import compact_usage
from storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    purges: list[int] = field(default_factory=list)
    uploads_expired: list[str] = field(default_factory=list)
    staging_deleted: list[str] = field(default_factory=list)
    usage_rows_merged: int = 0

    def as_dict(self) -> dict:
        return {
            "requeued": len(self.requeued),
            "failed": len(self.failed),
            "purges": len(self.purges),
            "uploads_expired": len(self.uploads_expired),
            "staging_deleted": len(self.staging_deleted),
            "usage_rows_merged": self.usage_rows_merged,
        }


def requeue_stuck(
    session: Session,
    queue: TaskQueue,
    *,
    grace_s: float,
    processing_limit_s: float,
    max_requeues: int,
    now: datetime,
    report: SweepReport,
) -> None:
    """Pending images nobody queued (older than `grace_s`) and images `processing` past
    `processing_limit_s` (their worker is gone): re-queued, or failed once re-queued
    `max_requeues` times."""
    stuck = ((Image.status == ImageStatus.PENDING) & (Image.updated_at < now - timedelta(seconds=grace_s))) | (
        (Image.status == ImageStatus.PROCESSING) & (Image.updated_at < now - timedelta(seconds=processing_limit_s))
    )
    candidates = session.execute(select(Image.id, Image.requeues).where(stuck)).all()
    spent = [i for i, n in candidates if (n or 0) >= max_requeues]
    again = [i for i, n in candidates if (n or 0) < max_requeues]
    if again:
        report.requeued = sorted(
            session.scalars(
                update(Image)
                .where(Image.id.in_(again), stuck)
                .values(status=ImageStatus.PENDING, requeues=Image.requeues + 1, updated_at=now)
                .returning(Image.id)
                .execution_options(synchronize_session=False)
            )
        )
    for image_id in spent:
        # mark_failed is itself conditional (still unfinished): one sweep fails it, once.
        if session.scalar(select(Image.id).where(Image.id == image_id, stuck, Image.status.in_(UNFINISHED))) and fail_unfinished(
            session, queue, image_id, "processing_timeout"
        ):
            report.failed.append(image_id)
    if report.requeued:
        ids = list(report.requeued)
        after_commit(session, lambda: queue.process_images(ids))


def retry_deleting(session: Session, queue: TaskQueue, *, grace_s: float, now: datetime, report: SweepReport) -> None:
    """Images left `deleting` (the delete task gave up, or died): their purge queued again."""
    stale = (Image.status == ImageStatus.DELETING) & (Image.updated_at < now - timedelta(seconds=grace_s))
    report.purges = sorted(
        session.scalars(
            update(Image).where(stale).values(updated_at=now).returning(Image.id).execution_options(synchronize_session=False)
        )
    )
    if report.purges:
        ids = list(report.purges)

        def purge() -> None:
            for image_id in ids:
                queue.delete_image(image_id)

        after_commit(session, purge)


def expire_uploads(session: Session, store: ObjectStore, *, grace_s: float, now: datetime, report: SweepReport) -> None:
    """Direct uploads never completed, expired for longer than `grace_s`: row and staged object."""
    report.uploads_expired = sorted(
        session.scalars(
            delete(Upload)
            .where(Upload.completed_at.is_(None), Upload.expires_at < now - timedelta(seconds=grace_s))
            .returning(Upload.staging_key)
            .execution_options(synchronize_session=False)
        )
    )
    if report.uploads_expired:
        keys = list(report.uploads_expired)
        after_commit(session, lambda: store.delete_many(keys))


def clean_staging(session: Session, store: ObjectStore, *, grace_s: float, now: datetime, report: SweepReport) -> None:
    """Staging objects no live image or upload refers to, older than `grace_s`."""
    before = now - timedelta(seconds=grace_s)
    live = set(
        session.scalars(select(Image.staging_key).where(Image.staging_key.is_not(None), Image.status.in_(UNFINISHED))).all()
    )
    live |= set(session.scalars(select(Upload.staging_key).where(Upload.completed_at.is_(None), Upload.expires_at > now)).all())
    for obj in store.list(STAGING_PREFIX):
        if obj.key not in live and (obj.last_modified or now) < before:
            report.staging_deleted.append(obj.key)
    if report.staging_deleted:
        keys = list(report.staging_deleted)
        after_commit(session, lambda: store.delete_many(keys))


STEPS = ("stuck", "deleting", "uploads", "staging", "usage")


def options(settings) -> dict:
    """The sweeps' thresholds, from the settings (`imagepipe sweep` and the beat tasks alike):
    an image still `processing` past twice the hard time limit plus the grace has lost its worker."""
    return {
        "grace_s": settings.sweep_grace_s,
        "processing_limit_s": 2 * settings.task_time_limit_s + settings.sweep_grace_s,
        "max_requeues": settings.sweep_max_requeues,
    }


def sweep(
    session: Session,
    store: ObjectStore,
    queue: TaskQueue,
    *,
    grace_s: float,
    processing_limit_s: float,
    max_requeues: int = 3,
    now: datetime | None = None,
    only: str | None = None,
) -> SweepReport:
    """Every sweep (`imagepipe sweep`), or `only` one of STEPS (each beat task), in the caller's
    unit of work. `grace_s`: how old a state must be before it counts as abandoned (longer than a
    request or a queue wait); `processing_limit_s`: past this an image still `processing` has
    lost its worker."""
    now = now or datetime.now(UTC)
    report = SweepReport()
    steps = {
        "stuck": lambda: requeue_stuck(
            session,
            queue,
            grace_s=grace_s,
            processing_limit_s=processing_limit_s,
            max_requeues=max_requeues,
            now=now,
            report=report,
        ),
        "deleting": lambda: retry_deleting(session, queue, grace_s=grace_s, now=now, report=report),
        "uploads": lambda: expire_uploads(session, store, grace_s=grace_s, now=now, report=report),
        "staging": lambda: clean_staging(session, store, grace_s=grace_s, now=now, report=report),
        "usage": lambda: setattr(report, "usage_rows_merged", compact_usage(session) + compact_egress(session)),
    }
    for name in (only,) if only else STEPS:
        steps[name]()
    done = {k: v for k, v in report.as_dict().items() if v}
    if done:
        after_commit(session, lambda: log.info("sweep %s: %s", only or "all", done, extra={"sweep": done}))
    return report
