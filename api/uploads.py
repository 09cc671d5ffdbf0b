"""/api/v1 uploads: a form upload of one or more files, and the direct upload (a presigned POST to
the bucket, then complete)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request, url_for

from services.images import access
from services.images.ingest import IncomingFile, ingest_upload
from services.images.serialisers import iso
from services.images.uploads import UploadNotReceived, complete_upload, create_upload
from services.syndication.fields import check_originals

from .auth import login_required
from .common import (
    API_PREFIX,
    accepted,
    answer_ingest,
    callback_url,
    count_uploads,
    counting_refusals,
    entity_id_in_path,
    entity_in_path,
    grants,
    rate_limit,
    writable,
)
from .context import components, db_session
from .errors import ApiError
from .requests import DirectUploadRequest, json_body, media_per_file

bp = Blueprint("uploads", __name__, url_prefix=API_PREFIX)


@bp.post("/<entity>/<int:entity_id>/images")
@login_required
def upload(entity: str, entity_id: int):
    entity, entity_id = entity_in_path(entity), entity_id_in_path(entity_id)
    c = components()
    # Everything that can refuse the request without its body comes first: the token's grant,
    # and the rate limit for the first file (the rest are counted once the files are known).
    writable(entity, entity_id)
    rate_limit(1)
    parts = request.files.getlist("file") + request.files.getlist("files")
    parts = [p for p in parts if p.filename or p.content_length]
    if not parts:
        raise ApiError(400, "missing_file", "send the image as a multipart form field named 'file' (or several 'files')")
    if len(parts) > c.settings.max_files_per_request:
        raise ApiError(400, "too_many_files", f"at most {c.settings.max_files_per_request} files per request")
    callback = callback_url(request.form.get("callback_url"))
    session = db_session()
    per_file = media_per_file(request.form.get("media"), len(parts))
    check_originals(session, entity, entity_id, [m["original_of"] for m in per_file if m.get("original_of")])
    rate_limit(len(parts) - 1, refund=1)

    result = ingest_upload(
        session,
        c.store,
        c.settings,
        entity_type=entity,
        entity_id=entity_id,
        user_id=g.principal.user_id,
        files=[IncomingFile(p.stream, p.filename, p.mimetype, m) for p, m in zip(parts, per_file, strict=True)],
        callback_url=callback,
        grants=grants(),
    )
    return answer_ingest(session, c.queue, entity, result)


@bp.put("/<entity>/<int:entity_id>/images/<path:filename>", endpoint="upload_raw")
@login_required
def upload_raw(entity: str, entity_id: int, filename: str):
    """The image as the request's body (its type in Content-Type; `filename` is a label only, never
    part of a key): no multipart to parse, so the API spends its CPU on the bytes alone. The same
    authorization, limits, duplicate check and answer as the form upload."""
    entity, entity_id = entity_in_path(entity), entity_id_in_path(entity_id)
    c = components()
    writable(entity, entity_id)
    if request.content_length == 0 or (request.content_length is None and not request.headers.get("Transfer-Encoding")):
        raise ApiError(400, "missing_file", "send the image as the request body (PUT, with its Content-Type)")
    callback = callback_url(request.args.get("callback_url"))
    rate_limit(1)
    session = db_session()
    result = ingest_upload(
        session,
        c.store,
        c.settings,
        entity_type=entity,
        entity_id=entity_id,
        user_id=g.principal.user_id,
        files=[IncomingFile(request.stream, filename, request.content_type)],
        callback_url=callback,
        grants=grants(),
    )
    return answer_ingest(session, c.queue, entity, result)


@bp.post("/uploads")
@login_required
def new_direct_upload():
    body = json_body(DirectUploadRequest)
    entity = entity_in_path(body.entity)
    writable(entity, body.entity_id)
    callback = callback_url(body.callback_url)
    rate_limit(1)
    c, session = components(), db_session()
    with counting_refusals(entity):
        new = create_upload(
            session,
            c.store,
            c.settings,
            entity_type=entity,
            entity_id=body.entity_id,
            user_id=g.principal.user_id,
            filename=body.filename,
            content_type=body.content_type,
            size=body.size,
            callback_url=callback,
            sha256=body.sha256.lower() if body.sha256 else None,
        )
    up = new.upload
    resp = jsonify(
        {
            "upload_id": up.id,
            "method": "POST",
            "url": new.post.url,
            "fields": dict(new.post.fields),
            "max_bytes": up.size,  # the store takes exactly the declared size
            "expires_at": iso(up.expires_at),
            "complete_url": url_for("uploads.complete_direct_upload", upload_id=up.id),
        }
    )
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
        with counting_refusals(up.entity_type):
            result = complete_upload(session, c.store, c.settings, c.queue, up, grants=grants())
    except UploadNotReceived as exc:
        raise ApiError(409, "upload_not_received", f"{exc}; POST the file to the upload URL first") from None
    count_uploads(session, up.entity_type, result)
    return accepted(result)
