"""WSGI entry point: `gunicorn api.wsgi:app`. imagepipe's log lines are JSON here."""
from services.logs import configure_json_logging

from .app import create_app

configure_json_logging()
app = create_app()
