"""Compliance profiles as data: what MLS rules and California's B&P §10140.8 ask of a listing's
photos, checked as warnings (never refusals) on the gallery and GET .../compliance.

The checks, over the listing's ready public media in RESO order (the cover first):
- each photo at least min_width x min_height, at most max_bytes; the gallery at most max_count;
- aspect within tolerance of the profile's (others are padded by the `mls` rendition);
- the primary photo is category Photo, shows the exterior (image_of in EXTERIOR_IMAGE_OF) and is
  not altered;
- an altered photo names its unaltered original, which is public and sits right next to it.

A profile may also ask for the `mls` rendition (pipeline/specs.py), written for every image while
it is the configured COMPLIANCE_PROFILE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from db.models import Image, ImageStatus
from services.images.queries import public_gallery

from . import media


@dataclass(frozen=True)
class Profile:
    name: str
    doc: str
    min_width: int | None = 1024
    min_height: int | None = 768
    max_bytes: int | None = None
    max_count: int | None = None
    aspect: tuple[int, int] | None = None  # width:height, e.g. (4, 3)
    aspect_tolerance: float = 0.02  # relative
    primary_rules: bool = True
    disclosure_rules: bool = True
    mls_rendition: bool = False


# The profiles, declared once. A new one is one entry here.
PROFILES: tuple[Profile, ...] = (
    Profile(
        "default",
        "what most MLSs and portals ask: 1024x768 or larger, an exterior, unaltered cover, altered photos paired",
        max_count=100,
    ),
    Profile(
        "mls-strict",
        "a strict MLS (MLS Now, SmartMLS-like rules): 4:3 within 2 %, at most 40 photos of 10 MB, the mls rendition",
        max_bytes=10 * 1024 * 1024,
        max_count=40,
        aspect=(4, 3),
        mls_rendition=True,
    ),
    Profile(
        "disclosure-only",
        "California B&P 10140.8 alone: altered photos disclosed beside their public originals, an unaltered cover",
        min_width=None,
        min_height=None,
    ),
)


def profile(name: str) -> Profile | None:
    return next((p for p in PROFILES if p.name == name), None)


def profile_names() -> list[str]:
    return [p.name for p in PROFILES]


def _warning(code: str, image: Image | None, message: str) -> dict[str, Any]:
    return {"code": code, "image_id": image.id if image is not None else None, "message": message}


def check(session: Session, entity_type: str, entity_id: int, chosen: Profile) -> dict[str, Any]:
    """{profile, ok, warnings: [{code, image_id, message}]}."""
    gallery = public_gallery(session, entity_type, entity_id)
    warnings: list[dict[str, Any]] = []
    for image in gallery:
        w, h = image.width or 0, image.height or 0
        if chosen.min_width and chosen.min_height and (w < chosen.min_width or h < chosen.min_height):
            warnings.append(_warning("too_small", image, f"{w}x{h} is under the {chosen.min_width}x{chosen.min_height} minimum"))
        if chosen.max_bytes and (image.file_size or 0) > chosen.max_bytes:
            warnings.append(_warning("file_too_large", image, f"{image.file_size} bytes, over the {chosen.max_bytes} limit"))
        if chosen.aspect and w and h:
            want = chosen.aspect[0] / chosen.aspect[1]
            if abs(w / h - want) / want > chosen.aspect_tolerance:
                warnings.append(
                    _warning("aspect", image, f"{w}x{h} is not {chosen.aspect[0]}:{chosen.aspect[1]} (the mls rendition pads it)")
                )
    if chosen.max_count and len(gallery) > chosen.max_count:
        warnings.append(
            _warning("too_many", gallery[chosen.max_count], f"{len(gallery)} photos, over the {chosen.max_count} allowed")
        )
    if chosen.primary_rules and gallery:
        warnings += _primary(gallery[0])
    if chosen.disclosure_rules:
        warnings += _disclosures(session, gallery)
    return {"profile": chosen.name, "ok": not warnings, "warnings": warnings}


def _primary(cover: Image) -> list[dict[str, Any]]:
    out = []
    if cover.category not in (None, "Photo"):
        out.append(_warning("primary_not_photo", cover, f"the primary photo is a {cover.category}, not a Photo"))
    if cover.image_of is None:
        out.append(_warning("primary_unclassified", cover, "the primary photo has no image_of: it must show the exterior"))
    elif cover.image_of not in media.EXTERIOR_IMAGE_OF:
        out.append(_warning("primary_not_exterior", cover, f"the primary photo shows {cover.image_of}, not the exterior"))
    if media.read_alteration(cover.alteration):
        out.append(_warning("primary_altered", cover, "the primary photo is altered: use an unaltered photo as the cover"))
    return out


def _disclosures(session: Session, gallery: list[Image]) -> list[dict[str, Any]]:
    out = []
    index = {image.id: n for n, image in enumerate(gallery)}
    for n, image in enumerate(gallery):
        if not media.read_alteration(image.alteration):
            continue
        if image.original_of is None:
            out.append(_warning("altered_without_original", image, "an altered photo must name its unaltered original"))
            continue
        original = session.get(Image, image.original_of)
        if original is None or original.status != ImageStatus.READY or not media.is_public(original.permission):
            out.append(_warning("original_not_public", image, f"its original {image.original_of} is not a public, ready image"))
        elif abs(index[original.id] - n) != 1:
            out.append(_warning("original_not_adjacent", image, f"its original {original.id} must sit right next to it"))
    return out
