"""The Flask application factory."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, g, send_from_directory
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_session_factory
from services.config import Settings, get_settings
from services.ratelimit import RateLimiter
from services.stores import make_store
from storage import ObjectStore

from .errors import register_error_handlers, register_request_ids
from .queue import CeleryProducer

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# multipart framing per file on top of the file bytes themselves
_MULTIPART_OVERHEAD_BYTES = 64 * 1024

Enqueue = Callable[[list[int]], None]
SendTask = Callable[..., None]


@dataclass
class Components:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    enqueue: Enqueue
    send_task: SendTask
    broker_ping: Callable[[], None]
    limiter: RateLimiter


def create_app(config: Settings | Mapping[str, str] | None = None, *, enqueue: Enqueue | None = None,
               send_task: SendTask | None = None) -> Flask:
    """`config`: a Settings object, a mapping of environment-style variables, or None for the
    process environment. `enqueue` and `send_task` replace the Celery producer (used by tests of
    the API alone)."""
    if config is None:
        settings = get_settings()
    elif isinstance(config, Settings):
        settings = config
    else:
        settings = Settings.from_env(config)

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes * settings.max_files_per_request + _MULTIPART_OVERHEAD_BYTES
    app.json.sort_keys = False

    engine = make_engine(settings.database_url)
    producer = CeleryProducer(settings)
    components = Components(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        store=make_store(settings),
        enqueue=enqueue or producer.enqueue,
        send_task=send_task or producer.send,
        broker_ping=producer.ping,
        limiter=RateLimiter(settings.rate_limit_uploads_per_minute, settings.rate_limit_redis_url),
    )
    app.extensions["imagepipe"] = components

    @app.teardown_appcontext
    def _close_session(exc):
        session = g.pop("db_session", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()

    register_error_handlers(app)
    register_request_ids(app)

    from .health import bp as health_bp
    from .media import bp as media_bp
    from .openapi import bp as openapi_bp
    from .routes import bp as v1_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(v1_bp)
    app.register_blueprint(openapi_bp)
    if settings.storage_backend == "local":
        app.register_blueprint(media_bp)

    @app.get("/")
    def index():
        return send_from_directory(WEB_DIR, "index.html")

    @app.get("/web/<path:name>")
    def web_asset(name: str):
        return send_from_directory(WEB_DIR, name)

    logging.getLogger("imagepipe").setLevel(logging.INFO)
    return app


def components() -> Components:
    from flask import current_app

    return current_app.extensions["imagepipe"]


def db_session() -> Session:
    if "db_session" not in g:
        g.db_session = components().sessions()
    return g.db_session
