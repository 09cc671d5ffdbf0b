"""Thin tasks: ids in, a service call in a unit of work, done. Registered on the app by the
worker's factory, with the options that depend on settings."""

from __future__ import annotations

import logging

from billiard.exceptions import WorkerLostError
from celery import Celery, Task, signals
from celery.exceptions import Reject, SoftTimeLimitExceeded, TimeLimitExceeded
from sqlalchemy.exc import OperationalError

import celeryconfig
from db.models import Image
from services.images import manage, process, renditions
from services.images.lifecycle import FAILURE_MESSAGES, fail_unfinished
from services.infra import cdn
from services.infra.metrics import metrics
from services.infra.settings import Settings
from services.jobs import callbacks
from services.legacy import move as migrate
from services.storage_admin import orphans, sweeps
from services.syndication import imports
from storage import StorageError, TransientStorageError

from . import runtime
from .schedule import QueuedMarks

log = logging.getLogger(__name__)
SCAN_TIME_LIMIT_S = 6 * 3600


class ImageFailed(Exception):
    """The image was refused (corrupt, too large ...) and recorded as failed: raised so that
    Celery reports the task as FAILURE (Flower's failed list is the list of failed images),
    declared in the task's `throws`: logged without a traceback, never retried, acked as before."""

    def __init__(self, image_id: int, code: str, message: str):
        super().__init__(f"image {image_id} failed: {code}: {message}")
        self.image_id, self.code, self.message = image_id, code, message

    def __reduce__(self):  # crosses from the pool process to the main one pickled
        return type(self), (self.image_id, self.code, self.message)


class ImageWorkTask(Task):
    """An image's task whose retry could not be sent (the broker unreachable from this host: its
    link down) goes back to the queue instead of being dropped, as Celery would do (Reject with
    requeue=False): the message is put back, or, if the broker cannot be told either, delivered
    again after BROKER_VISIBILITY_TIMEOUT_S. Found by tests/hosts (a worker host cut off)."""

    def retry(self, *args, **kwargs):
        try:
            return super().retry(*args, **kwargs)
        except Reject as exc:
            if exc.requeue:
                raise
            log.warning("could not send the retry of %s (%s): the message goes back to the queue", self.name, exc.reason)
            raise Reject(exc.reason, requeue=True) from exc


class ProcessImageTask(ImageWorkTask):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, ImageFailed):  # already recorded
            return
        # Retries are exhausted (or the error was not transient): never leave an image spinning.
        # Celery also calls this in the worker's main process when the hard time limit killed
        # the child (libvips busy in C code cannot see the soft limit's signal).
        fail_for_good(args[0], failure_code(exc), f"{type(exc).__name__}: {exc}")


def failure_code(exc: BaseException) -> str:
    """The code a task failed for good with; its fixed text is what the client reads."""
    if isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded):
        return "processing_timeout"
    if isinstance(exc, TransientStorageError):
        return "storage_unavailable"
    if isinstance(exc, ImageFailed):
        return exc.code
    return "processing_error"


def fail_for_good(image_id: int, code: str, details: str) -> None:
    """The client reads the code's fixed text; `details` are for the log only."""
    rt = runtime.get()
    with rt.unit_of_work() as session:
        if fail_unfinished(session, rt.queue, image_id, code):
            log.error("image %s failed for good: %s", image_id, details, extra={"code": code})


def _worker_lost_for_good(sender=None, task_id=None, exception=None, args=None, **_kwargs) -> None:
    """The worker process died under this image on every try (task_retry_on_worker_lost spent
    the retries): Celery reports it from the main process, without calling on_failure."""
    if getattr(sender, "name", None) != celeryconfig.PROCESS_IMAGE_TASK or not isinstance(exception, WorkerLostError):
        return
    fail_for_good(
        args[0],
        "processing_error",
        "the worker process died on every try at this image (killed for memory, a crash in a "
        f"decoder, or a shutdown): {exception}",
    )


