"""The key layout. Keys are built from ids only, never from anything a client sent, and are
deterministic per image and spec so a task that runs twice overwrites instead of duplicating."""
from __future__ import annotations

from db.models import Image
from pipeline.specs import RenditionSpec

STAGING_PREFIX = "staging/"


def staging_key(upload_id: str) -> str:
    return f"{STAGING_PREFIX}{upload_id}"


def original_key(entity_type: str, entity_id: int, image_id: int, ext: str) -> str:
    return f"originals/{entity_type}/{entity_id}/{image_id}.{ext}"


def rendition_prefix(entity_type: str, entity_id: int, image_id: int) -> str:
    return f"public/{entity_type}/{entity_id}/{image_id}/"


def rendition_key(entity_type: str, entity_id: int, image_id: int, spec: RenditionSpec) -> str:
    return rendition_prefix(entity_type, entity_id, image_id) + spec.filename


def object_metadata(image: Image) -> dict[str, object]:
    """The user metadata every object of an image carries (who, what entity, when uploaded)."""
    return {
        "user-id": image.uploader_id,
        "entity-type": image.entity_type,
        "entity-id": image.entity_id,
        "image-id": image.id,
        "upload-time": image.created_at.isoformat(timespec="seconds") if image.created_at else None,
    }
