"""Every error leaves as `{"error": {"code", "message"}}` with the right status."""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from pipeline.errors import ImageError
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
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict | None = None, category: str = "validation"):
    user = getattr(g, "principal", None)
    log.info(
        "request failed",
        extra={"status": status, "code": code, "category": category, "path": request.path,
               "user_id": getattr(user, "user_id", None)},
    )
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        category = "auth" if exc.status in (401, 403) else "validation"
        return error_response(exc.status, exc.code, exc.message, exc.headers, category)

    @app.errorhandler(ImageError)
    def _image_error(exc: ImageError):
        return error_response(exc.http_status, exc.code, exc.message)

    @app.errorhandler(TransientStorageError)
    def _storage_transient(exc):
        return error_response(503, "storage_unavailable", "the object store is not answering; try again shortly",
                              {"Retry-After": "5"}, "storage_transient")

    @app.errorhandler(PermanentStorageError)
    def _storage_permanent(exc):
        log.error("storage refused a request: %s", exc)
        return error_response(503, "storage_error", "the object store refused the request; operators have been told",
                              {"Retry-After": "30"}, "storage_permanent")

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def _database(exc):
        log.error("database unavailable: %s", exc)
        return error_response(503, "database_unavailable", "the database is not answering; try again shortly",
                              {"Retry-After": "5"}, "database")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        code = HTTP_CODES.get(status, "http_error")
        message = exc.description or exc.name
        if status == 413:
            message = f"request body is larger than the limit of {app.config.get('MAX_CONTENT_LENGTH')} bytes"
        return error_response(status, code, message)

    @app.errorhandler(Exception)
    def _internal(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "something went wrong on our side", category="internal")
