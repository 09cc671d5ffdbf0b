"""gunicorn hooks (`gunicorn -c python:api.gunicorn_conf`): the master chooses the Prometheus
multiprocess folder (METRICS_DIR/api-<master pid>, new) before it forks the workers, and drops a
worker's live gauges when it exits, so GET /metrics sums exactly this run's processes
(services/infra/metrics.py)."""

from __future__ import annotations


def on_starting(server) -> None:
    from services.infra.metrics import use_multiprocess_dir
    from services.infra.settings import Settings

    use_multiprocess_dir(Settings.from_env(role="api").metrics_root, "api")


def child_exit(server, worker) -> None:
    from services.infra.metrics import mark_process_dead

    mark_process_dead(worker.pid)
