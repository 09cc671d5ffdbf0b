"""Serves the local store's objects (STORAGE_BACKEND=local): `public/` to anyone, everything
else only with a valid signature from `presigned_get_url`."""
from __future__ import annotations

from flask import Blueprint, request, send_file

from storage import PUBLIC_PREFIX, ObjectNotFound, PermanentStorageError

from .app import components
from .errors import ApiError

bp = Blueprint("media", __name__, url_prefix="/media")


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
