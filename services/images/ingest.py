"""Accept uploads: stream each file into staging, record it, and hand back ids to enqueue.

Nothing here decodes an image. The instant checks are the magic bytes (415) and the byte
limit, enforced while streaming (413). New images are enqueued once the transaction commits (`accept`).

The same bytes uploaded again to the same entity are not stored twice: the existing image is
returned as `duplicate_of` and joins the new job, so its status is the job's.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass, field
from typing import IO

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from db.models import CallbackState, Image, ImageStatus, Job
from db.unit import after_commit
from pipeline.errors import FileTooLarge, ImageError
from pipeline.limits import check_size
from pipeline.sniff import FORMAT_MIME, SNIFF_BYTES, require_supported
from services.images.keys import object_metadata, staging_key
from services.images.lifecycle import mark_failed
from services.infra.iothreads import run_all
from services.infra.queue import QueueUnavailable, TaskQueue
from services.infra.settings import Settings
from services.jobs.status import notify_when_ended
from services.syndication import fields, media
from storage import PRIVATE_CACHE_CONTROL, ObjectStore


@dataclass
class IncomingFile:
    stream: IO[bytes]
    filename: str | None = None
    content_type: str | None = None
    media: dict = field(default_factory=dict)  # RESO media fields for the new image (services/syndication/fields.py)


@dataclass
class Rejected:
    filename: str | None
    error: ImageError


@dataclass
class Duplicate:
    filename: str | None
    image: Image  # the image already holding these bytes


@dataclass
class IngestResult:
    job: Job | None
    images: list[Image] = field(default_factory=list)  # new: enqueue these
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)


# Declared types that mean the same as what we sniff, and declarations that say nothing.
_MIME_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/heif": "image/heic",
    "image/heic-sequence": "image/heic",
    "image/heif-sequence": "image/heic",
    "image/avif-sequence": "image/avif",
}
_UNDECLARED = {"", "application/octet-stream", "binary/octet-stream"}


def content_type_mismatch(declared: str | None, sniffed: str | None) -> bool:
    """True when the client declared a type and the bytes are something else (reported, not
    fatal: the bytes decide). A generic HEIF declared for an AVIF is not a mismatch."""
    if not declared or not sniffed:
        return False
    d = declared.split(";", 1)[0].strip().lower()
    if d in _UNDECLARED:
        return False
    d = _MIME_ALIASES.get(d, d)
    if d == "image/heic" and sniffed == "image/avif":
        return False
    return d != sniffed


ACTIVE_STATUSES = (ImageStatus.PENDING, ImageStatus.PROCESSING, ImageStatus.READY)


@dataclass
class SameBytes:
    """The entity's images holding the same bytes: a live one (the upload is its duplicate), and a
    failed one the broker never took (`queue_unavailable`: a retried upload takes it again)."""

    live: Image | None
    unqueued: Image | None


def same_bytes(session: Session, entity_type: str, entity_id: int, sha256: str) -> SameBytes:
    """One query for both. On PostgreSQL, first take a transaction-scoped advisory lock on
    (entity, sha256): a second request with the same bytes (a double submit) waits here until the
    first commits, then finds its image instead of storing a copy."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"{entity_type}:{entity_id}:{sha256}".encode()).digest()
        session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], "big", signed=True))))
    rows = session.scalars(
        select(Image)
        .where(
            Image.entity_type == entity_type,
            Image.entity_id == entity_id,
            Image.sha256 == sha256,
            or_(
                Image.status.in_(ACTIVE_STATUSES),
                and_(Image.status == ImageStatus.FAILED, Image.error_code == "queue_unavailable"),
            ),
        )
        .order_by(Image.id)
    ).all()
    live = [i for i in rows if i.status in ACTIVE_STATUSES]
    unqueued = [i for i in rows if i.status == ImageStatus.FAILED]
    return SameBytes(live[0] if live else None, unqueued[0] if unqueued else None)


def find_duplicate(session: Session, entity_type: str, entity_id: int, sha256: str) -> Image | None:
    """The entity's live image with these bytes (same_bytes' lock taken)."""
    return same_bytes(session, entity_type, entity_id, sha256).live


def _digest(incoming: IncomingFile, head: bytes, settings: Settings) -> tuple[str, IO[bytes] | bytes]:
    """sha256 of the whole file and a body to stage (the stream rewound, or the bytes read)."""
    h = hashlib.sha256()
    if incoming.stream.seekable():
        incoming.stream.seek(0, 2)
        check_size(incoming.stream.tell(), settings.limits)
        incoming.stream.seek(0)
        for chunk in iter(lambda: incoming.stream.read(1024 * 1024), b""):
            h.update(chunk)
        incoming.stream.seek(0)
        return h.hexdigest(), incoming.stream
    # A request body (the raw-body upload): hashed while it is read, in large reads, into memory
    # the store then streams from (MAX_UPLOAD_BYTES at most).
    body = io.BytesIO()
    total, limit = 0, settings.limits.max_upload_bytes
    for chunk in (head, *iter(lambda: incoming.stream.read(1024 * 1024), b"")):
        total += len(chunk)
        if total > limit:
            raise FileTooLarge(f"file is larger than the limit of {limit} bytes")
        h.update(chunk)
        body.write(chunk)
    body.seek(0)
    return h.hexdigest(), body


