"""What a worker process holds: the shared wiring (services/infra/runtime.py), created lazily and
anew in each forked child (connections must not be shared across a fork)."""

from __future__ import annotations

from collections.abc import Callable

from services.infra.queue import TaskQueue
from services.infra.runtime import Runtime, build_runtime
from services.infra.settings import Settings

_settings: Settings | None = None
_queue_factory: Callable[[], TaskQueue] | None = None
_runtime: Runtime | None = None


def configure(settings: Settings, *, queue_factory: Callable[[], TaskQueue] | None = None) -> None:
    """Use `settings` from now on (called by the worker's factory)."""
    global _settings, _queue_factory, _runtime
    _settings, _queue_factory, _runtime = settings, queue_factory, None


def settings() -> Settings | None:
    return _settings


def get() -> Runtime:
    global _runtime
    if _runtime is None:
        if _settings is None:
            raise RuntimeError("the worker runtime is not configured: build the app with create_worker_app(settings)")
        _runtime = build_runtime(_settings, queue=_queue_factory() if _queue_factory else None)
    return _runtime


def reset() -> None:
    """After a fork: drop inherited connections; the next get() opens new ones."""
    global _runtime
    if _runtime is not None:
        _runtime.after_fork()
    _runtime = None
