"""Import by URL: images made from URLs (POST /api/v1/{entity}/{id}/imports, and the RESO feed
sync), downloaded by the worker through the SSRF-safe fetcher (services/infra/fetch.py) into
staging, then processed like an upload: the same sniffing, limits and pipeline. A download that
fails fails its image with a fetch_* code; nothing already stored is touched."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy.orm import Session

from db.models import UNFINISHED, Image, ImageStatus
from db.unit import Units, after_commit
from pipeline.errors import ImageError
from pipeline.limits import check_size
from pipeline.sniff import FORMAT_MIME, SNIFF_BYTES, require_supported
from services.images.ingest import IngestResult, find_duplicate, new_job, safe_filename, stage
from services.images.keys import object_metadata, staging_key
from services.images.lifecycle import discard_staging, fail_unfinished
from services.infra import fetch
from services.infra.queue import TaskQueue
from services.infra.settings import Settings
from storage import ObjectStore

from . import fields

log = logging.getLogger(__name__)


class DuplicateImport(ImageError):
    code = "duplicate_image"


def filename_from_url(url: str) -> str | None:
    """The URL's last path segment, as an image's filename (a column only: keys never hold it)."""
    return safe_filename(unquote(urlsplit(url).path.rsplit("/", 1)[-1]))


def new_import(
    session: Session,
    *,
    entity_type: str,
    entity_id: int,
    user_id: int | None,
    url: str,
    media: Mapping[str, Any],
    grants: str | None = None,
) -> Image:
    """A pending image whose bytes are still at `url` (the worker fetches them first)."""
    image = Image(
        entity_type=entity_type,
        entity_id=entity_id,
        status=ImageStatus.PENDING,
        uploader_id=user_id,
        uploader_grants=grants,
        original_filename=filename_from_url(url),
        source_url=url,
    )
    session.add(image)
    session.flush()
    fields.apply(session, image, media)
    return image


def create_imports(
    session: Session,
    *,
    entity_type: str,
    entity_id: int,
    user_id: int | None,
    items: Sequence[tuple[str, Mapping[str, Any]]],
    callback_url: str | None = None,
    grants: str | None = None,
) -> IngestResult:
    """One job of images to fetch from (url, media fields) items."""
    result = IngestResult(job=None)
    for url, media in items:
        result.images.append(
            new_import(
                session, entity_type=entity_type, entity_id=entity_id, user_id=user_id, url=url, media=media, grants=grants
            )
        )
    result.job = new_job(
        session, result, entity_type=entity_type, entity_id=entity_id, user_id=user_id, callback_url=callback_url
    )
    return result


def limits(settings: Settings) -> fetch.Limits:
    return fetch.Limits(max_bytes=settings.limits.max_upload_bytes)


def fetch_source(units: Units, store: ObjectStore, settings: Settings, queue: TaskQueue, image_id: int) -> ImageError | None:
    """Before an imported image is processed: download its URL into staging. Returns the error
    it was failed with, or None (staged now, or nothing to fetch: not an import, or already
    staged by an earlier try)."""
    with units() as session:
        image = session.get(Image, image_id)
        if image is None or image.status not in UNFINISHED or not image.source_url or image.staging_key or image.s3_key:
            return None
        url, meta = image.source_url, object_metadata(image)
        listing = (image.entity_type, image.entity_id)
    try:
        fetched = fetch.fetch(url, limits(settings), allowed=fetch.networks(settings.fetch_allowed_networks))
        check_size(len(fetched.data), settings.limits)
        fmt = require_supported(fetched.data[:SNIFF_BYTES])
    except ImageError as exc:
        log.warning("import of image %s from %s failed: %s: %s", image_id, urlsplit(url).hostname, exc.code, exc.message)
        with units() as session:
            fail_unfinished(session, queue, image_id, exc.code, exc.message)
        return exc
    key = staging_key(uuid.uuid4().hex)
    stage(store, key, fetched.data, fmt, meta)
    sha256 = hashlib.sha256(fetched.data).hexdigest()
    with units() as session:
        image = session.get(Image, image_id, with_for_update=True)
        if image is None or image.status not in UNFINISHED or image.staging_key:
            after_commit(session, lambda: discard_staging(store, key))
            return None
        existing = find_duplicate(session, *listing, sha256)
        if existing is not None and existing.id != image_id:
            error = DuplicateImport(f"the listing already has these bytes as image {existing.id}")
            fail_unfinished(session, queue, image_id, error.code, error.message)
            after_commit(session, lambda: discard_staging(store, key))
            return error
        image.staging_key, image.sha256, image.mime_type = key, sha256, FORMAT_MIME[fmt]
        image.declared_content_type = (fetched.content_type or "")[:100] or None
    return None
