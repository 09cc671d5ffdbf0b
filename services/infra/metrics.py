"""Prometheus metrics of the API and the workers (docs/deploy.md "Metrics").

Both run several processes (gunicorn workers, Celery's prefork pool), so metrics use
prometheus-client's **multiprocess mode**: each process writes its values to memory-mapped
files under PROMETHEUS_MULTIPROC_DIR, and one endpoint per host sums them — the API's
`GET /metrics`, and the worker's main process on WORKER_METRICS_PORT. A process that exits
leaves its counters in the sum (nothing resets when gunicorn or Celery replaces a process).
The directory is set before prometheus-client is imported (`use_multiprocess_dir`), wiped when
the API's master or the worker's main process starts, and must be one per service and host.

Metrics are created on first use, not at import (nothing happens at import).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: from a thumbnail's store call to a 100 MP decode under load.
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Seconds a photo takes to load in a visitor's browser (services/delivery/rum.py).
LOAD_SECONDS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2.5, 4, 6, 10, 20)
MEGAPIXEL_BUCKETS = ((1, "<1"), (4, "1-4"), (12, "4-12"), (24, "12-24"), (50, "24-50"))


def megapixel_bucket(width: int, height: int) -> str:
    mp = width * height / 1e6
    for limit, name in MEGAPIXEL_BUCKETS:
        if mp < limit:
            return name
    return ">50"


_multiprocess_dir: Path | None = None


def use_multiprocess_dir(base: Path, service: str) -> Path:
    """In the process that starts the others (gunicorn's master, Celery's main process), before
    prometheus-client is first imported (it chooses where values live at import): values go to
    files under `base/<service>-<this pid>`, a folder of this instance's own, so two workers (or
    two APIs) on one host never empty each other's. Folders of instances that are no longer
    running are removed. The processes it forks inherit the choice."""
    global _multiprocess_dir
    base.mkdir(parents=True, exist_ok=True)
    for old in base.glob(f"{service}-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    path = base / f"{service}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    os.environ.update({MULTIPROC_ENV: str(path)})  # prometheus-client's own variable
    _multiprocess_dir = path
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiprocess() -> bool:
    return _multiprocess_dir is not None


class Metrics:
    def __init__(self):
        from prometheus_client import Counter, Histogram

        self.uploads = Counter(
            "imagepipe_uploads_total",
            "Files offered to the API, by entity type and outcome (accepted, or the refusal's error code)",
            ["entity_type", "outcome"],
        )
        self.images_finished = Counter(
            "imagepipe_images_finished_total",
            "Images that finished processing, by outcome (ready, failed) and error code",
            ["outcome", "code"],
        )
        self.stage_seconds = Histogram(
            "imagepipe_processing_seconds",
            "Time in each stage of processing an image"
            " (fetch, probe, render and its steps decode, resize, encode_<format>,"
            " placeholders; store, commit, total)",
            ["stage"],
            buckets=SECONDS,
        )
        self.render_seconds = Histogram(
            "imagepipe_render_seconds", "Rendering time by the input's megapixels", ["megapixels"], buckets=SECONDS
        )
        self.rendition_bytes = Counter("imagepipe_rendition_bytes_total", "Bytes of renditions written, by format", ["format"])
        self.storage_ops = Counter(
            "imagepipe_storage_operations_total",
            "Object store calls by operation and outcome (ok, not_found, transient, error)",
            ["op", "outcome"],
        )
        self.storage_seconds = Histogram(
            "imagepipe_storage_seconds", "Object store call latency (retries included)", ["op"], buckets=SECONDS
        )
        self.retries = Counter("imagepipe_task_retries_total", "Task retries, by task", ["task"])
        self.task_failures = Counter("imagepipe_task_failures_total", "Tasks failed for good, by task and code", ["task", "code"])
        self.callbacks = Counter(
            "imagepipe_callback_deliveries_total",
            "Job callback delivery attempts by outcome (delivered, retrying, failed)",
            ["outcome"],
        )
        self.reuse_findings = Counter(
            "imagepipe_reuse_findings_total",
            "Reuse findings: processed photos matching a photo of another listing their uploader cannot write",
        )
        self.cdn_invalidated_paths = Counter(
            "imagepipe_cdn_invalidated_paths_total", "Paths sent to the CDN for invalidation (CreateInvalidation)"
        )
        self.image_load_seconds = Histogram(
            "imagepipe_image_load_seconds",
            "Photo load time in visitors' browsers (Resource Timing, from the beacon of web/imagepipe.js),"
            " by rendition, format and display context",
            ["rendition", "format", "context"],
            buckets=LOAD_SECONDS,
        )
        self.image_lcp_seconds = Histogram(
            "imagepipe_image_lcp_seconds",
            "Largest Contentful Paint of pages whose largest element was one of our photos, by rendition and context",
            ["rendition", "context"],
            buckets=LOAD_SECONDS,
        )
        self.image_loads = Counter(
            "imagepipe_image_loads_total",
            "Photos loaded in visitors' browsers by the rendition the browser chose, display context and viewport"
            " width (CSS px bucket)",
            ["rendition", "context", "viewport"],
        )
        self.image_load_bytes = Counter(
            "imagepipe_image_load_bytes_total", "Bytes of photos loaded in visitors' browsers", ["rendition", "format"]
        )
        self.rum_beacons = Counter(
            "imagepipe_rum_beacons_total",
            "Load-timing beacons received, by outcome (accepted, invalid, rate_limited)",
            ["outcome"],
        )
        self.http_seconds = Histogram(
            "imagepipe_http_request_seconds",
            "API request latency by route, method and status",
            ["route", "method", "status"],
            buckets=SECONDS,
        )


_metrics: Metrics | None = None
_metrics_lock = threading.Lock()


def metrics() -> Metrics:
    """The process's metrics, created once even when the first calls race (the API's threads)."""
    global _metrics
    if _metrics is None:
        with _metrics_lock:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


@contextmanager
def timed(stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        metrics().stage_seconds.labels(stage).observe(time.perf_counter() - started)


def observe_storage(op: str, outcome: str, seconds: float) -> None:
    """The storage adapters' observer (storage/ knows nothing of Prometheus). A metric must never
    fail the work it measures: a problem here is logged, not raised."""
    try:
        m = metrics()
        m.storage_ops.labels(op, outcome).inc()
        m.storage_seconds.labels(op).observe(seconds)
    except Exception:  # noqa: BLE001 - see the docstring
        logging.getLogger(__name__).exception("could not record a storage metric")


def exposition(extra_collectors=()) -> tuple[bytes, str]:
    """What a scrape gets: the sum over this service's processes (multiprocess mode) or this
    process's registry, then `extra_collectors` (read at scrape time: queue depth, statuses)."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    metrics()  # the families exist before their first sample
    if multiprocess():
        from prometheus_client import multiprocess as mp

        base = CollectorRegistry()
        mp.MultiProcessCollector(base)
    else:
        base = REGISTRY
    extra = CollectorRegistry()
    for collector in extra_collectors:
        extra.register(collector)
    return generate_latest(base) + generate_latest(extra), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)


