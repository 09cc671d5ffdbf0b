"""Setting an image's RESO media fields (PATCH, upload, import, feed): one function, checked
against the vocabularies of media.py and the listing (an altered image's original is another
live image of the same listing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from db.models import Image, ImageStatus

from . import media


class MediaFieldError(ValueError):
    """A media field the listing cannot take (the API answers 400 invalid_parameter)."""


def _text(value: Any, limit: int) -> str | None:
    text = (value or "").strip()
    return text[:limit] or None


def apply(session: Session, image: Image, changes: Mapping[str, Any]) -> None:
    """Set the media fields present in `changes` (absent ones are left alone; None clears one,
    permission back to Public). Vocabularies are checked by the request models already; the
    original is checked here."""
    if "category" in changes:
        image.category = changes["category"]
    if "image_of" in changes:
        image.image_of = changes["image_of"]
    if "caption" in changes:
        image.caption = _text(changes["caption"], media.MAX_CAPTION)
    if "description" in changes:
        image.description = _text(changes["description"], media.MAX_DESCRIPTION)
    if "permission" in changes:
        image.permission = changes["permission"] or media.PUBLIC
    if "alteration" in changes:
        image.alteration = media.stored_alteration(changes["alteration"])
    if "original_of" in changes:
        original_id = changes["original_of"]
        if original_id == image.id:
            raise MediaFieldError("original_of: an image cannot be its own original")
        if original_id is not None:
            check_originals(session, image.entity_type, image.entity_id, [original_id])
        image.original_of = original_id


def check_originals(session: Session, entity_type: str, entity_id: int, ids: list[int]) -> None:
    """Before anything is stored: every original named is a live image of this listing."""
    for original_id in dict.fromkeys(ids):
        original = session.get(Image, original_id)
        if (
            original is None
            or (original.entity_type, original.entity_id) != (entity_type, entity_id)
            or original.status == ImageStatus.DELETING
        ):
            raise MediaFieldError(f"original_of: no image {original_id} in this listing")


def media_json(image: Image) -> dict[str, Any]:
    """The media fields as the API shows them."""
    return {
        "category": image.category,
        "image_of": image.image_of,
        "caption": image.caption,
        "description": image.description,
        "permission": image.permission or media.PUBLIC,
        "alteration": media.read_alteration(image.alteration),
        "original_of": image.original_of,
    }
