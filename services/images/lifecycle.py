"""Image state changes that need no pixels (so the API can make them without loading libvips)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from db.models import UNFINISHED, Image, ImageStatus
from db.unit import affected, after_commit
from services.infra.metrics import metrics
from services.infra.queue import TaskQueue
from services.jobs.status import notify_when_ended
from storage import ObjectStore, StorageError

log = logging.getLogger(__name__)

# What a client reads for a failure that is not about its file: a fixed text per code. The
# details (exception text, hosts, stack) go to the log with the task id, never to the client.
FAILURE_MESSAGES = {
    "source_missing": "the uploaded file is no longer in staging; upload it again",
    "storage_unavailable": "the object store was unavailable for too long; upload the image again",
    "processing_timeout": "processing took longer than its time limit",
    "processing_error": "the image could not be processed because of a fault on our side; operators have been told",
    "queue_unavailable": "the task queue was not reachable; upload the image again",
    "original_missing": "the original file of this image is no longer in storage; upload it again",
}


def mark_failed(session: Session, image_id: int, code: str, message: str | None = None) -> bool:
    """Fail an unfinished image. A conditional UPDATE: an image a DELETE has meanwhile moved
    to `deleting` (or removed) is left alone, so it can never come back as failed. `message`:
    an ImageError's own text about the file; other codes get their fixed text."""
    message = message if message is not None else FAILURE_MESSAGES[code]
    result = session.execute(
        update(Image)
        .where(Image.id == image_id, Image.status.in_(UNFINISHED))
        .values(
            status=ImageStatus.FAILED,
            error_code=code,
            error_message=message[:2000],
            processed_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        .execution_options(synchronize_session=False)
    )
    if affected(result) == 1:
        after_commit(session, lambda: metrics().images_finished.labels("failed", code).inc())
    return affected(result) == 1


def mark_missing(session: Session, image_ids: list[int]) -> int:
    """Ready images whose original is gone from the store (the orphan scan, a regenerate that found
    nothing to render from): `missing`, with the fixed text telling the client to upload again. A
    conditional UPDATE: an image that is no longer ready meanwhile is left alone."""
    if not image_ids:
        return 0
    return affected(
        session.execute(
            update(Image)
            .where(Image.id.in_(image_ids), Image.status == ImageStatus.READY)
            .values(
                status=ImageStatus.MISSING,
                error_code="original_missing",
                error_message=FAILURE_MESSAGES["original_missing"],
                updated_at=datetime.now(UTC),
            )
            .execution_options(synchronize_session=False)
        )
    )


def fail_unfinished(session: Session, queue: TaskQueue, image_id: int, code: str, message: str | None = None) -> bool:
    """Retries are exhausted: fail the image unless a run already finished it, and send the
    callbacks of the jobs that have thereby ended."""
    failed = mark_failed(session, image_id, code, message)
    if failed:
        notify_when_ended(session, queue, image_id=image_id)
    return failed


def discard_staging(store: ObjectStore, key: str | None) -> None:
    """Best effort: a leftover staging object is an orphan for the cleanup job, never a
    reason to fail a finished image or a client's request."""
    if not key:
        return
    try:
        store.delete(key)
    except StorageError as exc:
        log.warning("could not delete staging object %s: %s", key, exc)
