"""The key layout. Keys are built from ids only, never from anything a client sent, and are
deterministic per image and spec so a task that runs twice overwrites instead of duplicating."""
from __future__ import annotations

from pipeline.specs import RenditionSpec


def staging_key(upload_id: str) -> str:
    return f"staging/{upload_id}"


def original_key(entity_type: str, entity_id: int, image_id: int, ext: str) -> str:
    return f"originals/{entity_type}/{entity_id}/{image_id}.{ext}"


def rendition_key(entity_type: str, entity_id: int, image_id: int, spec: RenditionSpec) -> str:
    return f"public/{entity_type}/{entity_id}/{image_id}/{spec.filename}"
