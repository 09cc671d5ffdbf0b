"""/api/v1: uploads (form and direct), images, listings, jobs, admin."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, g, jsonify, request, url_for

from db.models import Image, ImageStatus, ScanStatus, StorageScan
from db.unit import after_commit
from services import access, manage, orphans, stats
from services.callbacks import CallbackRejected, check_callback_url
from services.entities import entity_types
from services.ingest import IncomingFile, IngestResult, accept, ingest_upload
from services.jobs import job_status
from services.metrics import metrics
from services.queries import images_in_status, list_images
from services.uploads import UploadNotReceived, complete_upload, create_upload
from services.views import image_json, iso, job_json
from storage import MAX_PRESIGNED_URL_S

from .app import AfterCommit, components, db_session
from .auth import admin_required, login_required, optional_login
from .errors import ApiError

bp = Blueprint("v1", __name__, url_prefix="/api/v1")
log = logging.getLogger("imagepipe.api")

MAX_LIST_LIMIT = 200


def _entity(entity: str) -> str:
    if entity not in entity_types():
        raise ApiError(404, "unknown_entity", f"entity must be one of {', '.join(entity_types())}")
    return entity


def _entity_id(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= access.MAX_ENTITY_ID:
        raise ApiError(400, "invalid_parameter", f"entity_id must be an integer from 1 to {access.MAX_ENTITY_ID}")
    return value


def _writable(entity: str, entity_id: int) -> None:
    """Uploading needs a token that grants the listing (the listing itself is public)."""
    if not access.may_write(g.principal, entity, entity_id):
        raise ApiError(403, "entity_forbidden", f"your token does not grant writing {entity}/{entity_id}; "
                       "the platform grants listings in the token's entities claim")


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


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "send a JSON object with Content-Type: application/json")
    return body


def _rate_limit(cost: int, *, refund: int = 0) -> None:
    """Count `cost` uploads; over the limit, 429 (and `refund` counted earlier is given back)."""
    limiter = components().limiter
    key = f"uploads:{g.principal.user_id}"
    retry_after = limiter.hit(key, cost) if cost else None
    if retry_after is not None:
        if refund:
            limiter.release(key, refund)
        cost += refund
        per_minute = components().settings.rate_limit_uploads_per_minute
        message = (f"this request has {cost} files and at most {per_minute} uploads a minute are allowed: "
                   "send fewer files per request") if cost > per_minute else (
            f"at most {per_minute} uploads a minute; try again in {retry_after} s")
        raise ApiError(429, "rate_limited", message, {"Retry-After": str(retry_after)})


def _callback_url(value) -> str | None:
    if value in (None, ""):
        return None
    try:
        return check_callback_url(str(value), components().settings)
    except CallbackRejected as exc:
        raise ApiError(400, "callback_not_allowed", str(exc)) from None


def _owned(image_id: int, *, deleting_too: bool = False) -> Image:
    image = access.image_for(db_session(), image_id, g.principal, deleting_too=deleting_too)
    if image is None:
        raise ApiError(404, "image_not_found", f"no image {image_id}")
    return image


def _accepted(result: IngestResult, rejected: list | None = None):
    """202 with the job; the request's commit then enqueues the new images (ingest.accept)."""
    job = result.job
    images = [{"id": i.id, "status": i.status, "filename": i.original_filename} for i in result.images]
    # The same bytes already belong to this entity: point at that image instead of a copy.
    images += [{"id": d.image.id, "status": d.image.status, "filename": d.filename, "duplicate_of": d.image.id}
               for d in result.duplicates]
    body = {
        "job": {"id": job.id, "status": job_status(job.images), "status_url": url_for("v1.get_job", job_id=job.id)},
        "images": images,
    }
    if rejected:
        body["rejected"] = [{"filename": r.filename, "error": {"code": r.error.code, "message": r.error.message}}
                            for r in rejected]
    resp = jsonify(body)
    resp.status_code = 202
    resp.headers["Location"] = body["job"]["status_url"]
    return resp


# --- uploads ---------------------------------------------------------------------------------

