"""The API's side of the queue: send task messages by name. The API never imports the
worker's code; the task name in celeryconfig is the contract between them."""
from __future__ import annotations

from celery import Celery

import celeryconfig
from services.config import Settings


class CeleryProducer:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.app = Celery("imagepipe-api", set_as_current=False)
        self.app.conf.update(celeryconfig.build(settings))

    def enqueue(self, image_ids: list[int]) -> None:
        for image_id in image_ids:
            self.app.send_task(celeryconfig.PROCESS_IMAGE_TASK, args=[image_id], queue=self.settings.task_queue)

    def ping(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
