"""One JSON object per log line, with the request's context, for log pipelines to index."""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Attributes a record may carry (via `extra=`) that belong in the line.
CONTEXT_FIELDS = ("request_id", "method", "path", "status", "code", "category", "user_id",
                  "entity_type", "entity_id", "image_id", "job_id", "upload_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    """imagepipe's own loggers write JSON lines to stderr (idempotent)."""
    logger = logging.getLogger("imagepipe")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
