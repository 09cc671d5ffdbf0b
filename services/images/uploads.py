"""Direct uploads: the client sends the bytes to the store itself (large files, mobile
clients on bad networks), then asks us to complete.

1. `create_upload` records the intent and returns a presigned POST for `staging/{upload id}`
   whose policy pins the key, the content type and a content-length range up to the byte
   limit, and expires in UPLOAD_URL_EXPIRES_S. The store enforces all of it.
2. `complete_upload` checks what arrived (there, within the byte limit, an image format by
   its bytes, not a duplicate), then creates the image and job exactly like a form upload.
   Completing again returns the same job.

A client that declares the file's SHA-256 (every browser can: SubtleCrypto) gets it pinned in
the POST policy as the upload's checksum: the store refuses any other bytes and keeps the
checksum, so completion reads the checksum back (HEAD) and only the first bytes for the sniff (a
ranged GET) instead of the whole file. Without it, completion reads and hashes the whole file.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from db.models import Job, Upload
from db.unit import after_commit
from pipeline.errors import FileTooLarge, ImageError, SizeMismatch, UnsupportedMediaType
from pipeline.limits import check_size
from pipeline.sniff import SNIFF_BYTES, require_supported
from services.images.ingest import Duplicate, IngestResult, accept, new_job, new_pending_image, safe_filename, same_bytes
from services.images.keys import staging_key
from services.images.lifecycle import discard_staging
from services.infra.queue import TaskQueue
from services.infra.settings import Settings
from storage import ObjectNotFound, ObjectStore, PresignedPost

# What a client may declare; the bytes are checked again at completion.
DECLARABLE_TYPES = {"image/jpeg", "image/jpg", "image/png", "image/webp", "image/avif", "image/heic", "image/heif"}


class UploadNotReceived(Exception):
    """Nothing is stored under the upload's key (yet): the client has not uploaded it."""


@dataclass
class NewUpload:
    upload: Upload
    post: PresignedPost


def create_upload(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    *,
    entity_type: str,
    entity_id: int,
    user_id: int | None,
    filename: str | None,
    content_type: str,
    size: int,
    callback_url: str | None = None,
    sha256: str | None = None,
) -> NewUpload:
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared not in DECLARABLE_TYPES:
        raise UnsupportedMediaType(f"content_type must be one of {', '.join(sorted(DECLARABLE_TYPES))}")
    check_size(size, settings.limits)
    upload_id = uuid.uuid4().hex
    upload = Upload(
        id=upload_id,
        staging_key=staging_key(upload_id),
        entity_type=entity_type,
        entity_id=entity_id,
        user_id=user_id,
        filename=safe_filename(filename),
        content_type=declared,
        size=size,
        callback_url=callback_url,
        sha256=sha256,
        expires_at=datetime.now(UTC) + timedelta(seconds=settings.upload_url_expires_s),
    )
    session.add(upload)
    session.flush()
    # The store takes exactly the size the client declared (every browser knows File.size):
    # declaring 100 kB and sending 2.9 MB is refused by the store itself.
    post = store.presigned_post(
        upload.staging_key,
        content_type=declared,
        min_bytes=size,
        max_bytes=size,
        expires_in_s=settings.upload_url_expires_s,
        sha256=sha256,
    )
    return NewUpload(upload, post)


def complete_upload(
    session: Session, store: ObjectStore, settings: Settings, queue: TaskQueue, upload: Upload, *, grants: str | None = None
) -> IngestResult:
    """Raises UploadNotReceived, or an ImageError for bytes that are refused (the staged object
    is then deleted). The new image is enqueued once the transaction commits. `grants`: as for
    ingest_upload."""
    if upload.job_id:
        job = session.get(Job, upload.job_id)
        return IngestResult(job=job, images=[])  # already completed: the same job, nothing new
    try:
        info = store.head(upload.staging_key, checksum=upload.sha256 is not None)
    except ObjectNotFound:
        raise UploadNotReceived(f"nothing has been uploaded for upload {upload.id}") from None
    # The presigned POST stays valid until it expires, so the client may POST again at any
    # moment. Everything is judged on a copy under a key no client was ever given, taken first:
    # the bytes checked, hashed and processed are the same bytes, whatever arrives later.
    private_key = staging_key(uuid.uuid4().hex)
    try:
        check_size(info.size, settings.limits)
        if info.size != upload.size:  # a store that does not enforce the policy's range
            raise SizeMismatch(f"the file is {info.size} bytes; the upload declared {upload.size}")
        store.copy(upload.staging_key, private_key)
        if upload.sha256 is not None and info.sha256 == upload.sha256:
            # The store verified these bytes against the checksum the policy pins, and any later
            # POST must carry the same checksum: what was copied is these bytes. Only the sniff is read.
            sha256, fmt = upload.sha256, require_supported(store.get_range(private_key, 0, SNIFF_BYTES))
        else:
            data = store.get(private_key)
            if len(data) > settings.limits.max_upload_bytes:  # replaced after the HEAD: judge what we copied
                raise FileTooLarge(f"file is {len(data)} bytes; the limit is {settings.limits.max_upload_bytes} bytes")
            fmt = require_supported(data[:SNIFF_BYTES])
            sha256 = hashlib.sha256(data).hexdigest()
    except ImageError:
        for key in (upload.staging_key, private_key):
            discard_staging(store, key)
        raise
    after_commit(session, lambda: discard_staging(store, upload.staging_key))
    result = IngestResult(job=None)
    same = same_bytes(session, upload.entity_type, upload.entity_id, sha256)
    if same.live is not None:
        result.duplicates.append(Duplicate(upload.filename, same.live))
        after_commit(session, lambda: discard_staging(store, private_key))
    else:
        image = new_pending_image(
            session,
            entity_type=upload.entity_type,
            entity_id=upload.entity_id,
            user_id=upload.user_id,
            filename=upload.filename,
            declared=upload.content_type,
            fmt=fmt,
            sha256=sha256,
            staged_at=private_key,
            grants=grants,
            reuse=same.unqueued,
        )
        result.images.append(image)
    result.job = new_job(
        session,
        result,
        entity_type=upload.entity_type,
        entity_id=upload.entity_id,
        user_id=upload.user_id,
        callback_url=upload.callback_url,
    )
    assert result.job is not None  # one file, accepted or a duplicate
    upload.job_id = result.job.id
    upload.image_id = (result.images or [d.image for d in result.duplicates])[0].id
    upload.completed_at = datetime.now(UTC)
    session.flush()
    return accept(session, queue, result)
