"""gunicorn's logger class with JSON lines: `gunicorn --logger-class api.gunicorn_log.JsonLogger`.

gunicorn keeps its error and access logs on loggers of its own, with their own handlers and
formats; this swaps the formats for services.infra.logs.JsonFormatter, so an access line carries
method, path, status, bytes, duration and the X-Request-ID as fields."""

from __future__ import annotations

from gunicorn.glogging import Logger

from services.infra.logs import use_json


class JsonLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        use_json(self.error_log)
        use_json(self.access_log)