def safe_filename(name: str | None) -> str | None:
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or None


def stage(store: ObjectStore, key: str, body: IO[bytes] | bytes, fmt: str, meta: dict[str, object]) -> None:
    # Spooled uploads are seekable: the store gets the file itself, streamed (multipart when
    # large) and rewound if a call is retried.
    store.put(key, body, content_type=FORMAT_MIME[fmt], cache_control=PRIVATE_CACHE_CONTROL, metadata=meta)


def ingest_upload(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    *,
    entity_type: str,
    entity_id: int,
    user_id: int | None,
    files: list[IncomingFile],
    callback_url: str | None = None,
    grants: str | None = None,
) -> IngestResult:
    """Stage every acceptable file; list the others as rejected. `grants`: what the uploader could
    write (services/moderation/reuse.py grants_json), recorded on each new image."""
    result = IngestResult(job=None)
    staging: list = []
    for incoming in files:
        filename = safe_filename(incoming.filename)
        head = incoming.stream.read(SNIFF_BYTES)
        try:
            fmt = require_supported(head)
        except ImageError as exc:
            result.rejected.append(Rejected(filename, exc))
            continue
        try:
            sha256, body = _digest(incoming, head, settings)
        except ImageError as exc:
            result.rejected.append(Rejected(filename, exc))
            continue
        same = same_bytes(session, entity_type, entity_id, sha256)
        if same.live is not None:
            result.duplicates.append(Duplicate(filename, same.live))
            continue
        image = new_pending_image(
            session,
            entity_type=entity_type,
            entity_id=entity_id,
            user_id=user_id,
            grants=grants,
            filename=filename,
            declared=incoming.content_type,
            fmt=fmt,
            sha256=sha256,
            staged_at=staging_key(uuid.uuid4().hex),
            reuse=same.unqueued,
        )
        fields.apply(session, image, incoming.media)
        meta = object_metadata(image)  # read here: the I/O threads never touch the session's objects
        staging.append(lambda key=image.staging_key, body=body, fmt=fmt, meta=meta: stage(store, key, body, fmt, meta))
        result.images.append(image)
    # The files of a many-file upload are staged a few at a time: their round trips overlap.
    run_all(settings, staging)
    result.job = new_job(
        session, result, entity_type=entity_type, entity_id=entity_id, user_id=user_id, callback_url=callback_url
    )
    return result


def new_pending_image(
    session: Session,
    *,
    entity_type: str,
    entity_id: int,
    user_id: int | None,
    filename: str | None,
    declared: str | None,
    fmt: str,
    sha256: str,
    staged_at: str,
    grants: str | None = None,
    reuse: Image | None = None,
) -> Image:
    """A new pending image; or `reuse` (same_bytes' `unqueued`: the same bytes uploaded before,
    refused by the broker, the client answered 503 and now retrying) pending once more, so a
    retried upload leaves one image and not a failed one beside it. Everything is set before the
    one flush: a single INSERT (or UPDATE) per image."""
    image = reuse
    if image is None:
        image = Image(entity_type=entity_type, entity_id=entity_id, sha256=sha256)
        session.add(image)
    else:  # the retry's media fields are applied afresh (fields.apply), none carried over
        for name in media.FIELDS:
            setattr(image, name, None)
        image.permission, image.source_url = media.PUBLIC, None
        image.error_code = image.error_message = image.processed_at = None
    # The earlier attempt's staging object, if any, is no longer an unfinished image's: the sweep removes it.
    image.status = ImageStatus.PENDING
    image.uploader_id = user_id
    image.uploader_grants = grants
    image.original_filename = filename
    image.declared_content_type = declared or None
    image.staging_key = staged_at
    image.mime_type = FORMAT_MIME[fmt]
    session.flush()  # the id goes into the object's metadata
    return image


def new_job(
    session: Session,
    result: IngestResult,
    *,
    entity_type: str,
    entity_id: int,
    user_id: int | None,
    callback_url: str | None = None,
) -> Job | None:
    """The job of the new images and of the existing images the duplicates point at."""
    if not (result.images or result.duplicates):
        return None
    job = Job(
        entity_type=entity_type,
        entity_id=entity_id,
        user_id=user_id,
        callback_url=callback_url,
        callback_state=CallbackState.PENDING if callback_url else None,
    )
    job.images = list(dict.fromkeys(result.images + [d.image for d in result.duplicates]))
    session.add(job)
    session.flush()
    return job


def accept(session: Session, queue: TaskQueue, result: IngestResult) -> IngestResult:
    """Once the rows are committed (and only then may a worker look for them), enqueue the new
    images as one Celery group, and send the job's callback if it has already ended (a batch of
    duplicates of ready images). The broker refusing raises QueueUnavailable with the ids."""
    new_ids = [i.id for i in result.images]
    after_commit(session, lambda: queue.process_images(new_ids))
    # A job with new images has not ended (whoever finishes its last image sends the callback),
    # and one without a callback has nothing to send: neither needs the query after the commit.
    if result.job is not None and result.job.callback_url and not result.images:
        notify_when_ended(session, queue, job_id=result.job.id)
    return result


def fail_unqueued(session: Session, error: QueueUnavailable) -> None:
    """The broker did not take these images: fail them now rather than leave them pending."""
    for image_id in error.image_ids:
        mark_failed(session, image_id, "queue_unavailable")
