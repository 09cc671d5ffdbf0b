"""The local backend's own blueprint (registered only with STORAGE_BACKEND=local): it plays the
part S3 plays for the other backend. It serves the local store's objects, `public/` to anyone and
everything else only with a valid signature from `presigned_get_url`, and takes direct uploads
made with `presigned_post`, enforcing its policy as S3 would (key, content type, size, expiry).
What it needs beyond `ObjectStore` (file paths, signature checks) belongs to LocalObjectStore."""
from __future__ import annotations

from flask import Blueprint, request, send_file

from storage import ObjectNotFound, PermanentStorageError
from storage.local import LocalObjectStore

from .app import components
from .errors import ApiError

bp = Blueprint("media", __name__, url_prefix="/media")


def _local_store() -> LocalObjectStore:
    store = components().store
    assert isinstance(store, LocalObjectStore), "registered for STORAGE_BACKEND=local only"
    return store


@bp.post("/upload")
def upload():
    store = _local_store()
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
    store = _local_store()
    if not store.is_public(key) and not store.verify_signature(
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
