"""The JSON shapes of images (the writer's view and the public one), for the API and the job
callbacks (no Flask here)."""

from __future__ import annotations

from db.models import Image, ImageStatus
from pipeline.specs import rendition_sizes
from services.images.ingest import content_type_mismatch
from services.syndication import media
from services.syndication.fields import media_json
from storage import ObjectStore

DEFAULT_DISCLOSURE = "Virtually staged"  # DISCLOSURE_TEXT's default


def iso(dt) -> str | None:
    return dt.isoformat() if dt else None


def error_json(image: Image) -> dict | None:
    return {"code": image.error_code, "message": image.error_message} if image.error_code else None


# What anyone may see of a ready image (a public listing page shows it); the rest of image_json
# is for the entity's writers and admins.
PUBLIC_FIELDS = (
    "id",
    "entity_type",
    "entity_id",
    "status",
    "width",
    "height",
    "has_alpha",
    "animated",
    "placeholder",
    "position",
    "is_primary",
    "alt_text",
    "renditions",
    "processed_at",
    *(f for f in media.FIELDS if f != "permission"),
    "disclosure",
)


def fallback_url(image: Image, store: ObjectStore, name: str = "large") -> str | None:
    """The public URL of one size's universally decodable rendition (JPEG, or PNG)."""
    for r in image.renditions:
        if r.name == name and r.format in ("jpeg", "png"):
            return store.public_url(r.key)
    return None


def disclosure_json(image: Image, store: ObjectStore, text: str) -> dict | None:
    """What an altered image shows beside it: the disclosure text and a link to its unaltered
    original (null when the original is not a public, ready image: compliance warns)."""
    if not media.read_alteration(image.alteration):
        return None
    original = image.original
    shown = original is not None and original.status == ImageStatus.READY and media.is_public(original.permission)
    return {
        "text": text,
        "alteration": media.read_alteration(image.alteration),
        "original_id": original.id if shown and original else None,
        "original_url": fallback_url(original, store) if shown and original else None,
    }


def image_json(image: Image, store: ObjectStore, *, full: bool, disclosure: str = DEFAULT_DISCLOSURE) -> dict:
    """The writer's view (`full`), or the public view of a ready image. `disclosure`: the text
    an altered image carries (DISCLOSURE_TEXT)."""
    renditions: dict[str, dict] = {}
    order = {size.name: i for i, size in enumerate(sorted(rendition_sizes(), key=lambda size: size.width))}
    for r in sorted(image.renditions, key=lambda r: (order.get(r.name, len(order)), r.format)):
        renditions.setdefault(r.name, {})[r.format] = {
            "url": store.public_url(r.key),
            "width": r.width,
            "height": r.height,
            "bytes": r.bytes,
            "content_type": r.content_type,
        }
    out = {
        "id": image.id,
        "entity_type": image.entity_type,
        "entity_id": image.entity_id,
        "status": image.status,
        "filename": image.original_filename,
        "width": image.width,
        "height": image.height,
        "file_size": image.file_size,
        "mime_type": image.mime_type,
        "declared_content_type": image.declared_content_type,
        # The bytes decide the format; a client that declared something else is told so.
        "content_type_mismatch": content_type_mismatch(image.declared_content_type, image.mime_type),
        "sha256": image.sha256,
        "has_alpha": image.has_alpha,
        "animated": bool(image.frames and image.frames > 1),
        "placeholder": {"blurhash": image.blurhash, "dominant_color": image.dominant_color} if image.blurhash else None,
        "position": image.position or 0,
        "is_primary": bool(image.is_primary),
        "alt_text": image.alt_text,
        "uploader_id": image.uploader_id,
        "renditions": renditions,
        "created_at": iso(image.created_at),
        "processed_at": iso(image.processed_at),
        "error": error_json(image),
        **media_json(image),
        "disclosure": disclosure_json(image, store, disclosure),
    }
    if full:
        out["source_url"] = image.source_url
    if image.url:
        out["legacy_url"] = image.url
    if not full:
        return {k: out[k] for k in PUBLIC_FIELDS}
    # Photos of other listings this one matches (services/moderation/reuse.py): for the listing's
    # writers and admins only, never in the public view.
    out["reuse"] = [
        {"image_id": f.other_image_id, "entity": {"type": f.other_entity_type, "id": f.other_entity_id}, "distance": f.distance}
        for f in image.reuse_findings
    ]
    return out
