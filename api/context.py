"""What the API's blueprints share: the app's components (the runtime wiring and the rate
limiter), the request's database session, and the after-commit answer. A floor below app.py and
the blueprints, so no blueprint imports the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from flask import current_app, g
from sqlalchemy.orm import Session

from services.infra.queue import TaskQueue
from services.infra.ratelimit import RateLimiter
from services.infra.runtime import Runtime
from services.infra.settings import Settings
from storage import ObjectStore

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


@dataclass
class Components:
    runtime: Runtime
    limiter: RateLimiter
    rum_limiter: RateLimiter  # load-timing beacons per client address

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def store(self) -> ObjectStore:
        return self.runtime.store

    @property
    def queue(self) -> TaskQueue:
        return self.runtime.queue

    @cached_property
    def collectors(self) -> list:
        """Read at scrape time by GET /metrics."""
        from celeryconfig import filesystem_queue_folder
        from services.infra.metrics import QueueCollector
        from services.storage_admin.gauges import DatabaseCollector

        s = self.runtime.settings
        return [
            QueueCollector(
                s.broker_url,
                [s.task_queue, s.migration_queue, s.maintenance_queue],
                timeout_s=min(1.0, s.broker_timeout_s),
                folder=filesystem_queue_folder(s),
            ),
            DatabaseCollector(self.runtime.sessions),
        ]


@dataclass(frozen=True)
class AfterCommit:
    """A view's answer that can only be written once the request has committed (DELETE: 204 when
    the purge that follows the commit removed everything, 202 otherwise)."""

    present: Callable[[], object]


def components() -> Components:
    return current_app.extensions["imagepipe"]


def db_session() -> Session:
    if "db_session" not in g:
        g.db_session = components().runtime.sessions()
    return g.db_session
