"""The Flask application factory, and the request's unit of work."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Mapping
from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, Request, g, request, send_from_directory

from db.unit import commit, discard
from services.delivery import rum as rum_service
from services.images.ingest import fail_unqueued
from services.infra.metrics import metrics
from services.infra.queue import QueueUnavailable, TaskQueue
from services.infra.ratelimit import RateLimiter
from services.infra.runtime import build_runtime
from services.infra.settings import Settings

from . import admin, cors, health, images, imports, jobs, legacy, local_media, openapi, reso, rum, uploads
from .context import WEB_DIR, AfterCommit, Components
from .errors import ApiError, queue_unavailable, register_error_handlers, register_request_ids

# multipart framing per file on top of the file bytes themselves
_MULTIPART_OVERHEAD_BYTES = 64 * 1024
IN_MEMORY_BODY_BYTES = 8 * 1024 * 1024  # a form upload up to this size is parsed in memory
# every route but the two that take files receives a small JSON body, if any
JSON_BODY_BYTES = 64 * 1024
log = logging.getLogger("imagepipe.api")
# Label values come from fixed sets only: a client inventing methods must not invent series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class UploadRequest(Request):
    """A request whose uploaded files stay in memory when the whole body is small (one photo):
    werkzeug would spool anything above 500 KB to a temporary file, then ingest reads it back
    twice (sha256, the staging put). A bigger body (a batch) spools to disk as before, so a
    request never holds more than IN_MEMORY_BODY_BYTES of files in memory."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if total_content_length is not None and total_content_length <= IN_MEMORY_BODY_BYTES:
            return io.BytesIO()
        return super()._get_file_stream(total_content_length, content_type, filename, content_length)


def create_app(config: Settings | Mapping[str, str] | None = None, *, queue: TaskQueue | None = None) -> Flask:
    """`config`: a Settings object, a mapping of environment-style variables, or None for the
    process environment. `queue` replaces the Celery producer (tests of the API alone)."""
    settings = config if isinstance(config, Settings) else Settings.from_env(config, role="api")

    app = Flask(__name__, static_folder=None)
    app.request_class = UploadRequest
    app.config["MAX_CONTENT_LENGTH"] = (
        settings.limits.max_upload_bytes * settings.max_files_per_request + _MULTIPART_OVERHEAD_BYTES
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider's
    app.extensions["imagepipe"] = Components(
        runtime=build_runtime(settings, queue=queue, in_request=True),
        limiter=RateLimiter(settings.rate_limit_uploads_per_minute, settings.rate_limit_redis_url),
        rum_limiter=RateLimiter(settings.rum_per_minute, settings.rate_limit_redis_url, prefix="imagepipe:rum"),
    )

    @app.teardown_appcontext
    def _close_session(exc):
        session = g.pop("db_session", None)
        if session is not None:
            if exc is not None:
                discard(session)
            session.close()

    register_error_handlers(app)
    register_request_ids(app)
    caps = {
        "uploads.upload": app.config["MAX_CONTENT_LENGTH"],
        "uploads.upload_raw": settings.limits.max_upload_bytes,
        "media.upload": settings.limits.max_upload_bytes + _MULTIPART_OVERHEAD_BYTES,
        "rum.beacon": rum_service.MAX_BODY_BYTES,
    }

    if not settings.broker_url.startswith(("redis://", "rediss://", "filesystem")):
        log.warning(
            "queue metrics (imagepipe_queue_depth, imagepipe_queue_oldest_message_age_seconds, imagepipe_broker_up)"
            " are read from Redis or the filesystem broker only: with %s they are absent, and the alerts"
            " ImagepipeQueueStale and ImagepipeQueueGrowing cannot fire",
            settings.broker_url.split("://", 1)[0] + "://",
        )
    cors.install(app, settings.cors_allowed_origins)  # first: a preflight is answered before anything else

    @app.before_request
    def _started():
        g.started = time.perf_counter()

    @app.after_request
    def _observe(resp):
        started = g.get("started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            try:
                metrics().http_seconds.labels(route, method_label(request.method), str(resp.status_code)).observe(
                    time.perf_counter() - started
                )
            except Exception:  # noqa: BLE001 - a metric never fails a request
                log.exception("could not record the request's metric")
        return resp

    @app.before_request
    def _no_nul_in_path():
        """An id with a NUL character names nothing the store or the database could hold: 404
        (PostgreSQL would refuse the query with an error)."""
        if any(isinstance(v, str) and "\x00" in v for v in (request.view_args or {}).values()):
            raise ApiError(404, "not_found", "no such resource")

    @app.before_request
    def _body_cap():
        """Each route accepts what it can legitimately receive, refused before a byte is read."""
        cap = caps.get(request.endpoint or "", JSON_BODY_BYTES)
        request.max_content_length = cap
        if request.content_length is not None and request.content_length > cap:
            raise ApiError(
                413,
                "file_too_large" if cap > JSON_BODY_BYTES else "request_too_large",
                f"request body is larger than the limit of {cap} bytes",
            )

    page_csp = _page_csp(settings, app.extensions["imagepipe"].store)

    @app.after_request
    def _security_headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        page = request.path == "/" or request.path.startswith("/web/") or request.path == "/api/docs"
        resp.headers.setdefault("Content-Security-Policy", page_csp if page else "default-src 'none'; frame-ancestors 'none'")
        return resp

    for blueprint in (health.bp, uploads.bp, images.bp, jobs.bp, admin.bp, openapi.bp, rum.bp, reso.bp, imports.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(legacy.blueprint(settings.legacy_url_prefix))
    if settings.storage_backend == "local":
        app.register_blueprint(local_media.bp)

    @app.get("/")
    def index():
        return send_from_directory(WEB_DIR, "index.html")

    @app.get("/web/<path:name>")
    def web_asset(name: str):
        return send_from_directory(WEB_DIR, name)

    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = _in_unit_of_work(view)
    logging.getLogger("imagepipe").setLevel(logging.INFO)
    return app


def _page_csp(settings: Settings, store) -> str:
    """The web pages may load images from the store (or CDN) and post uploads to it; nothing else
    leaves this origin, and no inline script runs."""
    origins = set()
    for url in (store.public_url("public/x"), settings.aws_s3_endpoint_url or "", settings.aws_cloudfront_url or ""):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}")
    if settings.storage_backend == "s3" and not settings.aws_s3_endpoint_url:  # AWS: presigned POSTs go here
        origins |= {
            f"https://{settings.aws_s3_bucket}.s3.amazonaws.com",
            f"https://{settings.aws_s3_bucket}.s3.{settings.aws_region}.amazonaws.com",
        }
    extra = " ".join(sorted(origins))
    return (
        f"default-src 'self'; img-src 'self' data: blob: {extra}; connect-src 'self' {extra}; "
        "script-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ).replace("  ", " ")


def _in_unit_of_work(view):
    """Every request is one unit of work: the view parses, calls a service and returns its answer;
    then the request commits once and runs what had to wait for the commit."""

    @wraps(view)
    def run(*args, **kwargs):
        answer = view(*args, **kwargs)
        session = g.get("db_session")
        if session is not None:
            try:
                commit(session)
            except QueueUnavailable as exc:
                discard(session)
                log.error("broker unavailable, %d images not queued: %s", len(exc.image_ids), exc)
                fail_unqueued(session, exc)
                commit(session)
                raise queue_unavailable() from exc
        return answer.present() if isinstance(answer, AfterCommit) else answer

    return run
