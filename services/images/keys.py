"""The key layout. Keys are built from ids only, never from anything a client sent, and are
deterministic per image and spec so a task that runs twice overwrites instead of duplicating."""

from __future__ import annotations

from db.models import Image
from pipeline.sniff import FORMAT_EXT
from pipeline.specs import RenditionSpec

STAGING_PREFIX = "staging/"
ORIGINALS_PREFIX = "originals/"
RENDITIONS_PREFIX = "public/"  # the only anonymously readable prefix (storage.PUBLIC_PREFIX)
REPORTS_PREFIX = "reports/"  # orphan scan reports: private
SCANNED_PREFIXES = (ORIGINALS_PREFIX, RENDITIONS_PREFIX, STAGING_PREFIX)
_EXT_FORMAT = {ext: fmt for fmt, ext in FORMAT_EXT.items()}


def staging_key(upload_id: str) -> str:
    return f"{STAGING_PREFIX}{upload_id}"


def original_key(entity_type: str, entity_id: int, image_id: int, ext: str) -> str:
    return f"{ORIGINALS_PREFIX}{entity_type}/{entity_id}/{image_id}.{ext}"


def rendition_prefix(entity_type: str, entity_id: int, image_id: int) -> str:
    return f"{RENDITIONS_PREFIX}{entity_type}/{entity_id}/{image_id}/"


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


def entity_prefixes(entity_type: str, entity_id: int) -> tuple[str, str]:
    """Where one entity's originals and renditions live."""
    return f"{ORIGINALS_PREFIX}{entity_type}/{entity_id}/", f"{RENDITIONS_PREFIX}{entity_type}/{entity_id}/"


def scan_report_key(scan_id: str) -> str:
    return f"{REPORTS_PREFIX}orphan-scans/{scan_id}.jsonl"


def parse_key(key: str) -> dict | None:
    """What a key of our layout says: kind (original | rendition | staging), entity type, the
    format (from the extension) and for renditions the name. None for a key outside the layout."""
    parts = key.split("/")
    if key.startswith(STAGING_PREFIX) and len(parts) == 2:
        return {"kind": "staging"}
    if key.startswith(ORIGINALS_PREFIX) and len(parts) == 4:
        ext = parts[3].rpartition(".")[2] if "." in parts[3] else ""
        return {"kind": "original", "entity_type": parts[1], "format": _EXT_FORMAT.get(ext, ext)}
    if key.startswith(RENDITIONS_PREFIX) and len(parts) == 5:
        stem, _, ext = parts[4].rpartition(".")
        fmt = _EXT_FORMAT.get(ext)
        return {"kind": "rendition", "entity_type": parts[1], "name": stem.split("_w")[0], "format": fmt or ext}
    return None
