"""The JSON a client reads."""
from __future__ import annotations

from flask import url_for

from db.models import Image, Job
from services.ingest import content_type_mismatch
from services.queries import job_status
from storage import ObjectStore

RENDITION_ORDER = {"thumbnail": 0, "medium": 1, "large": 2}


def _iso(dt) -> str | None:
    return dt.isoformat() if dt else None


def image_json(image: Image, store: ObjectStore) -> dict:
    renditions: dict[str, dict] = {}
    for r in sorted(image.renditions, key=lambda r: (RENDITION_ORDER.get(r.name, 9), r.format)):
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
        "placeholder": {"blurhash": image.blurhash, "dominant_color": image.dominant_color}
        if image.blurhash else None,
        "renditions": renditions,
        "created_at": _iso(image.created_at),
        "processed_at": _iso(image.processed_at),
        "error": {"code": image.error_code, "message": image.error_message} if image.error_code else None,
    }
    if image.url:
        out["legacy_url"] = image.url
    return out


def job_json(job: Job, store: ObjectStore) -> dict:
    return {
        "id": job.id,
        "status": job_status(job.images),
        "status_url": url_for("v1.get_job", job_id=job.id, _external=False),
        "entity_type": job.entity_type,
        "entity_id": job.entity_id,
        "created_at": _iso(job.created_at),
        "images": [
            {"id": i.id, "status": i.status, "filename": i.original_filename,
             "error": {"code": i.error_code, "message": i.error_message} if i.error_code else None}
            for i in job.images
        ],
    }
