"""The one wiring of settings -> database -> store -> queue, shared by the API, the worker and
the CLI. Built by the process's factory, never at import."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.session import DbTimeouts, make_engine, make_session_factory
from db.unit import unit_of_work
from services.infra.queue import CeleryQueue, TaskQueue
from services.infra.settings import Settings
from services.infra.stores import make_store
from storage import ObjectStore


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    queue: TaskQueue

    def unit_of_work(self) -> AbstractContextManager[Session]:
        return unit_of_work(self.sessions)

    def after_fork(self) -> None:
        """Connections must not be shared across a fork: drop the inherited ones."""
        self.engine.dispose(close=False)


def build_runtime(
    settings: Settings, *, queue: TaskQueue | None = None, store: ObjectStore | None = None, in_request: bool = False
) -> Runtime:
    """`in_request`: the API's wiring (fewer store attempts: a request has a budget)."""
    engine = make_engine(
        settings.database_url,
        DbTimeouts(
            connect_s=settings.db_connect_timeout_s,
            statement_s=settings.db_statement_timeout_s,
            pool_s=settings.db_pool_timeout_s,
        ),
    )
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        store=store or make_store(settings, in_request=in_request),
        queue=queue or CeleryQueue(settings),
    )
