"""The process command lines, written once: `imagepipe serve|worker` exec them, `imagepipe run`
starts them side by side, and the tests start real processes with them."""

from __future__ import annotations

import sys

from services.infra.settings import Settings


def api_command(settings: Settings, *, workers: int | None = None, bind: str | None = None) -> list[str]:
    # gthread: a request waiting on the network (a slow client, a hung dependency) holds one of
    # API_THREADS threads, never the process, and the arbiter's timeout only replaces a process
    # whose main loop stopped (docs/configuration.md has the measurement).
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(workers or settings.api_workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(settings.api_threads),
        "--timeout",
        str(settings.api_timeout_s),
        "--graceful-timeout",
        "20",
        "-b",
        bind or f"{settings.host}:{settings.port}",
        "--access-logfile",
        "-",
        "--logger-class",
        "api.gunicorn_log.JsonLogger",
        "--no-control-socket",
        "-c",
        "python:api.gunicorn_conf",
        "api.wsgi:app_from_environment()",
    ]


def worker_command(
    settings: Settings, *, concurrency: int | None = None, pool: str | None = None, queue: str | None = None
) -> list[str]:
    # Uploads first, then the migration, then maintenance (the broker's priority order).
    queues = queue or f"{settings.task_queue},{settings.migration_queue},{settings.maintenance_queue}"
    cmd = [
        sys.executable,
        "-m",
        "workers",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency or settings.worker_processes),
        "-E",
        "--loglevel",
        "INFO",
    ]
    return cmd + (["-P", pool] if pool else [])


def beat_command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "workers", "beat", "--loglevel", "INFO"]


def flower_command(settings: Settings) -> list[str]:
    # Basic auth and persistence come from the settings through the environment (workers/__main__.py).
    return [sys.executable, "-m", "workers", "flower", f"--address={settings.host}", f"--port={settings.flower_port}"]
