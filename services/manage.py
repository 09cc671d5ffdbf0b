"""Managing a stored image: ownership, gallery order, cover, alt text, delete, signed URLs.

Delete is two-phase so an image never comes back: the row goes to `deleting` first (committed,
so listings drop it at once), then every object is removed, then the row. If the store fails
in between, `purge_image` is retried by a task until it has run to the end.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus
from storage import ObjectStore, StorageError, TransientStorageError

from .config import Settings
from .keys import rendition_prefix
from .tokens import Principal

log = logging.getLogger(__name__)

MAX_SIGNED_URL_S = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer
MAX_ALT_TEXT = 500


def owned_image(session: Session, image_id: int, who: Principal, *, deleting_too: bool = False) -> Image | None:
    """The image if `who` may change it (its uploader or an admin) and it is not being
    deleted (unless `deleting_too`); None otherwise, so callers answer 404 and never reveal
    that it exists."""
    image = session.get(Image, image_id)
    if image is None or (image.status == ImageStatus.DELETING and not deleting_too):
        return None
    if not who.is_admin and image.uploader_id != who.user_id:
        return None
    return image


@dataclass(frozen=True)
class Unset:
    pass


UNSET = Unset()


def update_image(session: Session, image: Image, *, position: int | Unset = UNSET,
                 is_primary: bool | Unset = UNSET, alt_text: str | None | Unset = UNSET) -> Image:
    """Apply a PATCH. One cover per entity: making this one primary demotes the others in the
    same transaction. Flushes; the caller commits."""
    if not isinstance(position, Unset):
        image.position = position
    if not isinstance(alt_text, Unset):
        image.alt_text = (alt_text or "").strip()[:MAX_ALT_TEXT] or None
    if not isinstance(is_primary, Unset):
        if is_primary:
            session.execute(
                update(Image)
                .where(Image.entity_type == image.entity_type, Image.entity_id == image.entity_id,
                       Image.id != image.id, Image.is_primary.is_(True))
                .values(is_primary=False)
            )
        image.is_primary = is_primary
    image.updated_at = datetime.now(UTC)
    session.flush()
    return image


def object_keys(store: ObjectStore, image: Image) -> list[str]:
    """Every object the image may have: its original, staging copy, rendition rows, and
    anything under its rendition prefix (a worker that died before writing its rows)."""
    keys = [k for k in (image.s3_key, image.staging_key) if k]
    keys += [r.key for r in image.renditions]
    keys += [o.key for o in store.list(rendition_prefix(image.entity_type, image.entity_id, image.id))]
    return list(dict.fromkeys(keys))


def mark_deleting(session: Session, image: Image) -> None:
    image.status = ImageStatus.DELETING
    image.updated_at = datetime.now(UTC)
    session.commit()


def purge_image(session: Session, store: ObjectStore, image_id: int) -> str:
    """Remove every object of a `deleting` image, then its row. Returns purged, gone
    (no such row) or skipped (not being deleted). Raises TransientStorageError when some
    object could not be removed, so the calling task retries."""
    image = session.scalars(select(Image).where(Image.id == image_id).with_for_update()).first()
    if image is None:
        return "gone"
    if image.status != ImageStatus.DELETING:
        return "skipped"
    keys = object_keys(store, image)
    result = store.delete_many(keys)
    if result.errors:
        session.rollback()
        raise TransientStorageError(f"{len(result.errors)} of {len(keys)} objects not deleted: "
                                    + "; ".join(f"{k}: {v}" for k, v in list(result.errors.items())[:3]))
    session.delete(image)
    session.commit()
    return "purged"


def delete_image(session: Session, store: ObjectStore, image: Image) -> str:
    """deleted (everything gone now) or pending (a task must finish: the store failed)."""
    image_id = image.id
    mark_deleting(session, image)
    try:
        return "deleted" if purge_image(session, store, image_id) in ("purged", "gone") else "pending"
    except StorageError as exc:
        session.rollback()
        log.warning("delete of image %s left for the retrying task: %s", image_id, exc)
        return "pending"


def signed_url(settings: Settings, store: ObjectStore, key: str, expires_in_s: int) -> tuple[str, datetime]:
    """A time-limited GET URL: CloudFront-signed when a key pair is configured, otherwise the
    store's presigned URL."""
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in_s)
    if settings.cloudfront_key_pair_id and settings.cloudfront_private_key_path and settings.aws_cloudfront_url:
        from .cloudfront import cloudfront_signed_url

        url = cloudfront_signed_url(settings.aws_cloudfront_url.rstrip("/") + "/" + key, expires_at,
                                    settings.cloudfront_key_pair_id, settings.cloudfront_private_key_path)
        return url, expires_at
    return store.presigned_get_url(key, expires_in_s), expires_at