class QueueCollector:
    """Queue depth and the oldest message's age, read from the broker at scrape time, on every
    broker `make run` or a deployment uses: Redis (kombu keeps a queue as a list, a priority
    level as a list of its own: `name`, `name\\x06\\x163`, ...) and kombu's filesystem transport
    (a file `<ms>_<uuid>.<queue>.msg` per message in its folder). The age comes from the
    `sent_at` header our producer puts on every message."""

    PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")

    def __init__(self, broker_url: str, queues: list[str], timeout_s: float = 1.0, *, folder: Path | None = None):
        self.broker_url, self.queues, self.timeout_s, self.folder = broker_url, queues, timeout_s, folder

    @property
    def supported(self) -> bool:
        return self.broker_url.startswith(("redis://", "rediss://")) or (
            self.broker_url.startswith("filesystem") and self.folder is not None
        )

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        if not self.supported:
            return
        depth = GaugeMetricFamily("imagepipe_queue_depth", "Messages waiting in each queue (from the broker)", labels=["queue"])
        age = GaugeMetricFamily(
            "imagepipe_queue_oldest_message_age_seconds", "Age of the oldest waiting message", labels=["queue"]
        )
        up = GaugeMetricFamily("imagepipe_broker_up", "1 when the broker answered this scrape")
        try:
            read = self._filesystem() if self.broker_url.startswith("filesystem") else self._redis()
        except BrokerUnreadable:
            up.add_metric([], 0)
            yield up
            return
        now = time.time()
        for queue, (total, oldest) in read.items():
            depth.add_metric([queue], total)
            age.add_metric([queue], max(0.0, now - oldest) if oldest else 0.0)
        up.add_metric([], 1)
        yield from (depth, age, up)

    def _redis(self) -> dict[str, tuple[int, float | None]]:
        import redis

        found: dict[str, tuple[int, float | None]] = {}
        try:
            client = redis.Redis.from_url(self.broker_url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s)
            for queue in self.queues:
                total, oldest = 0, None
                for suffix in self.PRIORITY_SUFFIXES:
                    key = queue + suffix
                    n = client.llen(key)
                    total += n
                    if n:  # kombu pushes on the left and pops on the right: the oldest is last
                        sent = _sent_at(client.lindex(key, -1))
                        if sent and (oldest is None or sent < oldest):
                            oldest = sent
                found[queue] = (total, oldest)
            client.close()
        except redis.RedisError as exc:
            raise BrokerUnreadable(str(exc)) from exc
        return found

    def _filesystem(self) -> dict[str, tuple[int, float | None]]:
        assert self.folder is not None
        try:
            names = sorted(os.listdir(self.folder))  # <ms>_...: oldest first
        except OSError as exc:
            raise BrokerUnreadable(str(exc)) from exc
        found: dict[str, tuple[int, float | None]] = {}
        for queue in self.queues:
            mine = [n for n in names if n.partition(".")[2] == f"{queue}.msg"]
            oldest = None
            if mine:
                try:
                    oldest = _sent_at((self.folder / mine[0]).read_bytes()) or None
                except OSError:  # taken by a worker between the listing and the read
                    oldest = None
            found[queue] = (len(mine), oldest)
        return found


class BrokerUnreadable(Exception):
    pass


def _sent_at(raw) -> float:
    try:
        return float(json.loads(raw)["headers"].get("sent_at") or 0)
    except (ValueError, KeyError, TypeError, AttributeError):
        return 0.0
