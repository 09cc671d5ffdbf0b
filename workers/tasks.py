"""Thin tasks: ids in, a service call, done."""
from __future__ import annotations

import logging

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

import celeryconfig
from db.session import session_scope
from services import process
from storage import TransientStorageError

from . import runtime
from .app import celery_app

log = logging.getLogger(__name__)


class ProcessImageTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Retries are exhausted (or the error was not transient): never leave an image spinning.
        code = "processing_timeout" if isinstance(exc, SoftTimeLimitExceeded) else (
            "storage_unavailable" if isinstance(exc, TransientStorageError) else "processing_error")
        with session_scope(runtime.get().sessions) as session:
            if process.fail_unfinished(session, args[0], code, f"{type(exc).__name__}: {exc}"):
                log.error("image %s failed for good: %s", args[0], exc)


@celery_app.task(
    name=celeryconfig.PROCESS_IMAGE_TASK,
    base=ProcessImageTask,
    autoretry_for=(TransientStorageError, OperationalError),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=celeryconfig.get_settings().task_max_retries,
)
def process_image(image_id: int) -> str:
    rt = runtime.get()
    with session_scope(rt.sessions) as session:
        return process.process_image(session, rt.store, rt.settings, image_id)
