"""Task queues for tests of the API alone: one that records what it was asked to send, (the real
producer, CeleryQueue, is tested against a broker that refuses connections)."""

from __future__ import annotations


class RecordingQueue:
    def __init__(self, images: list[int] | None = None):
        self.images = images if images is not None else []
        self.deletes: list[int] = []
        self.callbacks: list[str] = []
        self.migrations: list[tuple[str, int]] = []
        self.regenerations: list[int] = []
        self.scans: list[str] = []

    def process_images(self, image_ids: list[int]) -> None:
        self.images.extend(image_ids)

    def delete_image(self, image_id: int) -> None:
        self.deletes.append(image_id)

    def deliver_callback(self, job_id: str) -> None:
        self.callbacks.append(job_id)

    def migrate_images(self, run_id: str, image_ids: list[int]) -> None:
        self.migrations.extend((run_id, i) for i in image_ids)

    def regenerate_renditions(self, image_ids: list[int]) -> None:
        self.regenerations.extend(image_ids)

    def scan_orphans(self, scan_id: str) -> None:
        self.scans.append(scan_id)

    def ping(self) -> None:
        pass
