"""The API's side of the queue: send task messages by name. The API never imports the
worker's code; the task names in celeryconfig are the contract between them."""
from __future__ import annotations

from celery import Celery, group

import celeryconfig
from services.config import Settings


class CeleryProducer:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.app = Celery("imagepipe-api", set_as_current=False)
        self.app.conf.update(celeryconfig.build(settings))

    def enqueue(self, image_ids: list[int]) -> None:
        """One task per image, sent as a Celery group: a bulk upload fans out across workers."""
        if not image_ids:
            return
        sigs = [self.app.signature(celeryconfig.PROCESS_IMAGE_TASK, args=[i], queue=self.settings.task_queue)
                for i in image_ids]
        if len(sigs) == 1:
            sigs[0].apply_async()
        else:
            group(sigs).apply_async()

    def send(self, task_name: str, *args) -> None:
        self.app.send_task(task_name, args=list(args), queue=self.settings.task_queue)

    def ping(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
