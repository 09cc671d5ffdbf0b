"""The worker's factory: the Celery app, its configuration and its tasks, built from settings.

Nothing happens at import. The worker process is started as `python -m workers worker ...`
(`imagepipe worker` does it), which reads the settings, builds the app here and runs Celery's
own command line on it; tests call `create_worker_app(settings)` and start a worker on it.
"""

from __future__ import annotations

import logging

from celery import Celery, signals

import celeryconfig
from services.infra.queue import CeleryQueue
from services.infra.settings import Settings

from . import broker, memory, runtime, tasks


def create_worker_app(settings: Settings) -> Celery:
    broker.guard_unacked_restore()
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
    signals.task_prerun.connect(_bind_task, weak=False)
    signals.task_postrun.connect(_unbind_task, weak=False)
    signals.task_retry.connect(_count_retry, weak=False)
    signals.task_failure.connect(_count_failure, weak=False)
    signals.worker_process_shutdown.connect(_process_gone, weak=False)
    signals.worker_init.connect(_serve_metrics, weak=False)
    _signals_connected = True


# The first argument of each task that names an image.
_IMAGE_ARG = {
    celeryconfig.PROCESS_IMAGE_TASK: 0,
    celeryconfig.DELETE_IMAGE_TASK: 0,
    celeryconfig.REGENERATE_TASK: 0,
    celeryconfig.MIGRATE_IMAGE_TASK: 1,
}


def _bind_task(sender=None, args=None, **_kwargs) -> None:
    """Every JSON line of an image's task carries the image id (and the job's, bound by the task
    once it knows it); the task name, id and attempt are added by the formatter."""
    from services.infra.logs import bind, clear

    memory.IDLE_TRIM.busy()  # a task runs: no heap trim until the process has been idle a while
    clear()
    position = _IMAGE_ARG.get(str(getattr(sender, "name", "")))
    if position is not None and args and len(args) > position:
        bind(image_id=args[position])
    if getattr(sender, "name", None) == celeryconfig.DELIVER_CALLBACK_TASK and args:
        bind(job_id=args[0])


def _unbind_task(**_kwargs) -> None:
    from services.infra.logs import clear

    clear()
    memory.IDLE_TRIM.idle()


def _count_retry(sender=None, **_kwargs) -> None:
    from services.infra.metrics import metrics

    metrics().retries.labels(getattr(sender, "name", "unknown")).inc()


def _count_failure(sender=None, exception=None, **_kwargs) -> None:
    from services.infra.metrics import metrics

    from .tasks import ImageFailed, failure_code

    if isinstance(exception, ImageFailed):  # a refused image: imagepipe_images_finished_total counts it
        return
    metrics().task_failures.labels(getattr(sender, "name", "unknown"), failure_code(exception)).inc()


def _process_gone(**_kwargs) -> None:
    import os

    from services.infra.metrics import mark_process_dead

    mark_process_dead(os.getpid())


def _serve_metrics(sender=None, **_kwargs) -> None:
    """In the worker's main process: its pool's metrics on HOST:WORKER_METRICS_PORT."""
    from services.infra import metrics as m

    settings = runtime.settings()
    if not settings or not settings.worker_metrics_port or not m.multiprocess():
        return
    from prometheus_client import CollectorRegistry
    from prometheus_client import multiprocess as mp

    registry = CollectorRegistry()
    mp.MultiProcessCollector(registry)
    log = logging.getLogger(__name__)
    try:
        serve_metrics(registry, settings.host, settings.worker_metrics_port, settings.metrics_token)
    except OSError as exc:  # the port is taken: the worker still works, unscraped (ImagepipeNoWorker says so)
        log.error("metrics endpoint not started on %s:%s: %s", settings.host, settings.worker_metrics_port, exc)
        return
    log.info("metrics on http://%s:%s/metrics", settings.host, settings.worker_metrics_port)


def serve_metrics(registry, host: str, port: int, token: str):
    """/metrics for `registry` on host:port in a daemon thread; with `token`, only for
    `Authorization: Bearer <token>` (as the API's /metrics). /healthz answers without it (the
    container's liveness probe). Returns the server (its `server_address` has the port)."""
    import hmac
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    metrics_app = make_wsgi_app(registry)
    expected = f"Bearer {token}".encode()

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: /metrics and /healthz only\n"]
        sent = environ.get("HTTP_AUTHORIZATION", "").encode()
        if token and not hmac.compare_digest(sent, expected):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="imagepipe-metrics"')],
            )
            return [b"send the metrics token: Authorization: Bearer <METRICS_TOKEN>\n"]
        return metrics_app(environ, start_response)

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            pass

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def _after_fork(**_kwargs) -> None:
    runtime.reset()  # fresh connections in each pool process
    import pyvips

    pyvips.cache_set_max(0)  # every image is new: the operation cache only costs memory


def _json_logs(logger=None, **_kwargs) -> None:
    # Celery's own lines, the pool's (billiard's multiprocessing logger), the tasks' and
    # imagepipe's: all JSON, as the API's are.
    from celery.utils.log import get_multiprocessing_logger

    from services.infra.logs import quiet_chatty_libraries, use_json

    for target in (logger, get_multiprocessing_logger()):
        if target is not None:
            use_json(target)
    quiet_chatty_libraries()
