"""One JSON object per log line, with the request's or task's context, for log pipelines to
index. Every process imagepipe starts writes them: the API under gunicorn (its error and access
logs included, api/gunicorn_log.py), the worker (Celery's own lines included, workers/app.py)."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime

# Attributes a record may carry (via `extra=`) that belong in the line.
CONTEXT_FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "code",
    "category",
    "user_id",
    "entity_type",
    "entity_id",
    "image_id",
    "job_id",
    "upload_id",
)
# gunicorn's access-log atoms (the record's args) and the names they get in the line.
ACCESS_ATOMS = {
    "h": "remote",
    "m": "method",
    "U": "path",
    "q": "query",
    "s": "status",
    "B": "bytes",
    "M": "duration_ms",
    "{x-request-id}o": "request_id",
    "a": "user_agent",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            line.update(_access_fields(record.args))
            line["msg"] = f"{line.get('method', '-')} {line.get('path', '-')} {line.get('status', '-')}"
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        line.update(_task_fields())
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# Query parameters that carry a URL's signature: a log line must not be a working link.
_SIGNATURE_PARAMS = re.compile(r"(?i)(^|&)(signature|x-amz-signature|x-amz-credential|policy|key-pair-id)=[^&]*")


def redact_query(query: str) -> str:
    return _SIGNATURE_PARAMS.sub(lambda m: f"{m.group(1)}{m.group(2)}=REDACTED", query)


def _access_fields(atoms: Mapping) -> dict:
    out = {}
    for atom, name in ACCESS_ATOMS.items():
        value = atoms.get(atom)
        if value in (None, "-", ""):
            continue
        if name == "query":
            value = redact_query(str(value))
        out[name] = int(value) if name in ("status", "bytes", "duration_ms") and str(value).isdigit() else value
    return out


_context: ContextVar[dict | None] = ContextVar("imagepipe_log_context", default=None)


def bind(**fields) -> None:
    """Add fields to every line this task (or request) writes from now on (`clear` ends it)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def clear() -> None:
    _context.set(None)


def _task_fields() -> dict:
    """The Celery task a worker line was written in, if any: its name, id and attempt, and what
    the task bound (the image, its job)."""
    out = dict(_context.get() or {})
    if "celery" not in sys.modules:
        return out
    from celery._state import get_current_task

    task = get_current_task()
    if task is None or task.request is None or not task.request.id:
        return out
    return {"task": task.name, "task_id": task.request.id, "attempt": (task.request.retries or 0) + 1, **out}


def use_json(logger: logging.Logger) -> None:
    """JSON lines from the handlers a framework (Celery, gunicorn) has set on `logger`."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())


# Libraries whose INFO lines are debugging chatter (libvips narrates every resize).
CHATTY = {"pyvips": logging.WARNING}


def quiet_chatty_libraries() -> None:
    for name, level in CHATTY.items():
        logging.getLogger(name).setLevel(level)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Every log line of this process as JSON on stderr: imagepipe's own loggers and the
    libraries' alike (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    quiet_chatty_libraries()
