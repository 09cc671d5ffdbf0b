"""Queue metrics on every broker the project runs on (issue 27): `make run`'s filesystem
transport had none, so ImagepipeQueueStale and ImagepipeQueueGrowing could never fire there."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from celeryconfig import filesystem_queue_folder, prepare_broker
from services.infra.metrics import QueueCollector
from services.infra.queue import CeleryQueue
from services.infra.settings import Settings


def _scrape(collector) -> dict[tuple, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_filesystem_broker_reports_depth_and_oldest_age(tmp_path):
    settings = Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path), "JWT_SECRET": "j" * 40})
    assert settings.broker_url == "filesystem://"
    prepare_broker(settings)
    queue = CeleryQueue(settings)  # the API's own producer; no worker takes the messages
    queue.process_images([1, 2])
    time.sleep(1.1)
    queue.process_images([3])
    queue.scan_orphans("scan-1")
    collector = QueueCollector(
        settings.broker_url,
        [settings.task_queue, settings.migration_queue, settings.maintenance_queue],
        folder=filesystem_queue_folder(settings),
    )
    got = _scrape(collector)
    assert got[("imagepipe_broker_up", ())] == 1
    assert got[("imagepipe_queue_depth", (("queue", settings.task_queue),))] == 3
    assert got[("imagepipe_queue_depth", (("queue", settings.maintenance_queue),))] == 1
    assert got[("imagepipe_queue_depth", (("queue", settings.migration_queue),))] == 0
    assert 1.0 <= got[("imagepipe_queue_oldest_message_age_seconds", (("queue", settings.task_queue),))] < 60
    assert got[("imagepipe_queue_oldest_message_age_seconds", (("queue", settings.migration_queue),))] == 0


def test_an_unreadable_broker_says_down(tmp_path):
    gone = QueueCollector("filesystem://", ["images"], folder=tmp_path / "no-such-folder")
    assert _scrape(gone) == {("imagepipe_broker_up", ()): 0}
    dead_redis = QueueCollector("redis://127.0.0.1:1/0", ["images"], timeout_s=0.5)
    assert _scrape(dead_redis) == {("imagepipe_broker_up", ()): 0}
