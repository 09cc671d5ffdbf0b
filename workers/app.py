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
def _json_logs(**_kwargs) -> None:
    # Celery keeps its own log format; imagepipe's loggers write JSON lines, as the API's do.
    from services.logs import configure_json_logging

    configure_json_logging()


@signals.worker_process_init.connect
def _small_libvips_cache(**_kwargs) -> None:
    import pyvips

    pyvips.cache_set_max(0)  # every image is new: the operation cache only costs memory


from . import tasks  # noqa: E402,F401  (registers the tasks)
