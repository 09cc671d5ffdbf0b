"""WSGI entry point: `gunicorn api.wsgi:app`. Every log line of the process is JSON here (gunicorn's
own with `--logger-class api.gunicorn_log.JsonLogger`, as `imagepipe serve` runs it)."""
from services.logs import configure_json_logging

from .app import create_app

configure_json_logging()
app = create_app()
