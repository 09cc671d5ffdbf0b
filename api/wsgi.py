"""WSGI entry point: gunicorn calls `api.wsgi:app_from_environment()` (cli/commands.py) in each
process it starts. Every log line of the process is JSON (gunicorn's own with
`--logger-class api.gunicorn_log.JsonLogger`)."""

from __future__ import annotations

from flask import Flask


def app_from_environment() -> Flask:
    from services.infra.logs import configure_json_logging

    from .app import create_app

    configure_json_logging()
    return create_app()