@bp.post("/<entity>/<int:entity_id>/images")
@login_required
def upload(entity: str, entity_id: int):
    entity, entity_id = _entity(entity), _entity_id(entity_id)
    c = components()
    # Everything that can refuse the request without its body comes first: the token's grant,
    # and the rate limit for the first file (the rest are counted once the files are known).
    _writable(entity, entity_id)
    _rate_limit(1)
    parts = request.files.getlist("file") + request.files.getlist("files")
    parts = [p for p in parts if p.filename or p.content_length]
    if not parts:
        raise ApiError(400, "missing_file", "send the image as a multipart form field named 'file' (or several 'files')")
    if len(parts) > c.settings.max_files_per_request:
        raise ApiError(400, "too_many_files", f"at most {c.settings.max_files_per_request} files per request")
    callback_url = _callback_url(request.form.get("callback_url"))
    _rate_limit(len(parts) - 1, refund=1)

    session = db_session()
    result = ingest_upload(
        session, c.store, c.settings,
        entity_type=entity, entity_id=entity_id, user_id=g.principal.user_id,
        files=[IncomingFile(p.stream, p.filename, p.mimetype) for p in parts], callback_url=callback_url,
    )
    _count_uploads(session, entity, result)
    if result.job is None:
        # Nothing acceptable: answer with the (first) file's own error, 413 or 415.
        first = result.rejected[0].error
        raise ApiError(first.http_status, first.code, first.message)
    return _accepted(accept(session, c.queue, result), result.rejected)


@bp.post("/uploads")
@login_required
def new_direct_upload():
    body = _json_body()
    entity = _entity(str(body.get("entity", "")))
    entity_id, size = _entity_id(body.get("entity_id")), body.get("size")
    _writable(entity, entity_id)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ApiError(400, "invalid_parameter", "size must be the file's length in bytes, at least 1")
    filename = body.get("filename")
    if filename is not None and not isinstance(filename, str):
        raise ApiError(400, "invalid_parameter", "filename must be a string")
    callback_url = _callback_url(body.get("callback_url"))
    _rate_limit(1)
    c, session = components(), db_session()
    new = create_upload(session, c.store, c.settings, entity_type=entity, entity_id=entity_id,
                        user_id=g.principal.user_id, filename=filename,
                        content_type=str(body.get("content_type") or ""), size=size, callback_url=callback_url)
    up = new.upload
    resp = jsonify({
        "upload_id": up.id,
        "method": "POST",
        "url": new.post.url,
        "fields": dict(new.post.fields),
        "max_bytes": c.settings.max_upload_bytes,
        "expires_at": iso(up.expires_at),
        "complete_url": url_for("v1.complete_direct_upload", upload_id=up.id),
    })
    resp.status_code = 201
    return resp


@bp.post("/uploads/<upload_id>/complete", endpoint="complete_direct_upload")
@login_required
def complete_direct_upload(upload_id: str):
    c, session = components(), db_session()
    up = access.upload_for(session, upload_id, g.principal)
    if up is None:
        raise ApiError(404, "upload_not_found", f"no upload {upload_id}")
    try:
        result = complete_upload(session, c.store, c.settings, c.queue, up)
    except UploadNotReceived as exc:
        raise ApiError(409, "upload_not_received", f"{exc}; POST the file to the upload URL first") from None
    _count_uploads(session, up.entity_type, result)
    return _accepted(result)


def _count_uploads(session, entity: str, result: IngestResult) -> None:
    """Refusals now; acceptances once committed (a broker that refuses them makes the request 503)."""
    uploads = metrics().uploads
    for rejected in result.rejected:
        uploads.labels(entity, rejected.error.code).inc()
    accepted, duplicates = len(result.images), len(result.duplicates)
    if accepted or duplicates:
        def count() -> None:
            for outcome, n in (("accepted", accepted), ("duplicate", duplicates)):
                if n:
                    uploads.labels(entity, outcome).inc(n)
        after_commit(session, count)


# --- jobs ------------------------------------------------------------------------------------

@bp.get("/jobs/<job_id>", endpoint="get_job")
@login_required
def job_view(job_id: str):
    job = access.job_for(db_session(), job_id, g.principal)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id}")
    return jsonify(job_json(job))


# --- images ----------------------------------------------------------------------------------

@bp.get("/images/<int:image_id>")
@optional_login
def image(image_id: int):
    found = access.readable_image(db_session(), image_id, g.principal)
    if found is None:
        raise ApiError(404, "image_not_found", f"no image {image_id}")
    img, full = found
    return jsonify(image_json(img, components().store, full=full))


