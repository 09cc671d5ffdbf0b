"""The task queue as the services see it: three messages, sent by name. The API and the CLI
never import the worker's code; the task names in celeryconfig are the contract."""
from __future__ import annotations

from typing import Protocol

import celeryconfig


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

    def ping(self) -> None: ...


class CeleryQueue:
    """Sends task messages with a producer-only Celery app configured from the settings."""

    def __init__(self, settings, app=None):
        from celery import Celery

        self.queue = settings.task_queue
        self.migration_queue = settings.migration_queue
        if app is None:
            celeryconfig.prepare_broker(settings)
            app = Celery("imagepipe-producer", set_as_current=False)
            app.conf.update(celeryconfig.build(settings))
        self.app = app

    def process_images(self, image_ids: list[int]) -> None:
        """One task per image, sent as a Celery group: a bulk upload fans out across workers."""
        from celery import group

        if not image_ids:
            return
        sigs = [self.app.signature(celeryconfig.PROCESS_IMAGE_TASK, args=[i], queue=self.queue) for i in image_ids]
        try:
            (sigs[0] if len(sigs) == 1 else group(sigs)).apply_async()
        except Exception as exc:  # kombu's OperationalError, or the transport's own (a Redis timeout)
            raise QueueUnavailable(f"the broker did not take {len(image_ids)} task(s): {exc}", image_ids) from exc

    def delete_image(self, image_id: int) -> None:
        self._send(celeryconfig.DELETE_IMAGE_TASK, image_id)

    def migrate_images(self, run_id: str, image_ids: list[int]) -> None:
        """One task per legacy image, on the migration queue (a page at a time: the caller pages)."""
        try:
            with self.app.producer_or_acquire() as producer:
                for image_id in image_ids:
                    self.app.send_task(celeryconfig.MIGRATE_IMAGE_TASK, args=[run_id, image_id],
                                       queue=self.migration_queue, producer=producer)
        except Exception as exc:  # as above
            raise QueueUnavailable(f"the broker did not take the migration tasks: {exc}") from exc

    def deliver_callback(self, job_id: str) -> None:
        self._send(celeryconfig.DELIVER_CALLBACK_TASK, job_id)

    def _send(self, name: str, *args) -> None:
        try:
            self.app.send_task(name, args=list(args), queue=self.queue)
        except Exception as exc:  # as above
            raise QueueUnavailable(f"the broker did not take {name}: {exc}") from exc

    def ping(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
