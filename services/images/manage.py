"""Managing a stored image: gallery order, cover, alt text, delete, signed URLs.

Delete is two-phase so an image never comes back: the row goes to `deleting` first (committed,
so listings drop it at once), then every object is removed, then the row. If the store fails
in between, `purge_image` is retried by a task until it has run to the end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus
from db.unit import after_commit
from services.images.keys import rendition_prefix
from services.infra import cdn
from services.infra.audit import Action, Actor, record
from services.infra.queue import TaskQueue
from services.infra.settings import Settings
from storage import ObjectStore, StorageError, TransientStorageError

log = logging.getLogger(__name__)

MAX_ALT_TEXT = 500
MAX_POSITION = 1_000_000  # a gallery position (PATCH); the API validates against it


class PurgeOutcome(StrEnum):
    PURGED = "purged"
    GONE = "gone"  # no such row
    SKIPPED = "skipped"  # not being deleted


@dataclass(frozen=True)
class Unset:
    pass


UNSET = Unset()


def lock_listing(session: Session, entity_type: str, entity_id: int) -> None:
    """Serialise changes of one listing's cover until the transaction ends: a second "make cover"
    waits for the first to commit, then demotes its cover (the partial unique index
    uq_images_one_cover would refuse two). PostgreSQL: a transaction-level advisory lock per
    listing; SQLite takes one writer at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:listing, 0))"),
            {"listing": f"cover:{entity_type}:{entity_id}"},
        )


def update_image(
    session: Session,
    image: Image,
    *,
    position: int | Unset = UNSET,
    is_primary: bool | Unset = UNSET,
    alt_text: str | None | Unset = UNSET,
    admin: Actor | None = None,
) -> Image:
    """Apply a PATCH. One cover per entity: making this one primary demotes the others in the
    same transaction. `admin`: an admin acting on someone's listing: a cover change is audited."""
    if not isinstance(position, Unset):
        image.position = position
    if not isinstance(alt_text, Unset):
        image.alt_text = (alt_text or "").strip()[:MAX_ALT_TEXT] or None
    if not isinstance(is_primary, Unset):
        if is_primary:
            lock_listing(session, image.entity_type, image.entity_id)
            session.execute(
                update(Image)
                .where(
                    Image.entity_type == image.entity_type,
                    Image.entity_id == image.entity_id,
                    Image.id != image.id,
                    Image.is_primary.is_(True),
                )
                .values(is_primary=False)
            )
        if admin is not None and bool(image.is_primary) != is_primary:
            record(session, admin, Action.COVER_CHANGE, image=image, detail={"is_primary": is_primary})
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


def purge_image(session: Session, store: ObjectStore, image_id: int) -> PurgeOutcome:
    """Remove every object of a `deleting` image, then its row. Raises TransientStorageError
    when some object could not be removed, so the caller's unit is rolled back and retried."""
    image = session.scalars(select(Image).where(Image.id == image_id).with_for_update()).first()
    if image is None:
        return PurgeOutcome.GONE
    if image.status != ImageStatus.DELETING:
        return PurgeOutcome.SKIPPED
    keys = object_keys(store, image)
    result = store.delete_many(keys)
    if result.errors:
        raise TransientStorageError(
            f"{len(result.errors)} of {len(keys)} objects not deleted: "
            + "; ".join(f"{k}: {v}" for k, v in list(result.errors.items())[:3])
        )
    # An altered image made from this one loses its link (its disclosure then names no original).
    session.execute(update(Image).where(Image.original_of == image.id).values(original_of=None))
    session.delete(image)
    return PurgeOutcome.PURGED


@dataclass
class Deletion:
    image_id: int
    done: bool = False  # every object and the row are gone (known once the request has committed)


def delete_image(
    session: Session, store: ObjectStore, queue: TaskQueue, image: Image, *, settings: Settings, actor: Actor | None
) -> Deletion:
    """Hide the image now; once that is committed, purge it at once, or leave the purge to the
    retrying task when the store fails. In the same transaction: the CDN paths of its objects are
    queued for invalidation, and the audit row is written (`actor`; None when the caller writes
    its own, as a takedown does)."""
    deletion = Deletion(image.id)
    mark_deleting(session, image)
    cdn.queue_paths(session, settings, [image.s3_key or "", *(r.key for r in image.renditions)])
    if actor is not None:
        record(session, actor, Action.DELETE, image=image)

    def purge_now() -> None:
        try:  # purge_image changes the session only once every object is gone
            purge_image(session, store, deletion.image_id)
            deletion.done = True
        except StorageError as exc:
            log.warning("delete of image %s left for the retrying task: %s", deletion.image_id, exc)
            queue.delete_image(deletion.image_id)

    after_commit(session, purge_now)
    return deletion


def signed_url(settings: Settings, store: ObjectStore, key: str, expires_in_s: int) -> tuple[str, datetime]:
    """A time-limited GET URL: CloudFront-signed when a key pair is configured, otherwise the
    store's presigned URL."""
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in_s)
    if settings.cloudfront_key_pair_id and settings.cloudfront_private_key_path and settings.aws_cloudfront_url:
        from services.infra.cloudfront import cloudfront_signed_url

        url = cloudfront_signed_url(
            settings.aws_cloudfront_url.rstrip("/") + "/" + key,
            expires_at,
            settings.cloudfront_key_pair_id,
            settings.cloudfront_private_key_path,
        )
        return url, expires_at
    return store.presigned_get_url(key, expires_in_s), expires_at