@bp.patch("/images/<int:image_id>")
@login_required
def patch_image(image_id: int):
    body = _json_body()
    unknown = set(body) - {"position", "is_primary", "alt_text"}
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown fields: {', '.join(sorted(unknown))}")
    changes: dict = {}
    if "position" in body:
        if not isinstance(body["position"], int) or isinstance(body["position"], bool) or not 0 <= body["position"] <= 1_000_000:
            raise ApiError(400, "invalid_parameter", "position must be an integer from 0 to 1000000")
        changes["position"] = body["position"]
    if "is_primary" in body:
        if not isinstance(body["is_primary"], bool):
            raise ApiError(400, "invalid_parameter", "is_primary must be true or false")
        changes["is_primary"] = body["is_primary"]
    if "alt_text" in body:
        if body["alt_text"] is not None and not isinstance(body["alt_text"], str):
            raise ApiError(400, "invalid_parameter", "alt_text must be a string or null")
        if body["alt_text"] and len(body["alt_text"]) > manage.MAX_ALT_TEXT:
            raise ApiError(400, "invalid_parameter", f"alt_text may be at most {manage.MAX_ALT_TEXT} characters")
        changes["alt_text"] = body["alt_text"]
    img = manage.update_image(db_session(), _owned(image_id), **changes)
    return jsonify(image_json(img, components().store, full=True))


@bp.delete("/images/<int:image_id>")
@login_required
def delete_image(image_id: int):
    c = components()
    image = _owned(image_id, deleting_too=True)
    if image.status == ImageStatus.DELETING:
        return _deleting(image_id)  # already being deleted: still pending
    deletion = manage.delete_image(db_session(), c.store, c.queue, image)
    return AfterCommit(lambda: ("", 204) if deletion.done else _deleting(image_id))


def _deleting(image_id: int):
    resp = jsonify({"id": image_id, "status": ImageStatus.DELETING})
    resp.status_code = 202
    return resp


@bp.get("/images/<int:image_id>/url")
@login_required
def signed_image_url(image_id: int):
    image = _owned(image_id)
    c = components()
    rendition = request.args.get("rendition", "original")
    expires_in = _int_arg("expires_in", 300, 1, MAX_PRESIGNED_URL_S)
    if rendition == "original":
        key = image.s3_key or image.staging_key
        if not key or image.status == ImageStatus.LEGACY:
            raise ApiError(409, "original_not_available", "this image has no original in the store (a legacy image)")
    else:
        fmt = request.args.get("format")
        matches = [r for r in image.renditions if r.name == rendition and (fmt is None or r.format == fmt)]
        if not matches:
            raise ApiError(404, "rendition_not_found",
                           f"image {image_id} has no {rendition}{' ' + fmt if fmt else ''} rendition")
        # Without a format, the universally decodable one (JPEG, or PNG for transparent images).
        key = sorted(matches, key=lambda r: r.format not in ("jpeg", "png"))[0].key
    url, expires_at = manage.signed_url(c.settings, c.store, key, expires_in)
    return jsonify({"url": url, "expires_at": iso(expires_at), "rendition": rendition})


@bp.get("/<entity>/<int:entity_id>/images")
@optional_login
def entity_images(entity: str, entity_id: int):
    entity = _entity(entity)
    if not 0 <= entity_id <= access.MAX_ENTITY_ID:
        raise ApiError(400, "invalid_parameter", f"entity_id must be an integer from 0 to {access.MAX_ENTITY_ID}")
    full = access.may_write(g.principal, entity, entity_id)
    limit = _int_arg("limit", 50, 1, MAX_LIST_LIMIT)
    cursor = request.args.get("cursor")
    after = None
    if cursor:
        try:
            position, _, last_id = cursor.partition(".")
            after = (int(position), int(last_id))
            if not (0 <= after[0] <= 2**31 - 1 and 0 <= after[1] <= access.MAX_IMAGE_ID):
                raise ValueError(cursor)
        except ValueError:
            raise ApiError(400, "invalid_parameter", "cursor must be a next_cursor value from a previous page") from None
    images = list_images(db_session(), entity, entity_id, limit=limit, after=after, ready_only=not full)
    store = components().store
    last = images[-1] if len(images) == limit else None
    return jsonify({
        "entity_type": entity,
        "entity_id": entity_id,
        "images": [image_json(i, store, full=full) for i in images],
        "next_cursor": f"{last.position or 0}.{last.id}" if last else None,
    })


