"""`python -m workers <celery command> ...`: the worker (and Flower) process's entry point.

Reads the settings, builds the app with its factory, then hands the rest of the command line to
Celery's own (`python -m workers worker -Q images -c 2`, `python -m workers flower`)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    # One libvips thread per worker process: on small machines processes scale better than
    # threads (measured on a 2-core machine: 1.7x the throughput of one process with two
    # threads). Must be set before pyvips loads.
    os.environ.setdefault("VIPS_CONCURRENCY", "1")
    from services.infra.settings import ConfigError, Settings

    args = list(sys.argv[1:] if argv is None else argv)
    # What the process needs in production (services/infra/settings.py ROLES); other Celery
    # commands (inspect, purge ...) talk to the broker as a worker would.
    role = {"beat": "beat", "flower": "flower"}.get(args[0] if args else "", "worker")
    try:
        settings = Settings.from_env(role=role)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args[:1] == ["worker"]:
        # Before prometheus-client is imported: the pool's processes keep their values in files
        # that the main process serves on WORKER_METRICS_PORT (services/infra/metrics.py).
        from services.infra.metrics import use_multiprocess_dir

        from .memory import limit_arenas

        use_multiprocess_dir(settings.metrics_root, "worker")
        limit_arenas()  # before the pool forks and any thread starts (workers/memory.py)
    if args[:1] == ["flower"]:
        # Flower only behind basic auth, its history kept across restarts. Given through Flower's
        # own environment variables, so the password is not on the command line (ps shows that).
        try:
            user, password = settings.flower_credentials()
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        _flower_metrics_behind_auth()
        os.environ.update(
            {
                "FLOWER_BASIC_AUTH": f"{user}:{password}",
                "FLOWER_PERSISTENT": "True",
                "FLOWER_DB": str(settings.var_dir / "flower.db"),
                "FLOWER_STATE_SAVE_INTERVAL": "60000",
            }
        )
    from .app import create_worker_app

    app = create_worker_app(settings)
    return app.start(args) or 0


def _flower_metrics_behind_auth() -> None:
    """Flower serves its /metrics without asking for the basic auth its pages need: the same
    check as its pages (tornado's `authenticated`, Flower's get_current_user: 401 without the
    user and password). Prometheus sends them with `basic_auth` in its scrape config."""
    import tornado.web
    from flower.views import monitor

    if not getattr(monitor.Metrics.get, "_imagepipe_guarded", False):
        guarded = tornado.web.authenticated(monitor.Metrics.get)
        guarded._imagepipe_guarded = True  # type: ignore[attr-defined]
        monitor.Metrics.get = guarded


if __name__ == "__main__":
    sys.exit(main())
