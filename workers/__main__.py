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
    from services.config import ConfigError, Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from .app import create_worker_app

    app = create_worker_app(settings)
    return app.start(list(sys.argv[1:] if argv is None else argv)) or 0


if __name__ == "__main__":
    sys.exit(main())
