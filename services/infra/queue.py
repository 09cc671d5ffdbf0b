"""The task queue as the services see it: messages sent by name. The API and the CLI
never import the worker's code; the task names in celeryconfig are the contract."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import celeryconfig


def _headers() -> dict:
    """On every message: when it was sent (the queue's oldest-message age, services/infra/metrics.py)."""
    return {"sent_at": round(time.time(), 3)}


class QueueUnavailable(Exception):
    """The broker did not take the message(s). `image_ids`: images that were not queued."""

    def __init__(self, message: str, image_ids: list[int] | None = None):
        super().__init__(message)
        self.image_ids = list(image_ids or [])


class TaskQueue(Protocol):
    def process_images(self, image_ids: list[int]) -> None: ...

    def delete_image(self, image_id: int) -> None: ...

    def deliver_callback(self, job_id: str) -> None: ...

    def migrate_images(self, run_id: str, image_ids: list[int]) -> None: ...

    def regenerate_renditions(self, image_ids: list[int]) -> None: ...

    def scan_orphans(self, scan_id: str) -> None: ...

    def ping(self) -> None: ...


class CeleryQueue:
    """Sends task messages with a producer-only Celery app configured from the settings."""

    def __init__(self, settings, app=None):
        from celery import Celery

        self.queue = settings.task_queue
        self.migration_queue = settings.migration_queue
        self.maintenance_queue = settings.maintenance_queue
        self.timeout_s = settings.broker_timeout_s
        if app is None:
            celeryconfig.prepare_broker(settings)
            app = Celery("imagepipe-producer", set_as_current=False)
            conf = celeryconfig.build(settings)
            if "broker_transport_options" in conf:  # one try to connect, not a loop of them (see _publish)
                conf["broker_transport_options"] = {**conf["broker_transport_options"], "max_retries": 0}
            app.conf.update(conf)
        self.app = app

    def process_images(self, image_ids: list[int]) -> None:
        """One task per image, sent as a Celery group: a bulk upload fans out across workers."""
        from celery import group

        if not image_ids:
            return
        headers = _headers()
        sigs = [
            self.app.signature(celeryconfig.PROCESS_IMAGE_TASK, args=[i], queue=self.queue, headers=headers) for i in image_ids
        ]
        self._publish(
            f"{len(image_ids)} task(s)", lambda: (sigs[0] if len(sigs) == 1 else group(sigs)).apply_async(retry=False), image_ids
        )

    def delete_image(self, image_id: int) -> None:
        self._send(celeryconfig.DELETE_IMAGE_TASK, image_id)

    def migrate_images(self, run_id: str, image_ids: list[int]) -> None:
        """One task per legacy image, on the migration queue (a page at a time: the caller pages)."""
        self._send_many(celeryconfig.MIGRATE_IMAGE_TASK, [[run_id, i] for i in image_ids], self.migration_queue)

    def regenerate_renditions(self, image_ids: list[int]) -> None:
        """One task per image, on the low-priority maintenance queue."""
        self._send_many(celeryconfig.REGENERATE_TASK, [[i] for i in image_ids], self.maintenance_queue)

    def scan_orphans(self, scan_id: str) -> None:
        self._send_many(celeryconfig.SCAN_ORPHANS_TASK, [[scan_id]], self.maintenance_queue)

    def _send_many(self, name: str, arg_lists: list[list], queue: str) -> None:
        def send():
            with self.app.producer_or_acquire() as producer:
                for args in arg_lists:
                    self.app.send_task(name, args=args, queue=queue, producer=producer, headers=_headers(), retry=False)

        self._publish(name, send)

    def deliver_callback(self, job_id: str) -> None:
        self._send(celeryconfig.DELIVER_CALLBACK_TASK, job_id)

    def _send(self, name: str, *args) -> None:
        self._publish(name, lambda: self.app.send_task(name, args=list(args), queue=self.queue, headers=_headers(), retry=False))

    def _publish(self, what: str, send: Callable[[], object], image_ids: list[int] | None = None) -> None:
        """Send without kombu's retry loop, whose reconnects are not bounded in time (with one
        retry, a frozen Redis held a publish for six broker timeouts: 18 s). Sent again once, only
        if the first try failed fast, as on a pooled connection that a broker restart closed; a
        try that ran into a timeout means the broker hangs, and the caller hears so at once. A
        message sent again after a partial send repeats tasks, which are idempotent."""
        for attempt in (1, 2):
            started = time.monotonic()
            try:
                send()
                return
            except Exception as exc:  # kombu's OperationalError, or the transport's own (a Redis timeout)
                if attempt == 2 or time.monotonic() - started >= self.timeout_s / 2:
                    raise QueueUnavailable(f"the broker did not take {what}: {exc}", image_ids) from exc

    def ping(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
