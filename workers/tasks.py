"""Thin tasks: ids in, a service call, done."""
from __future__ import annotations

import logging

from billiard.exceptions import WorkerLostError
from celery import Task, signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
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
        # Celery also calls this in the worker's main process when the hard time limit killed
        # the child (libvips busy in C code cannot see the soft limit's signal).
        if isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded):
            code, message = "processing_timeout", f"processing took longer than its time limit ({exc})"
        elif isinstance(exc, TransientStorageError):
            code, message = "storage_unavailable", f"{type(exc).__name__}: {exc}"
        else:
            code, message = "processing_error", f"{type(exc).__name__}: {exc}"
        _fail_for_good(args[0], code, message)


def _fail_for_good(image_id: int, code: str, message: str) -> None:
    with session_scope(runtime.get().sessions) as session:
        if process.fail_unfinished(session, image_id, code, message):
            log.error("image %s failed for good: %s", image_id, message, extra={"code": code})
        _notify_jobs(session, image_id)


@signals.task_failure.connect
def _worker_lost_for_good(sender=None, task_id=None, exception=None, args=None, **_kwargs) -> None:
    """The worker process died under this image on every try (task_retry_on_worker_lost spent
    the retries): Celery reports it from the main process, without calling on_failure."""
    if getattr(sender, "name", None) != celeryconfig.PROCESS_IMAGE_TASK or not isinstance(exception, WorkerLostError):
        return
    _fail_for_good(args[0], "processing_error",
                   "the worker process died on every try at this image (killed for memory, a crash in a "
                   f"decoder, or a shutdown): {exception}")


@celery_app.task(
    name=celeryconfig.PROCESS_IMAGE_TASK,
    base=ProcessImageTask,
    autoretry_for=(TransientStorageError, OperationalError),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=celeryconfig.get_settings().task_max_retries,
    default_retry_delay=5,  # after a lost worker process (transient errors back off on their own)
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
