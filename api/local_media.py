"""The local backend's own blueprint (registered only with STORAGE_BACKEND=local): it plays the
part S3 plays for the other backend. It serves the local store's objects, `public/` to anyone and
everything else only with a valid signature from `presigned_get_url`, and takes direct uploads
made with `presigned_post`, enforcing its policy as S3 would (key, content type, size, expiry).
What it needs beyond `ObjectStore` (file paths, signature checks) belongs to LocalObjectStore."""

from __future__ import annotations

import hashlib

from flask import Blueprint, request, send_file
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from storage import ObjectNotFound, PermanentStorageError
from storage.local import LocalObjectStore

from .context import components
from .errors import ApiError

bp = Blueprint("media", __name__, url_prefix="/media")


def _local_store() -> LocalObjectStore:
    store = components().store
    assert isinstance(store, LocalObjectStore), "registered for STORAGE_BACKEND=local only"
    return store


_FIELD_BYTES = 16 * 1024  # a policy field is a few hundred bytes
_CHUNK = 16 * 1024  # a read returns once this much has arrived: the policy is judged after the first


@bp.post("/upload")
def upload():
    """Read the form as a stream: the policy fields come first (as in S3's POST), and the policy is
    checked before a byte of the file is read, so an unsigned or expired upload costs nothing."""
    store = _local_store()
    mimetype, options = parse_options_header(request.content_type or "")
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise ApiError(400, "bad_request", "send multipart/form-data: the policy fields, then the file as 'file'")
    # the decoder's own buffer bound: a read plus what it keeps back while looking for a boundary
    decoder = MultipartDecoder(options["boundary"].encode(), max_form_memory_size=4 * _CHUNK)
    fields: dict[str, str] = {}
    policy, part, buffer = None, None, bytearray()
    while True:
        try:
            event = decoder.next_event()
        except ValueError:
            raise ApiError(400, "bad_request", "the multipart body is malformed") from None
        if isinstance(event, NeedData):
            chunk = request.stream.read(_CHUNK)
            decoder.receive_data(chunk or None)
            if not chunk and part is not None:
                raise ApiError(400, "bad_request", "the multipart body ended early")
        elif isinstance(event, Field):
            part, buffer = ("field", event.name), bytearray()
        elif isinstance(event, File):
            if event.name != "file":
                raise ApiError(400, "missing_file", "send the bytes as the form field 'file', after the policy fields")
            policy = _checked_policy(store, fields)
            part, buffer = ("file", event.name), bytearray()
        elif isinstance(event, Data):
            buffer += event.data
            limit = policy["max_bytes"] if part[0] == "file" else _FIELD_BYTES
            if len(buffer) > limit:
                raise ApiError(
                    400,
                    "upload_size_out_of_range" if part[0] == "file" else "bad_request",
                    f"the file must be {policy.get('min_bytes', 1)} to {limit} bytes (the upload policy's range)"
                    if part[0] == "file"
                    else "a form field is too long",
                )
            if not event.more_data:
                if part[0] == "file":
                    break
                fields[part[1]] = buffer.decode("utf-8", "replace")
                part = None
        elif isinstance(event, Epilogue):
            break
    if policy is None:
        _checked_policy(store, fields)  # refuse a bad policy before saying the file is missing
        raise ApiError(400, "missing_file", "send the bytes as the form field 'file', after the policy fields")
    low = policy.get("min_bytes", 1)
    if len(buffer) < low:
        raise ApiError(
            400,
            "upload_size_out_of_range",
            f"the file must be {low} to {policy['max_bytes']} bytes (the upload policy's range)",
        )
    if policy.get("sha256") and hashlib.sha256(buffer).hexdigest() != policy["sha256"]:
        raise ApiError(400, "bad_digest", "the file's SHA-256 is not the one the upload declared")
    store.put(policy["key"], bytes(buffer), content_type=policy["content_type"], cache_control="private, no-store")
    return "", 204


def _checked_policy(store: LocalObjectStore, fields: dict[str, str]) -> dict:
    try:
        return store.check_post_policy(fields)
    except PermanentStorageError as exc:
        raise ApiError(403, "upload_refused", str(exc)) from None
    except (ValueError, KeyError, TypeError):
        raise ApiError(403, "upload_refused", "the upload policy is malformed") from None


@bp.get("/<path:key>")
def media(key: str):
    store = _local_store()
    if not store.is_public(key) and not store.verify_signature(key, request.args.get("expires"), request.args.get("signature")):
        raise ApiError(403, "forbidden", "this object is private; ask the API for a signed URL")
    try:
        info = store.head(key)
        path = store.path_of(key)
    except (ObjectNotFound, PermanentStorageError):
        raise ApiError(404, "not_found", "no such object") from None
    resp = send_file(path, mimetype=info.content_type or "application/octet-stream", conditional=True)
    if info.cache_control:
        resp.headers["Cache-Control"] = info.cache_control
    resp.headers["Content-Security-Policy"] = "sandbox"  # stored bytes never run as a page of this origin
    return resp
