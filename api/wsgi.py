"""WSGI entry point: `gunicorn api.wsgi:app`."""
from .app import create_app

app = create_app()
