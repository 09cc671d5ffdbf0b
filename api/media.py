"""Serves the local store's objects (STORAGE_BACKEND=local): `public/` to anyone, everything
else only with a valid signature from `presigned_get_url`; and takes direct uploads made with
`presigned_post`, enforcing its policy as S3 would (key, content type, size, expiry)."""
from __future__ import annotations

from flask import Blueprint, request, send_file

from storage import PUBLIC_PREFIX, ObjectNotFound, PermanentStorageError

from .app import components
from .errors import ApiError

bp = Blueprint("media", __name__, url_prefix="/media")


@bp.post("/upload")
def upload():
    store = components().store
    fields = {k: v for k, v in request.form.items()}
    try:
        policy = store.check_post_policy(fields)
    except PermanentStorageError as exc:
        raise ApiError(403, "upload_refused", str(exc)) from None
    except (ValueError, KeyError):
        raise ApiError(403, "upload_refused", "the upload policy is malformed") from None
    file = request.files.get("file")
    if file is None:
        raise ApiError(400, "missing_file", "send the bytes as the form field 'file', after the policy fields")
    data = file.stream.read(policy["max_bytes"] + 1)
    if not 1 <= len(data) <= policy["max_bytes"]:
        raise ApiError(400, "upload_size_out_of_range",
                       f"the file must be 1 to {policy['max_bytes']} bytes (the upload policy's range)")
    store.put(policy["key"], data, content_type=policy["content_type"], cache_control="private, no-store")
    return "", 204


@bp.get("/<path:key>")
def media(key: str):
    store = components().store
    if not key.startswith(PUBLIC_PREFIX) and not store.verify_signature(
        key, request.args.get("expires"), request.args.get("signature")
    ):
        raise ApiError(403, "forbidden", "this object is private; ask the API for a signed URL")
    try:
        info = store.head(key)
        path = store.path_of(key)
    except (ObjectNotFound, PermanentStorageError):
        raise ApiError(404, "not_found", "no such object") from None
    resp = send_file(path, mimetype=info.content_type or "application/octet-stream", conditional=True)
    if info.cache_control:
        resp.headers["Cache-Control"] = info.cache_control
    return resp
