"""The takedown blocklist: the hashes of pictures taken down. An upload within
BLOCKLIST_MAX_DISTANCE of one (or whose mirror image is) fails `blocked_image` once it has
decoded, before a rendition is written (pipeline.render's `on_hash`).

The blocklist is read whole at each check: it holds what admins took down (thousands of rows at
most), and a check is a few microseconds per row."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import BlocklistEntry
from pipeline.errors import ImageError
from pipeline.perceptual import PerceptualHash, hamming
from services.infra.audit import Action, Actor, record
from services.infra.settings import Settings


class BlockedImage(ImageError):
    code = "blocked_image"
    http_status = 422


def match(session: Session, settings: Settings, fingerprint: PerceptualHash) -> tuple[BlocklistEntry, int] | None:
    """The closest blocklist entry within the distance, and how far, or None."""
    if fingerprint.quality < settings.pdq_min_quality:
        return None
    best: tuple[BlocklistEntry, int] | None = None
    for entry in session.scalars(select(BlocklistEntry).where(BlocklistEntry.quality >= settings.pdq_min_quality)):
        d = min(hamming(fingerprint.hex, entry.pdq), hamming(fingerprint.mirror, entry.pdq) if fingerprint.mirror else 256)
        if d <= settings.blocklist_max_distance and (best is None or d < best[1]):
            best = (entry, d)
    return best


def screen(session: Session, settings: Settings, fingerprint: PerceptualHash) -> None:
    """Raise BlockedImage when the picture was taken down."""
    found = match(session, settings, fingerprint)
    if found is not None:
        raise BlockedImage(
            f"this picture matches one taken down (blocklist entry {found[0].id}, distance {found[1]}); it cannot be uploaded"
        )


def add(
    session: Session,
    actor: Actor,
    fingerprint: PerceptualHash,
    reason: str,
    *,
    source_image_id: int | None = None,
    entity: tuple[str, int] | None = None,
) -> BlocklistEntry:
    entry = BlocklistEntry(
        pdq=fingerprint.hex,
        quality=fingerprint.quality,
        reason=reason,
        source_image_id=source_image_id,
        entity_type=entity[0] if entity else None,
        entity_id=entity[1] if entity else None,
        created_by=actor.name,
    )
    session.add(entry)
    session.flush()
    record(
        session,
        actor,
        Action.BLOCKLIST_ADD,
        image_id=source_image_id,
        entity=entity,
        detail={"entry": entry.id, "reason": reason},
    )
    return entry


def remove(session: Session, actor: Actor, entry_id: int) -> BlocklistEntry | None:
    entry = session.get(BlocklistEntry, entry_id)
    if entry is None:
        return None
    record(
        session,
        actor,
        Action.BLOCKLIST_REMOVE,
        image_id=entry.source_image_id,
        entity=(entry.entity_type, entry.entity_id) if entry.entity_type else None,
        detail={"entry": entry.id, "pdq": entry.pdq, "reason": entry.reason},
    )
    session.delete(entry)
    return entry


def entries(session: Session, *, after_id: int | None = None, limit: int = 100) -> list[BlocklistEntry]:
    stmt = select(BlocklistEntry).order_by(BlocklistEntry.id).limit(limit)
    if after_id is not None:
        stmt = stmt.where(BlocklistEntry.id > after_id)
    return list(session.scalars(stmt))


def entry_json(entry: BlocklistEntry) -> dict:
    return {
        "id": entry.id,
        "pdq": entry.pdq,
        "quality": entry.quality,
        "reason": entry.reason,
        "source_image_id": entry.source_image_id,
        "entity": {"type": entry.entity_type, "id": entry.entity_id} if entry.entity_type else None,
        "created_by": entry.created_by,
        "created_at": entry.created_at.isoformat() if entry.created_at else None,
    }
