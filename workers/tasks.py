"""Thin tasks: ids in, a service call, done."""
from __future__ import annotations

import logging

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

import celeryconfig
from db.session import session_scope
from services import callbacks, manage, process
from storage import StorageError, TransientStorageError

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
            _notify_jobs(session, args[0])


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
        outcome = process.process_image(session, rt.store, rt.settings, image_id)
        if outcome in ("ready", "failed"):
            _notify_jobs(session, image_id)
        return outcome


def _notify_jobs(session, image_id: int) -> None:
    """Jobs this image has just finished get their callback sent (by its own retrying task)."""
    for job_id in callbacks.due_jobs(session, image_id):
        deliver_callback.delay(job_id)


@celery_app.task(
    name=celeryconfig.DELETE_IMAGE_TASK,
    autoretry_for=(StorageError, OperationalError),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=20,  # about an hour of trying; the image stays hidden (`deleting`) meanwhile
)
def delete_image(image_id: int) -> str:
    rt = runtime.get()
    with session_scope(rt.sessions) as session:
        return manage.purge_image(session, rt.store, image_id)


@celery_app.task(
    name=celeryconfig.DELIVER_CALLBACK_TASK,
    bind=True,
    acks_late=False,  # a redelivered message would send the callback twice; retries are explicit
)
def deliver_callback(self, job_id: str) -> str:
    rt = runtime.get()
    last = self.request.retries + 1 >= rt.settings.callback_max_attempts
    with session_scope(rt.sessions) as session:
        try:
            return callbacks.deliver(session, rt.settings, job_id, final_attempt=last)
        except callbacks.CallbackFailed as exc:
            delay = min(600, 2 ** (self.request.retries + 1))
            log.warning("callback for job %s failed (attempt %s): %s; retrying in %ss",
                        job_id, self.request.retries + 1, exc, delay)
            raise self.retry(exc=exc, countdown=delay, max_retries=rt.settings.callback_max_attempts) from exc
