"""The worker's factory: the Celery app, its configuration and its tasks, built from settings.

Nothing happens at import. The worker process is started as `python -m workers worker ...`
(`imagepipe worker` does it), which reads the settings, builds the app here and runs Celery's
own command line on it; tests call `create_worker_app(settings)` and start a worker on it.
"""
from __future__ import annotations

from celery import Celery, signals

import celeryconfig
from services.config import Settings
from services.queue import CeleryQueue

from . import runtime, tasks


def create_worker_app(settings: Settings) -> Celery:
    app = Celery("imagepipe", set_as_current=False)
    app.conf.update(celeryconfig.build(settings))
    celeryconfig.prepare_broker(settings)
    runtime.configure(settings, queue_factory=lambda: CeleryQueue(settings, app=app))
    tasks.register(app, settings)
    _connect_signals()
    return app


_signals_connected = False


def _connect_signals() -> None:
    """Process-wide hooks, connected once (by the first app built in this process)."""
    global _signals_connected
    if _signals_connected:
        return
    signals.worker_process_init.connect(_after_fork, weak=False)
    signals.after_setup_logger.connect(_json_logs, weak=False)
    signals.after_setup_task_logger.connect(_json_logs, weak=False)
    _signals_connected = True


def _after_fork(**_kwargs) -> None:
    runtime.reset()  # fresh connections in each pool process
    import pyvips

    pyvips.cache_set_max(0)  # every image is new: the operation cache only costs memory


def _json_logs(logger=None, **_kwargs) -> None:
    # Celery's own lines, the pool's (billiard's multiprocessing logger), the tasks' and
    # imagepipe's: all JSON, as the API's are.
    from celery.utils.log import get_multiprocessing_logger

    from services.logs import quiet_chatty_libraries, use_json

    for target in (logger, get_multiprocessing_logger()):
        if target is not None:
            use_json(target)
    quiet_chatty_libraries()
