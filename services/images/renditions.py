"""Rolling out a new rendition spec (`imagepipe renditions stale|regenerate`), and rendering a
rendition the orphan scan found missing: the same task does both.

A rendition's spec is part of its key (`medium_w800_q82.jpg`, pipeline/specs.py), so a change of
width, quality or format makes new keys and the current rows show which images are stale. The
task renders only what is missing from the original, writes it under the new keys, switches the
image's rows in one commit (rows are updated in place: a reader sees the old set or the new one,
never an image without renditions), and only then deletes the superseded objects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, selectinload

from db.models import Image, ImageStatus, Rendition
from db.unit import Units, after_commit
from pipeline.errors import ImageError
from pipeline.probe import probe
from pipeline.render import render
from pipeline.specs import EncoderSettings, RenditionSpec, specs_for
from services.images.keys import object_metadata, rendition_key, rendition_prefix
from services.images.lifecycle import mark_missing
from services.images.process import put_all, rendition_writes, set_rendition, sync_legacy_urls
from services.infra import cdn
from services.infra.settings import Settings
from storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)


class RegenOutcome(StrEnum):
    CURRENT = "current"  # nothing to do
    REGENERATED = "regenerated"
    SKIPPED = "skipped"  # not ready (being processed, deleted, failed)
    GONE = "gone"  # no such row
    ORIGINAL_MISSING = "original_missing"  # marked missing: nothing to render from


def _tags(specs: list[RenditionSpec]) -> list[str]:
    return [f"{s.format}:{s}" for s in specs]


def stale_query(enc: EncoderSettings, entity: tuple[str, int | None] | None = None):
    """Ready images whose rendition rows are not exactly the current specs (a width, quality or
    format changed, AVIF turned on or off), by id."""
    opaque, alpha = _tags(specs_for(False, enc)), _tags(specs_for(True, enc))
    tag = Rendition.format + ":" + Rendition.spec
    current = case(
        (and_(Image.has_alpha.is_(True), tag.in_(alpha)), 1),
        (and_(or_(Image.has_alpha.is_(False), Image.has_alpha.is_(None)), tag.in_(opaque)), 1),
        else_=0,
    )
    query = (
        select(Image.id)
        .outerjoin(Rendition, Rendition.image_id == Image.id)
        .where(Image.status == ImageStatus.READY)
        .group_by(Image.id)
        .having(or_(func.coalesce(func.sum(current), 0) != len(opaque), func.count(Rendition.id) != len(opaque)))
    )
    if entity:
        query = query.where(Image.entity_type == entity[0])
        if entity[1] is not None:
            query = query.where(Image.entity_id == entity[1])
    return query


def count_stale(session: Session, enc: EncoderSettings, entity=None) -> int:
    return int(session.scalar(select(func.count()).select_from(stale_query(enc, entity).subquery())) or 0)


def stale_ids(session: Session, enc: EncoderSettings, entity=None, *, after: int = 0, limit: int = 1000) -> list[int]:
    return list(session.scalars(stale_query(enc, entity).where(Image.id > after).order_by(Image.id).limit(limit)))


@dataclass(frozen=True)
class _Snapshot:
    entity_type: str
    entity_id: int
    s3_key: str | None
    has_alpha: bool
    rows: dict[tuple[str, str], tuple[str, str]]  # (name, format) -> (spec, key)
    meta: dict


def regenerate(units: Units, store: ObjectStore, settings: Settings, image_id: int) -> RegenOutcome:
    """Make one ready image's renditions the current specs, objects included. Idempotent."""
    with units() as session:
        image = session.scalars(select(Image).where(Image.id == image_id).options(selectinload(Image.renditions))).first()
        if image is None:
            return RegenOutcome.GONE
        if image.status != ImageStatus.READY:
            return RegenOutcome.SKIPPED
        snap = _Snapshot(
            image.entity_type,
            image.entity_id,
            image.s3_key,
            bool(image.has_alpha),
            {(r.name, r.format): (r.spec, r.key) for r in image.renditions},
            object_metadata(image),
        )

    specs = specs_for(snap.has_alpha, settings.encoder)
    present = {o.key for o in store.list(rendition_prefix(snap.entity_type, snap.entity_id, image_id))}

    def key_of(spec: RenditionSpec) -> str:
        return rendition_key(snap.entity_type, snap.entity_id, image_id, spec)

    needed = {
        str(s) + "." + s.format
        for s in specs
        if snap.rows.get((s.name, s.format)) != (str(s), key_of(s)) or key_of(s) not in present
    }
    current_pairs = {(s.name, s.format) for s in specs}
    if not needed and set(snap.rows) == current_pairs:
        return RegenOutcome.CURRENT

    rendered = []
    if needed:
        try:
            data = store.get(snap.s3_key) if snap.s3_key else None
        except ObjectNotFound:
            data = None
        if data is None:
            with units() as session:
                mark_missing(session, [image_id])
            log.warning("image %s: original %s is missing; marked missing", image_id, snap.s3_key)
            return RegenOutcome.ORIGINAL_MISSING
        try:
            info = probe(data, settings.limits)
            result = render(data, info, settings.encoder, wanted=lambda s: str(s) + "." + s.format in needed)
        except ImageError as exc:  # the limits were lowered since it was accepted: keep what it has
            log.warning(
                "image %s cannot be rendered with the current settings (%s): %s; its renditions stay",
                image_id,
                exc.code,
                exc.message,
            )
            return RegenOutcome.SKIPPED
        rendered = result.renditions
        image_stub = Image(id=image_id, entity_type=snap.entity_type, entity_id=snap.entity_id)
        put_all(store, settings, rendition_writes(image_stub, rendered), snap.meta)

    with units() as session:
        image = session.scalars(
            select(Image).where(Image.id == image_id).with_for_update().options(selectinload(Image.renditions))
        ).first()
        written = {key_of(r.spec) for r in rendered}
        if image is None or image.status != ImageStatus.READY:
            # Deleted (or re-processed) meanwhile: take back what no row refers to.
            keep = {r.key for r in image.renditions} if image is not None else set()
            after_commit(session, lambda: store.delete_many(sorted(written - keep)))
            return RegenOutcome.SKIPPED
        by_pair = {(r.name, r.format): r for r in image.renditions}
        superseded: set[str] = set()
        now = datetime.now(UTC)
        for rendition in rendered:
            row = by_pair.get((rendition.spec.name, rendition.spec.format))
            if row is None:
                row = Rendition(name=rendition.spec.name, format=rendition.spec.format, image_id=image.id)
                image.renditions.append(row)
            elif row.key != key_of(rendition.spec):
                superseded.add(row.key)
            set_rendition(image, row, rendition, key_of(rendition.spec))
            row.created_at = now
        for pair, row in by_pair.items():
            if pair not in current_pairs:
                superseded.add(row.key)
                image.renditions.remove(row)
        sync_legacy_urls(image, store)
        image.updated_at = now
        live = {r.key for r in image.renditions}
        doomed = sorted(superseded - live)
        # Cached copies of what changed go: removed objects, and objects written again in place.
        cdn.queue_paths(session, settings, doomed + sorted(written & present))
        if doomed:
            after_commit(session, lambda: store.delete_many(doomed))
    log.info("image %s: %d rendition(s) rendered again, %d superseded object(s) removed", image_id, len(rendered), len(doomed))
    return RegenOutcome.REGENERATED
