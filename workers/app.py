"""The Celery app (`celery -A workers.app worker`)."""
from __future__ import annotations

import os

# One libvips thread per worker process: on small machines processes scale better than
# threads (measured on this 2-core machine kind: 1.7x the throughput of one process with two
# threads). Must be set before pyvips loads.
os.environ.setdefault("VIPS_CONCURRENCY", "1")

from celery import Celery, signals  # noqa: E402

import celeryconfig  # noqa: E402
from services.config import Settings  # noqa: E402

from . import runtime  # noqa: E402

celery_app = Celery("imagepipe")
celery_app.config_from_object(celeryconfig)
app = celery_app


def configure(settings: Settings) -> Celery:
    """Point the app and the worker runtime at `settings` (tests, embedded runs)."""
    celery_app.conf.update(celeryconfig.build(settings))
    runtime.configure(settings)
    return celery_app


@signals.worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs) -> None:
    runtime.reset()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_logs(logger=None, **_kwargs) -> None:
    # Celery's own lines, the pool's (billiard's multiprocessing logger), the tasks' and
    # imagepipe's: all JSON, as the API's are.
    from celery.utils.log import get_multiprocessing_logger

    from services.logs import quiet_chatty_libraries, use_json

    for target in (logger, get_multiprocessing_logger()):
        if target is not None:
            use_json(target)
    quiet_chatty_libraries()


@signals.worker_process_init.connect
def _small_libvips_cache(**_kwargs) -> None:
    import pyvips

    pyvips.cache_set_max(0)  # every image is new: the operation cache only costs memory


from . import tasks  # noqa: E402,F401  (registers the tasks)