def process_image(image_id: int) -> str:
    rt = runtime.get()
    # An imported image is downloaded first (services/syndication/imports.py), on the same try.
    refused = imports.fetch_source(rt.unit_of_work, rt.store, rt.settings, rt.queue, image_id)
    if refused is not None:
        raise ImageFailed(image_id, refused.code, refused.message)
    outcome = process.run(rt.unit_of_work, rt.store, rt.settings, rt.queue, image_id)
    if outcome == process.Outcome.FAILED:
        with rt.unit_of_work() as session:
            image = session.get(Image, image_id)
            code, message = (image.error_code, image.error_message) if image else (None, None)
        raise ImageFailed(image_id, code or "processing_error", message or "")
    return outcome


def delete_image(image_id: int) -> str:
    rt = runtime.get()
    with rt.unit_of_work() as session:
        return manage.purge_image(session, rt.store, image_id)


def deliver_callback(self: Task, job_id: str) -> str:
    rt = runtime.get()
    last = self.request.retries + 1 >= rt.settings.callback_max_attempts
    try:
        outcome = callbacks.deliver(rt.unit_of_work, rt.settings, job_id, final_attempt=last)
        if outcome in (callbacks.DeliveryOutcome.DELIVERED, callbacks.DeliveryOutcome.FAILED):
            metrics().callbacks.labels(str(outcome)).inc()
        return outcome
    except callbacks.CallbackFailed as exc:
        metrics().callbacks.labels("retrying").inc()
        delay = min(600, 2 ** (self.request.retries + 1))
        log.warning("callback for job %s failed (attempt %s): %s; retrying in %ss", job_id, self.request.retries + 1, exc, delay)
        raise self.retry(exc=exc, countdown=delay, max_retries=rt.settings.callback_max_attempts) from exc


class MigrateImageTask(ImageWorkTask):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        rt = runtime.get()
        code = failure_code(exc)
        with rt.unit_of_work() as session:
            migrate.fail_item(session, args[0], args[1], code, FAILURE_MESSAGES[code])
        log.error("migration of image %s failed for good: %s: %s", args[1], type(exc).__name__, exc, extra={"code": code})


def migrate_image(run_id: str, image_id: int) -> str:
    rt = runtime.get()
    with rt.unit_of_work() as session:
        return migrate.migrate_one(session, rt.store, rt.settings, run_id, image_id)


def regenerate_renditions(image_id: int) -> str:
    rt = runtime.get()
    return renditions.regenerate(rt.unit_of_work, rt.store, rt.settings, image_id)


def scan_orphans(scan_id: str) -> dict | None:
    rt = runtime.get()
    scan = orphans.run_scan(rt.unit_of_work, rt.store, rt.queue, scan_id)
    return None if scan is None else {"status": scan.status}


def scheduled_orphan_scan() -> dict | None:
    """Celery beat's daily scan: a dry run over the whole bucket (its report says what a
    `imagepipe orphans --delete` would remove)."""
    rt = runtime.get()
    with rt.unit_of_work() as session:
        scan_id = orphans.create_scan(session, dry_run=True, grace_s=rt.settings.orphan_grace_s, requested_by="schedule").id
    return scan_orphans(scan_id)


def sweep_task(self: Task) -> dict:
    """One sweep, named by the task (imagepipe.sweep_<step>), in its own unit of work; see
    services/storage_admin/sweeps.py for why two at once are safe."""
    rt = runtime.get()
    QueuedMarks.for_settings(rt.settings).release(self.name)  # started: beat may send the next one
    with rt.unit_of_work() as session:
        report = sweeps.sweep(session, rt.store, rt.queue, **sweeps.options(rt.settings), only=self.name.rsplit("_", 1)[1])
    return {k: v for k, v in report.as_dict().items() if v}


def send_cdn_invalidations(self: Task) -> dict:
    """Send the CDN invalidation outbox (services/infra/cdn.py); CloudFront's throttling retries
    with backoff, and the paths wait in the outbox meanwhile."""
    rt = runtime.get()
    QueuedMarks.for_settings(rt.settings).release(self.name)
    report = cdn.send_pending(rt.unit_of_work, rt.settings, on_sent=metrics().cdn_invalidated_paths.inc)
    return report.as_dict()