# --- admin -----------------------------------------------------------------------------------

@bp.get("/admin/images")
@admin_required
def admin_images():
    """Images in one status across every entity (e.g. failed ones, for support)."""
    raw = request.args.get("status", ImageStatus.FAILED)
    if raw not in set(ImageStatus):
        raise ApiError(400, "invalid_parameter", f"status must be one of {', '.join(ImageStatus)}")
    status = ImageStatus(raw)
    rows = images_in_status(db_session(), status, _int_arg("limit", 50, 1, MAX_LIST_LIMIT))
    store = components().store
    return jsonify({"status": status, "images": [image_json(i, store, full=True) for i in rows]})


@bp.get("/admin/storage/stats")
@admin_required
def admin_storage_stats():
    """Storage statistics from the database (index-only aggregates), or `?source=bucket`: from a
    listing of the bucket, with its difference from the database."""
    source = request.args.get("source", "database")
    if source not in ("database", "bucket"):
        raise ApiError(400, "invalid_parameter", "source must be database or bucket")
    db = stats.database_stats(db_session())
    return jsonify(db if source == "database" else stats.bucket_report(components().store, db))


@bp.post("/admin/storage/cleanup-orphaned")
@admin_required
def admin_cleanup_orphaned():
    """Start an orphan scan (a dry run unless `"dry_run": false` is sent); 202 with the scan,
    whose report is read at its Location."""
    body = _json_body() if request.content_length else {}
    unknown = set(body) - {"dry_run", "entity", "entity_id"}
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown field(s): {', '.join(sorted(unknown))}")
    dry_run = body.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise ApiError(400, "invalid_parameter", "dry_run must be true or false")
    scope = None
    if "entity" in body or "entity_id" in body:
        if not ("entity" in body and "entity_id" in body):
            raise ApiError(400, "invalid_parameter", "send entity and entity_id together (or neither: the whole bucket)")
        if not isinstance(body["entity"], str):
            raise ApiError(400, "invalid_parameter", f"entity must be one of {', '.join(entity_types())}")
        scope = (_entity(body["entity"]), _entity_id(body["entity_id"]))
    session = db_session()
    settings, queue = components().settings, components().queue
    scan = orphans.create_scan(session, dry_run=dry_run, grace_s=settings.orphan_grace_s,
                               requested_by=f"user:{g.principal.user_id}", entity=scope)
    orphans.start_scan(session, queue, scan)

    def present():
        session.refresh(scan)
        if scan.status == ScanStatus.FAILED and scan.error == orphans.QUEUE_REFUSED:
            raise ApiError(503, "queue_unavailable", "the task queue is not answering; try again shortly",
                           {"Retry-After": "10"}, category="broker")
        return jsonify(orphans.scan_json(scan)), 202, {"Location": url_for("v1.admin_storage_scan", scan_id=scan.id)}

    return AfterCommit(present)


def _scan(scan_id: str) -> StorageScan:
    scan = db_session().get(StorageScan, scan_id) if len(scan_id) == 32 and scan_id.isalnum() else None
    if scan is None:
        raise ApiError(404, "scan_not_found", "no such scan")
    return scan


@bp.get("/admin/storage/scans/<scan_id>")
@admin_required
def admin_storage_scan(scan_id: str):
    """A scan's progress, counts and the first keys of each finding (the report has them all)."""
    return jsonify(orphans.scan_json(_scan(scan_id)))


@bp.get("/admin/storage/scans/<scan_id>/report")
@admin_required
def admin_storage_scan_report(scan_id: str):
    """The complete report: one JSON object per line (finding, key or image, bytes, action)."""
    scan = _scan(scan_id)
    if scan.status != ScanStatus.SUCCEEDED or not scan.report_key:
        raise ApiError(409, "scan_not_finished", f"the scan is {scan.status}; its report exists once it has succeeded")
    data = components().store.get(scan.report_key)
    return Response(data, mimetype="application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="orphan-scan-{scan.id}.jsonl"'})
