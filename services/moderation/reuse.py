"""Reuse findings: an uploaded photo that matches, perceptually, a photo of another listing its
uploader could not write (a lifted listing photo). Found at ingest, recorded, never blocking:
the platform decides what to do (the admin list, the metric, the image's full view).

Who could write what is judged from the grants recorded on each image at upload time
(`uploader_grants`): a match is not a finding when the uploader could write the other listing,
when the other image's uploader could write this one, or when both have the same uploader
(an agent re-listing their own photos). Admin uploads, and images whose uploader is unknown
(migrated from the legacy disk), raise none."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Image, ReuseFinding
from pipeline.perceptual import PerceptualHash
from services.infra.settings import Settings
from services.infra.tokens import Principal
from services.moderation.hashes import near

MAX_FINDINGS = 20  # per image: the closest ones (a picture copied to hundreds of listings is one story)


def grants_json(who: Principal) -> str:
    return json.dumps({"user": who.user_id, "admin": who.is_admin, "entities": sorted(who.entities)})


def uploader(image: Image) -> Principal | None:
    if not image.uploader_grants:
        return None
    try:
        raw = json.loads(image.uploader_grants)
        return Principal(int(raw["user"]), bool(raw.get("admin")), frozenset(raw.get("entities") or ()))
    except (ValueError, KeyError, TypeError):
        return None


def find(session: Session, settings: Settings, image: Image, fingerprint: PerceptualHash | None) -> list[ReuseFinding]:
    """Record (in the session) the reuse findings of a just-processed image; returns them."""
    if fingerprint is None or fingerprint.quality < settings.pdq_min_quality:
        return []
    who = uploader(image)
    if who is None or who.is_admin:
        return []
    matches = near(session, fingerprint, settings.reuse_max_distance, settings.pdq_min_quality, exclude=[image.id])
    if not matches:
        return []
    others = {
        row.id: row
        for row in session.scalars(select(Image).where(Image.id.in_([m.image_id for m in matches[: MAX_FINDINGS * 5]])))
    }
    known = set(session.scalars(select(ReuseFinding.other_image_id).where(ReuseFinding.image_id == image.id)))
    found: list[ReuseFinding] = []
    for match in matches:
        other = others.get(match.image_id)
        if other is None or other.id in known or len(found) >= MAX_FINDINGS:
            continue
        if (other.entity_type, other.entity_id) == (image.entity_type, image.entity_id):
            continue
        if who.may_write(other.entity_type, other.entity_id):
            continue
        if other.uploader_id is not None and other.uploader_id == image.uploader_id:
            continue
        theirs = uploader(other)
        if theirs is not None and theirs.may_write(image.entity_type, image.entity_id):
            continue
        finding = ReuseFinding(
            image_id=image.id,
            other_image_id=other.id,
            other_entity_type=other.entity_type,
            other_entity_id=other.entity_id,
            distance=match.distance,
        )
        session.add(finding)
        found.append(finding)
    return found


def finding_json(row: ReuseFinding, image: Image | None = None) -> dict:
    out = {
        "id": row.id,
        "image_id": row.image_id,
        "other_image_id": row.other_image_id,
        "other_entity": {"type": row.other_entity_type, "id": row.other_entity_id},
        "distance": row.distance,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }
    if image is not None:
        out["entity"] = {"type": image.entity_type, "id": image.entity_id}
        out["uploader_id"] = image.uploader_id
    return out


def findings(session: Session, *, since: datetime | None = None, after_id: int | None = None, limit: int = 100) -> list[dict]:
    """Findings oldest first from `since` (and after `after_id`, to page on), with their image's listing."""
    stmt = select(ReuseFinding, Image).join(Image, Image.id == ReuseFinding.image_id)
    if since is not None:
        stmt = stmt.where(ReuseFinding.created_at >= since)
    if after_id is not None:
        stmt = stmt.where(ReuseFinding.id > after_id)
    rows = session.execute(stmt.order_by(ReuseFinding.id).limit(limit))
    return [finding_json(finding, image) for finding, image in rows]
