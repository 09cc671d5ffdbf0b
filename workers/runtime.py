"""What a worker process holds: settings, one engine, one store. Created lazily, and anew in
each forked child (connections must not be shared across a fork)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_session_factory
from services.config import Settings, get_settings
from services.stores import make_store
from storage import ObjectStore


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore


_settings: Settings | None = None
_runtime: Runtime | None = None


def configure(settings: Settings | None = None) -> Runtime:
    """Use `settings` from now on (default: the environment's)."""
    global _settings, _runtime
    _settings = settings or get_settings()
    engine = make_engine(_settings.database_url)
    _runtime = Runtime(_settings, engine, make_session_factory(engine), make_store(_settings))
    return _runtime


def get() -> Runtime:
    return _runtime or configure(_settings)


def reset() -> None:
    """After a fork: drop inherited connections; the next get() opens new ones."""
    global _runtime
    if _runtime is not None:
        _runtime.engine.dispose(close=False)
    _runtime = None
