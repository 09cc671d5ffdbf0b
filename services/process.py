"""Process one image: validate, render, store, record. Safe to run any number of times.

Keys are deterministic per image and spec and rendition rows are unique per (image, name,
format), so a second run (a redelivery under `acks_late`, a retry after a crash between
upload and commit) overwrites the same objects and updates the same rows.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus, Rendition
from pipeline.errors import ImageError
from pipeline.probe import ImageLimits, probe
from pipeline.render import render
from pipeline.specs import EncoderSettings
from storage import IMMUTABLE_CACHE_CONTROL, PRIVATE_CACHE_CONTROL, ObjectNotFound, ObjectStore, StorageError

from .config import Settings
from .keys import object_metadata, original_key, rendition_key

log = logging.getLogger(__name__)

# The seed's per-size url columns point at the JPEG/PNG rendition (the universally decodable one).
_URL_COLUMNS = {"thumbnail": "thumbnail_url", "medium": "medium_url", "large": "large_url"}


def limits_from(settings: Settings) -> ImageLimits:
    return ImageLimits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        max_side_px=settings.max_side_px,
        min_side_px=settings.min_side_px,
        max_jpeg_scans=settings.max_jpeg_scans,
        max_decode_bytes=settings.max_decode_mb * 2**20,
    )


def encoder_from(settings: Settings) -> EncoderSettings:
    return EncoderSettings(
        jpeg_quality=settings.jpeg_quality,
        jpeg_progressive=settings.jpeg_progressive,
        jpeg_subsample=settings.jpeg_subsample,
        jpeg_optimize_coding=settings.jpeg_optimize_coding,
        webp_quality=settings.webp_quality,
        webp_effort=settings.webp_effort,
        png_compression=settings.png_compression,
        avif=settings.avif_enabled,
        avif_quality=settings.avif_quality,
        avif_effort=settings.avif_effort,
    )


UNFINISHED = (ImageStatus.PENDING, ImageStatus.PROCESSING)


def mark_failed(session: Session, image: Image, code: str, message: str) -> bool:
    """Fail an unfinished image. A conditional UPDATE: an image a DELETE has meanwhile moved
    to `deleting` (or removed) is left alone, so it can never come back as failed."""
    result = session.execute(
        update(Image)
        .where(Image.id == image.id, Image.status.in_(UNFINISHED))
        .values(status=ImageStatus.FAILED, error_code=code, error_message=message[:2000],
                processed_at=datetime.now(UTC), updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.expire(image)  # sessions keep objects across commits: read the row's real state next time
    return result.rowcount == 1


def fail_unfinished(session: Session, image_id: int, code: str, message: str) -> bool:
    """Called when retries are exhausted: fail the image unless a run already finished it."""
    image = session.get(Image, image_id)
    if image is None or image.status not in UNFINISHED:
        return False
    return mark_failed(session, image, code, message)


def _load_source(store: ObjectStore, image: Image) -> bytes:
    for key in (image.staging_key, image.s3_key):
        if key:
            try:
                return store.get(key)
            except ObjectNotFound:
                continue
    raise ObjectNotFound(image.staging_key or image.s3_key or f"image {image.id}")


def process_image(session: Session, store: ObjectStore, settings: Settings, image_id: int) -> str:
    """Returns what happened: ready, failed, skipped (already done, or being deleted),
    deleted (a DELETE arrived mid-way) or missing (no such row)."""
    claimed = session.execute(
        update(Image)
        .where(Image.id == image_id, Image.status.in_(UNFINISHED))
        .values(status=ImageStatus.PROCESSING, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    image = session.get(Image, image_id, populate_existing=True)
    if image is None:
        return "missing"
    if not claimed:  # ready, failed, legacy or deleting
        return "skipped"

    try:
        data = _load_source(store, image)
    except ObjectNotFound:
        mark_failed(session, image, "source_missing", "the uploaded file is no longer in staging")
        return "failed"

    try:
        info = probe(data, limits_from(settings))
        result = render(data, info, encoder_from(settings))
    except ImageError as exc:
        staged = image.staging_key
        mark_failed(session, image, exc.code, exc.message)
        discard_staging(store, staged)
        return "failed"

    meta = object_metadata(image)
    orig_key = original_key(image.entity_type, image.entity_id, image.id, info.extension)
    store.put(orig_key, data, content_type=info.mime_type, cache_control=PRIVATE_CACHE_CONTROL, metadata=meta)
    written = [orig_key]
    for rendition in result.renditions:
        key = rendition_key(image.entity_type, image.entity_id, image.id, rendition.spec)
        store.put(key, rendition.data, content_type=rendition.spec.content_type,
                  cache_control=IMMUTABLE_CACHE_CONTROL, metadata=meta)
        written.append(key)

    # A DELETE may have arrived while we rendered. Lock the row (PostgreSQL; SQLite serialises
    # writers anyway) and look: if it is no longer ours to finish, take back what we wrote.
    current = session.execute(select(Image.status).where(Image.id == image.id).with_for_update()).scalar()
    if current != ImageStatus.PROCESSING:
        session.rollback()
        store.delete_many(written)
        log.info("image %s was deleted while processing; its objects were removed", image.id)
        return "deleted"

    existing = {(r.name, r.format): r for r in image.renditions}
    for rendition, key in zip(result.renditions, written[1:], strict=True):
        spec = rendition.spec
        row = existing.get((spec.name, spec.format))
        if row is None:
            row = Rendition(name=spec.name, format=spec.format)
            image.renditions.append(row)
        row.spec, row.key = str(spec), key
        row.width, row.height = rendition.width, rendition.height
        row.bytes, row.content_type = len(rendition.data), spec.content_type
        if spec.format in ("jpeg", "png"):
            setattr(image, _URL_COLUMNS[spec.name], store.public_url(key))

    image.s3_key = orig_key
    image.s3_bucket = getattr(store, "bucket", None)
    image.width, image.height = info.width, info.height
    image.file_size = info.file_size
    image.mime_type = info.mime_type
    image.has_alpha = result.has_alpha
    image.sha256 = hashlib.sha256(data).hexdigest()
    image.blurhash = result.placeholders.blurhash
    image.dominant_color = result.placeholders.dominant_color
    image.frames = info.pages
    image.captured_at = info.capture.taken_at
    image.camera = info.capture.camera
    image.copyright = info.capture.copyright
    image.error_code = image.error_message = None
    image.status = ImageStatus.READY
    image.processed_at = datetime.now(UTC)
    staged = image.staging_key
    session.commit()
    discard_staging(store, staged)
    return "ready"


def discard_staging(store: ObjectStore, key: str | None) -> None:
    """Best effort: a leftover staging object is an orphan for the cleanup job, never a
    reason to fail a finished image or a client's request."""
    if not key:
        return
    try:
        store.delete(key)
    except StorageError as exc:
        log.warning("could not delete staging object %s: %s", key, exc)
