"""Perceptual hashes in the database, and the lookup of the hashes near one.

Multi-index hashing: each PDQ hash is kept whole and as 16 slots of 16 bits, each slot its own
indexed column. Two hashes within Hamming distance d differ, by pigeonhole, in at most d // 16
bits of at least one slot; so a lookup asks, per slot, for every value within that many bits of
the query's (1 value for d <= 15, 17 for d <= 31, 137 for d <= 47), ORs the slots, and checks the
exact distance of the candidates it gets. Exact at any distance; the candidates (and the cost)
grow with the values probed: docs/operations.md has the figures, bench/reuse.py measures them.
SQLite (the embedded default) runs the same query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from db.models import PDQ_SLOTS, Image, ImageHash, ImageStatus
from pipeline.perceptual import PerceptualHash, hamming

SLOT_BITS = 16


def slots(hex_hash: str) -> list[int]:
    return [int(hex_hash[i * 4 : i * 4 + 4], 16) for i in range(PDQ_SLOTS)]


def hash_row(image_id: int, fingerprint: PerceptualHash) -> ImageHash:
    row = ImageHash(image_id=image_id, pdq=fingerprint.hex, quality=fingerprint.quality)
    for i, value in enumerate(slots(fingerprint.hex)):
        setattr(row, f"s{i}", value)
    return row


def set_hash(image: Image, fingerprint: PerceptualHash | None) -> None:
    """The image's hash row as `fingerprint` says (None: an image rendered without one keeps its own)."""
    if fingerprint is None:
        return
    if image.perceptual_hash is None:
        image.perceptual_hash = hash_row(image.id, fingerprint)
        return
    fresh = hash_row(image.id, fingerprint)
    for column in ("pdq", "quality", *(f"s{i}" for i in range(PDQ_SLOTS))):
        setattr(image.perceptual_hash, column, getattr(fresh, column))


@lru_cache(maxsize=4)
def _flips(radius: int) -> tuple[int, ...]:
    """Every 16-bit mask with at most `radius` bits set."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in bits) for bits in combinations(range(SLOT_BITS), r)]
    return tuple(masks)


def probe_values(hex_hash: str, max_distance: int) -> list[list[int]]:
    """Per slot, the values a hash within `max_distance` must hold in at least one slot."""
    masks = _flips(max_distance // PDQ_SLOTS)
    return [sorted({value ^ m for m in masks}) for value in slots(hex_hash)]


def slot_conditions(hex_hashes: Iterable[str], max_distance: int) -> list:
    """Per hash and per slot, the column condition a hash within `max_distance` meets in at least
    one slot (OR them: the candidates, before the exact distance is checked)."""
    conditions = []
    for hex_hash in hex_hashes:
        for i, values in enumerate(probe_values(hex_hash, max_distance)):
            column = getattr(ImageHash, f"s{i}")
            conditions.append(column == values[0] if len(values) == 1 else column.in_(values))
    return conditions


@dataclass(frozen=True)
class Near:
    image_id: int
    distance: int
    mirrored: bool  # the match is to the query's mirror image


def near(
    session: Session,
    fingerprint: PerceptualHash,
    max_distance: int,
    min_quality: int,
    *,
    exclude: Iterable[int] = (),
    ready_only: bool = True,
) -> list[Near]:
    """The images whose hash is within `max_distance` of `fingerprint` or of its mirror's, closest
    first (one entry per image). Pictures below `min_quality` are never matched."""
    queries = [(fingerprint.hex, False)] + ([(fingerprint.mirror, True)] if fingerprint.mirror else [])
    conditions = slot_conditions((hex_hash for hex_hash, _ in queries), max_distance)
    stmt = select(ImageHash.image_id, ImageHash.pdq).where(or_(*conditions), ImageHash.quality >= min_quality)
    skip = list(exclude)
    if skip:
        stmt = stmt.where(ImageHash.image_id.notin_(skip))
    if ready_only:
        stmt = stmt.join(Image, Image.id == ImageHash.image_id).where(and_(Image.status == ImageStatus.READY))
    best: dict[int, Near] = {}
    for image_id, pdq in session.execute(stmt):
        for hex_hash, mirrored in queries:
            d = hamming(hex_hash, pdq)
            if d <= max_distance and (image_id not in best or d < best[image_id].distance):
                best[image_id] = Near(image_id, d, mirrored)
    return sorted(best.values(), key=lambda n: (n.distance, n.image_id))


def unhashed_ids(session: Session, *, after: int = 0, limit: int = 500) -> list[int]:
    """Ready images with an original and no hash (processed before hashes were kept), by id."""
    stmt = (
        select(Image.id)
        .outerjoin(ImageHash, ImageHash.image_id == Image.id)
        .where(ImageHash.image_id.is_(None), Image.status == ImageStatus.READY, Image.s3_key.is_not(None), Image.id > after)
        .order_by(Image.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))
