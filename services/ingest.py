"""Accept uploads: stream each file into staging, record it, and hand back ids to enqueue.

Nothing here decodes an image. The instant checks are the magic bytes (415) and the byte
limit, enforced while streaming (413). The caller enqueues only after `commit()`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy.orm import Session

from db.models import Image, ImageStatus, Job
from pipeline.errors import FileTooLarge, ImageError
from pipeline.probe import MIME, SNIFF_BYTES, check_size, require_supported
from storage import PRIVATE_CACHE_CONTROL, ObjectStore

from .config import Settings
from .keys import object_metadata, staging_key
from .process import limits_from


@dataclass
class IncomingFile:
    stream: BinaryIO
    filename: str | None = None
    content_type: str | None = None


@dataclass
class Rejected:
    filename: str | None
    error: ImageError


@dataclass
class IngestResult:
    job: Job | None
    images: list[Image] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def _read_bounded(head: bytes, stream: BinaryIO, max_bytes: int) -> bytes:
    """For streams that cannot seek: read at most one byte past the limit, then judge."""
    data = head + stream.read(max_bytes + 1 - len(head))
    if len(data) > max_bytes:
        raise FileTooLarge(f"file is larger than the limit of {max_bytes} bytes")
    return data


def _safe_filename(name: str | None) -> str | None:
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or None


def _stage(store: ObjectStore, settings: Settings, image: Image, incoming: IncomingFile, head: bytes, fmt: str) -> None:
    # Spooled uploads are seekable: hand the store the file itself, streamed (multipart when
    # large) and rewound if a call is retried.
    body: BinaryIO | bytes
    if incoming.stream.seekable():
        incoming.stream.seek(0, 2)
        size = incoming.stream.tell()
        check_size(size, limits_from(settings))
        incoming.stream.seek(0)
        body = incoming.stream
    else:
        body = _read_bounded(head, incoming.stream, settings.max_upload_bytes)
    store.put(
        image.staging_key,
        body,
        content_type=MIME[fmt],
        cache_control=PRIVATE_CACHE_CONTROL,
        metadata=object_metadata(image),
    )


def ingest_upload(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    *,
    entity_type: str,
    entity_id: int,
    user_id: int | None,
    files: list[IncomingFile],
) -> IngestResult:
    """Stage every acceptable file; list the others as rejected. Flushes, does not commit."""
    result = IngestResult(job=None)
    for incoming in files:
        filename = _safe_filename(incoming.filename)
        head = incoming.stream.read(SNIFF_BYTES)
        try:
            fmt = require_supported(head)
        except ImageError as exc:
            result.rejected.append(Rejected(filename, exc))
            continue
        image = Image(
            entity_type=entity_type,
            entity_id=entity_id,
            status=ImageStatus.PENDING,
            uploader_id=user_id,
            original_filename=filename,
            declared_content_type=(incoming.content_type or None),
            staging_key=staging_key(uuid.uuid4().hex),
            mime_type=MIME[fmt],
        )
        session.add(image)
        session.flush()  # the id goes into the object's metadata
        try:
            _stage(store, settings, image, incoming, head, fmt)
        except ImageError as exc:
            session.delete(image)
            session.flush()
            result.rejected.append(Rejected(filename, exc))
            continue
        result.images.append(image)
    if result.images:
        job = Job(entity_type=entity_type, entity_id=entity_id, user_id=user_id)
        job.images = list(result.images)
        session.add(job)
        session.flush()
        result.job = job
    return result