def ingest_access_logs(self: Task, location: str | None = None) -> dict:
    """New files under ACCESS_LOG_PREFIX (or `location`) read into the egress figures
    (services/delivery/usage.py); a file is recorded with its counts, so a run cut short is simply
    continued by the next one."""
    from services.delivery import usage

    rt = runtime.get()
    QueuedMarks.for_settings(rt.settings).release(self.name)
    location = location or rt.settings.access_log_prefix
    if not location:
        return {"skipped": "ACCESS_LOG_PREFIX is not set"}
    return usage.ingest(rt.unit_of_work, usage.bucket_source(rt.settings, location)).as_dict()


def sync_feed(url: str, full: bool | None = None) -> dict:
    """One run over a RESO Media feed (services/syndication/feed.py): new and changed photos are
    queued for download, deletions applied; a run that fails part-way is resumed by the next."""
    from services.syndication import feed

    rt = runtime.get()
    return feed.sync(rt.unit_of_work, rt.store, rt.settings, rt.queue, url, full=full).as_dict()


def register(app: Celery, settings: Settings) -> None:
    # An image's work (processing it, migrating it) retries transient store and database errors
    # with jittered backoff, TASK_MAX_RETRIES times, then fails it for good (on_failure).
    image_work = dict(
        autoretry_for=(TransientStorageError, OperationalError),
        retry_backoff=2,
        retry_backoff_max=120,
        retry_jitter=True,
        max_retries=settings.task_max_retries,
    )
    app.task(migrate_image, name=celeryconfig.MIGRATE_IMAGE_TASK, base=MigrateImageTask, **image_work)
    app.task(
        process_image,
        name=celeryconfig.PROCESS_IMAGE_TASK,
        base=ProcessImageTask,
        throws=(ImageFailed,),  # an expected failure: FAILURE in Flower, no traceback in the log
        default_retry_delay=5,  # after a lost worker process (transient errors back off on their own)
        **image_work,
    )
    app.task(
        delete_image,
        name=celeryconfig.DELETE_IMAGE_TASK,
        base=ImageWorkTask,
        autoretry_for=(StorageError, OperationalError),
        retry_backoff=2,
        retry_backoff_max=300,
        retry_jitter=True,
        max_retries=20,  # about an hour of trying; the image stays hidden (`deleting`) meanwhile
    )
    app.task(
        deliver_callback,
        name=celeryconfig.DELIVER_CALLBACK_TASK,
        bind=True,
        acks_late=False,  # a redelivered message would send the callback twice; retries are explicit
    )
    app.task(regenerate_renditions, name=celeryconfig.REGENERATE_TASK, base=ImageWorkTask, **image_work)
    # A scan lists the whole bucket: longer than an image's limits, and acknowledged on receipt
    # (a redelivery would start a second scan; a scan left `running` by a lost worker is simply
    # started again by hand or by the next day's schedule).
    long = dict(acks_late=False, soft_time_limit=SCAN_TIME_LIMIT_S - 60, time_limit=SCAN_TIME_LIMIT_S)
    app.task(scan_orphans, name=celeryconfig.SCAN_ORPHANS_TASK, **long)
    app.task(scheduled_orphan_scan, name=celeryconfig.SCHEDULED_SCAN_TASK, **long)
    for name in celeryconfig.SWEEP_TASKS:
        app.task(sweep_task, name=name, bind=True, autoretry_for=(StorageError, OperationalError), retry_backoff=5, max_retries=3)
    app.task(
        send_cdn_invalidations,
        name=celeryconfig.CDN_INVALIDATE_TASK,
        bind=True,
        autoretry_for=(cdn.Throttled, StorageError, OperationalError),
        retry_backoff=30,
        retry_backoff_max=600,
        retry_jitter=True,
        max_retries=8,
    )
    app.task(
        ingest_access_logs,
        name=celeryconfig.USAGE_INGEST_TASK,
        bind=True,
        acks_late=False,  # a redelivery would only find the files already read
        autoretry_for=(StorageError, OperationalError),
        retry_backoff=30,
        max_retries=3,
    )
    app.task(
        sync_feed,
        name=celeryconfig.FEED_SYNC_TASK,
        acks_late=False,  # a redelivery would only start the run again from the watermark
        autoretry_for=(StorageError, OperationalError),
        retry_backoff=30,
        max_retries=3,
    )
    signals.task_failure.connect(_worker_lost_for_good, weak=False)
