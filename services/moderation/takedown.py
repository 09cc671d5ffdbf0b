"""Takedowns: a picture removed everywhere and kept from coming back. The image's original and
every rendition are deleted (the two-phase delete of services/images/manage.py, which queues the
CDN invalidation of its paths), its hash goes on the blocklist with the reason, and the audit
trail says who did it. Other images near the same hash (copies on other listings) are reported,
not deleted: each is its own decision."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from db.models import BlocklistEntry, Image
from pipeline.perceptual import PerceptualHash
from services.images.manage import Deletion, delete_image
from services.infra.audit import Action, Actor, record
from services.infra.queue import TaskQueue
from services.infra.settings import Settings
from services.moderation import blocklist
from services.moderation.hashes import Near, near
from storage import ObjectNotFound, ObjectStore, StorageError

log = logging.getLogger(__name__)

MAX_REASON = 1000


@dataclass
class Takedown:
    image_id: int
    deletion: Deletion
    entry: BlocklistEntry | None
    copies: list[Near] = field(default_factory=list)
    why_not_blocklisted: str | None = None


def takedown_json(done: Takedown) -> dict:
    """What a takedown answers (the API and `imagepipe takedown` alike)."""
    return {
        "image_id": done.image_id,
        "status": "deleted" if done.deletion.done else "deleting",
        "blocklist_entry": blocklist.entry_json(done.entry) if done.entry else None,
        "not_blocklisted": done.why_not_blocklisted,
        "copies": [{"image_id": n.image_id, "distance": n.distance, "mirrored": n.mirrored} for n in done.copies],
    }


def stored_fingerprint(image: Image) -> PerceptualHash | None:
    row = image.perceptual_hash
    return PerceptualHash(row.pdq, row.quality) if row is not None else None


def fingerprint_from_original(store: ObjectStore, settings: Settings, image: Image) -> PerceptualHash | None:
    """For an image processed before hashes were kept: decode its original. Loads libvips in this
    process (the API's only use of it, for this rare case)."""
    if not image.s3_key:
        return None
    from pipeline.probe import probe
    from pipeline.render import fingerprint

    try:
        data = store.get(image.s3_key)
        return fingerprint(data, probe(data, settings.limits))
    except (ObjectNotFound, StorageError, ValueError) as exc:
        log.warning("image %s: no hash for the blocklist (%s)", image.id, exc)
        return None
    except Exception as exc:  # noqa: BLE001 - an undecodable original must not stop the takedown
        log.warning("image %s: its original cannot be hashed (%s)", image.id, exc)
        return None


def takedown(
    session: Session,
    store: ObjectStore,
    queue: TaskQueue,
    settings: Settings,
    image: Image,
    actor: Actor,
    reason: str,
) -> Takedown:
    print_ = stored_fingerprint(image) or fingerprint_from_original(store, settings, image)
    entry, why = None, None
    copies: list[Near] = []
    if print_ is None:
        why = "the image has no perceptual hash (never processed, or its original is unreadable)"
    else:
        entry = blocklist.add(
            session, actor, print_, reason, source_image_id=image.id, entity=(image.entity_type, image.entity_id)
        )
        if print_.quality < settings.pdq_min_quality:
            why = f"its picture is too flat to match (PDQ quality {print_.quality} < {settings.pdq_min_quality})"
        else:
            copies = near(session, print_, settings.blocklist_max_distance, settings.pdq_min_quality, exclude=[image.id])
    record(
        session,
        actor,
        Action.TAKEDOWN,
        image=image,
        detail={"reason": reason, "blocklist_entry": entry.id if entry else None, "copies": [c.image_id for c in copies]},
    )
    deletion = delete_image(session, store, queue, image, settings=settings, actor=None)
    return Takedown(image.id, deletion, entry, copies, why)
