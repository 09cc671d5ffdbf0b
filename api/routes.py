"""/api/v1: uploads, images, listings, jobs."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request, url_for

from services.config import ENTITY_TYPES
from services.ingest import IncomingFile, ingest_upload
from services.queries import get_image, get_job, job_status, list_images

from .app import components, db_session
from .auth import login_required
from .errors import ApiError
from .serializers import image_json, job_json

bp = Blueprint("v1", __name__, url_prefix="/api/v1")

MAX_LIST_LIMIT = 200


def _entity(entity: str) -> str:
    if entity not in ENTITY_TYPES:
        raise ApiError(404, "unknown_entity", f"entity must be one of {', '.join(ENTITY_TYPES)}")
    return entity


def _int_arg(name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number") from None
    if not lo <= value <= hi:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {lo} and {hi}")
    return value


@bp.post("/<entity>/<int:entity_id>/images")
@login_required
def upload(entity: str, entity_id: int):
    entity = _entity(entity)
    c = components()
    parts = request.files.getlist("file") + request.files.getlist("files")
    parts = [p for p in parts if p.filename or p.content_length]
    if not parts:
        raise ApiError(400, "missing_file", "send the image as a multipart form field named 'file' (or several 'files')")
    if len(parts) > c.settings.max_files_per_request:
        raise ApiError(400, "too_many_files", f"at most {c.settings.max_files_per_request} files per request")

    session = db_session()
    result = ingest_upload(
        session, c.store, c.settings,
        entity_type=entity, entity_id=entity_id, user_id=g.principal.user_id,
        files=[IncomingFile(p.stream, p.filename, p.mimetype) for p in parts],
    )
    if result.job is None:
        # Nothing acceptable: answer with the (first) file's own error, 413 or 415.
        first = result.rejected[0].error
        raise ApiError(first.http_status, first.code, first.message)
    session.commit()
    # Only now that the rows are committed may a worker look for them.
    if result.images:
        c.enqueue([i.id for i in result.images])

    images = [{"id": i.id, "status": i.status, "filename": i.original_filename} for i in result.images]
    # The same bytes already belong to this entity: point at that image instead of a copy.
    images += [{"id": d.image.id, "status": d.image.status, "filename": d.filename, "duplicate_of": d.image.id}
               for d in result.duplicates]
    body = {
        "job": {"id": result.job.id, "status": job_status(result.job.images),
                "status_url": url_for("v1.get_job", job_id=result.job.id)},
        "images": images,
    }
    if result.rejected:
        body["rejected"] = [
            {"filename": r.filename, "error": {"code": r.error.code, "message": r.error.message}}
            for r in result.rejected
        ]
    resp = jsonify(body)
    resp.status_code = 202
    resp.headers["Location"] = body["job"]["status_url"]
    return resp


@bp.get("/jobs/<job_id>", endpoint="get_job")
@login_required
def job_view(job_id: str):
    job = get_job(db_session(), job_id)
    if job is None or (job.user_id != g.principal.user_id and not g.principal.is_admin):
        raise ApiError(404, "job_not_found", f"no job {job_id}")
    return jsonify(job_json(job, components().store))


@bp.get("/images/<int:image_id>")
@login_required
def image(image_id: int):
    img = get_image(db_session(), image_id)
    if img is None:
        raise ApiError(404, "image_not_found", f"no image {image_id}")
    return jsonify(image_json(img, components().store))


@bp.get("/<entity>/<int:entity_id>/images")
@login_required
def entity_images(entity: str, entity_id: int):
    entity = _entity(entity)
    limit = _int_arg("limit", 50, 1, MAX_LIST_LIMIT)
    before_id = _int_arg("before_id", None, 1, 2**63 - 1)
    images = list_images(db_session(), entity, entity_id, limit=limit, before_id=before_id)
    store = components().store
    return jsonify({
        "entity_type": entity,
        "entity_id": entity_id,
        "images": [image_json(i, store) for i in images],
        "next_before_id": images[-1].id if len(images) == limit else None,
    })
