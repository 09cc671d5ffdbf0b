"""Every error leaves as `{"error": {"code", "message"}}` with the right status."""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, jsonify, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from pipeline.errors import ImageError
from services.syndication.fields import MediaFieldError
from storage import PermanentStorageError, TransientStorageError

log = logging.getLogger("imagepipe.api")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "file_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    503: "service_unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, category: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        self.category = category or {401: "auth", 403: "auth", 429: "rate_limit"}.get(status, "validation")


def queue_unavailable() -> ApiError:
    """503 when the broker refused what a request queued (the request's work is rolled back or failed)."""
    return ApiError(503, "queue_unavailable", "the task queue is not answering; try again shortly",
                    {"Retry-After": "10"}, category="broker")  # fmt: skip


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def register_request_ids(app: Flask) -> None:
    """Every request gets an id (the caller's X-Request-ID when it is sane), echoed back and
    put on every error log line so one failure can be followed across logs."""

    @app.before_request
    def _assign():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

    @app.after_request
    def _echo(resp):
        resp.headers["X-Request-ID"] = g.get("request_id", "")
        return resp


def _entity_context() -> dict:
    args = request.view_args or {}
    out: dict[str, object] = {k: args[k] for k in ("entity_id", "image_id", "job_id", "upload_id") if k in args}
    if "entity" in args:
        out["entity_type"] = args["entity"]
    return out


def error_response(status: int, code: str, message: str, headers: dict | None = None, category: str = "validation"):
    user = getattr(g, "principal", None)
    level = logging.ERROR if category in ("internal", "storage_permanent", "database") else logging.WARNING
    log.log(
        level,
        "request failed: %s %s -> %s %s",
        request.method,
        request.path,
        status,
        code,
        extra={
            "request_id": g.get("request_id"),
            "method": request.method,
            "path": request.path,
            "status": status,
            "code": code,
            "category": category,
            "user_id": getattr(user, "user_id", None),
            **_entity_context(),
        },
    )
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.category)

    @app.errorhandler(MediaFieldError)
    def _media_field(exc: MediaFieldError):
        return error_response(400, "invalid_parameter", str(exc))

    @app.errorhandler(ImageError)
    def _image_error(exc: ImageError):
        return error_response(exc.http_status, exc.code, exc.message)

    @app.errorhandler(TransientStorageError)
    def _storage_transient(exc):
        return error_response(
            503,
            "storage_unavailable",
            "the object store is not answering; try again shortly",
            {"Retry-After": "5"},
            "storage_transient",
        )

    @app.errorhandler(PermanentStorageError)
    def _storage_permanent(exc):
        log.error("storage refused a request: %s", exc)
        return error_response(
            503,
            "storage_error",
            "the object store refused the request; operators have been told",
            {"Retry-After": "30"},
            "storage_permanent",
        )

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def _database(exc):
        log.error("database unavailable: %s", exc)
        return error_response(
            503, "database_unavailable", "the database is not answering; try again shortly", {"Retry-After": "5"}, "database"
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        code = HTTP_CODES.get(status, "http_error")
        message = exc.description or exc.name
        if status == 413:
            from flask import request

            message = f"request body is larger than the limit of {request.max_content_length} bytes"
        return error_response(status, code, message)

    @app.errorhandler(Exception)
    def _internal(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "something went wrong on our side", category="internal")
