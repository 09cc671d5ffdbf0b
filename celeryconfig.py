"""Celery configuration, derived from the one settings object: `build(settings)` is what the
worker's factory (workers/app.py) and the API's producer (api/queue.py) use. Nothing here runs
at import. The task names are the contract between the API and the workers: the API sends
messages by name and never imports the worker's code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.infra.settings import Settings

PROCESS_IMAGE_TASK = "imagepipe.process_image"
DELETE_IMAGE_TASK = "imagepipe.delete_image"
DELIVER_CALLBACK_TASK = "imagepipe.deliver_callback"
MIGRATE_IMAGE_TASK = "imagepipe.migrate_image"
REGENERATE_TASK = "imagepipe.regenerate_renditions"
SCAN_ORPHANS_TASK = "imagepipe.scan_orphans"
SCHEDULED_SCAN_TASK = "imagepipe.scheduled_orphan_scan"
# The sweeps (services/storage_admin/sweeps.py): quick, idempotent, safe to run twice at once.
SWEEP_TASKS = {
    "imagepipe.sweep_stuck": "stuck pending/processing images re-queued (or failed past SWEEP_MAX_REQUEUES)",
    "imagepipe.sweep_deleting": "images left deleting: purge queued again",
    "imagepipe.sweep_uploads": "expired direct uploads: row and staged object removed",
    "imagepipe.sweep_staging": "staging objects no live upload refers to, removed",
    "imagepipe.sweep_usage": "the storage usage and egress rollups' delta rows merged",
}
# The CDN invalidation outbox's sender (services/infra/cdn.py), when a distribution is set.
CDN_INVALIDATE_TASK = "imagepipe.send_cdn_invalidations"
# New access log files read into the egress figures (services/delivery/usage.py), when
# ACCESS_LOG_PREFIX is set.
USAGE_INGEST_TASK = "imagepipe.ingest_access_logs"
# One RESO Media feed replicated (services/syndication/feed.py), for each of FEED_URLS.
FEED_SYNC_TASK = "imagepipe.sync_feed"
# Beat sends these only when the last one sent has started (workers/schedule.py).
SINGLE_QUEUED_TASKS = (*SWEEP_TASKS, CDN_INVALIDATE_TASK, USAGE_INGEST_TASK)
TASK_NAMES = (PROCESS_IMAGE_TASK, DELETE_IMAGE_TASK, DELIVER_CALLBACK_TASK)
# Maintenance work: never on the uploads queue, whose depth the autoscaler scales on.
MAINTENANCE_TASKS = (
    REGENERATE_TASK,
    SCAN_ORPHANS_TASK,
    SCHEDULED_SCAN_TASK,
    *SWEEP_TASKS,
    CDN_INVALIDATE_TASK,
    USAGE_INGEST_TASK,
    FEED_SYNC_TASK,
)


def beat_schedule(settings: Settings) -> dict:
    """What Celery beat sends (`imagepipe beat`; `make run` starts it). One beat per deployment;
    a second one would only make each sweep run twice, which they are built to survive."""
    from celery.schedules import crontab

    schedule = {name.split(".", 1)[1]: {"task": name, "schedule": float(settings.sweep_interval_s)} for name in SWEEP_TASKS}
    if settings.aws_cloudfront_distribution_id:
        schedule["cdn_invalidations"] = {"task": CDN_INVALIDATE_TASK, "schedule": float(settings.cdn_invalidation_interval_s)}
    if settings.access_log_prefix:
        schedule["usage_ingest"] = {"task": USAGE_INGEST_TASK, "schedule": float(settings.usage_ingest_interval_s)}
    for n, url in enumerate((settings.feed_urls or "").split()):
        # A run still queued when the next is due is dropped (expires), so runs do not pile up.
        interval = float(settings.feed_sync_interval_s)
        schedule[f"feed_sync_{n}"] = {
            "task": FEED_SYNC_TASK,
            "schedule": interval,
            "kwargs": {"url": url},
            "options": {"expires": interval},
        }
    if settings.orphan_scan_hour >= 0:
        schedule["orphan_scan_daily"] = {
            "task": SCHEDULED_SCAN_TASK,
            "schedule": crontab(minute=17, hour=settings.orphan_scan_hour),
        }
    return schedule


def build(settings: Settings) -> dict:
    conf = {
        "broker_url": settings.broker_url,
        # Celery lets a CELERY_BROKER_URL variable override broker_url; the read/write URLs
        # make the settings object the one source of truth.
        "broker_read_url": settings.broker_url,
        "broker_write_url": settings.broker_url,
        # Status lives in the database; results would only be a second, expiring copy.
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Ack after the task body: a worker killed mid-image (OOM killer, a crash in a decoder,
        # a cold shutdown) gets it run again, which is safe because process_image is
        # idempotent. Run again as a *retry*, counted against the task's max_retries, not as a
        # plain redelivery: a file that kills its worker every time would otherwise loop for
        # ever. When the retries are spent the image is failed (workers/tasks.py).
        "task_acks_late": True,
        "task_retry_on_worker_lost": True,
        "task_reject_on_worker_lost": True,  # only if sending that retry fails
        "worker_prefetch_multiplier": 1,
        # A pool process still holding this much after a task (a leak, heap fragmentation
        # after a big decode) is replaced by a fresh one; 0 turns it off.
        "worker_max_memory_per_child": settings.worker_max_memory_mb * 1024 or None,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        "task_default_queue": settings.task_queue,
        "task_routes": {
            **{name: {"queue": settings.task_queue} for name in TASK_NAMES},
            **{name: {"queue": settings.maintenance_queue} for name in MAINTENANCE_TASKS},
            MIGRATE_IMAGE_TASK: {"queue": settings.migration_queue},
        },
        "beat_schedule": beat_schedule(settings),
        # A sweep is not sent again while its last one waits unstarted (workers/schedule.py).
        "beat_scheduler": "workers.schedule:SweepScheduler",
        "beat_schedule_filename": str(settings.var_dir / "celerybeat-schedule"),
        "timezone": "UTC",
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "broker_connection_retry_on_startup": True,
        # A broker that stops answering costs seconds: connecting and each socket operation are
        # bounded. The retry policy below is for Celery's own publishes in a worker (a task's
        # retry); services/infra/queue.py sends without it, once (its reconnects are not bounded in time).
        "broker_connection_timeout": settings.broker_timeout_s,
        "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5},
    }
    if settings.broker_url.startswith("filesystem"):
        base = settings.var_dir / "broker"
        conf["broker_transport_options"] = {
            "data_folder_in": str(filesystem_queue_folder(settings)),
            "data_folder_out": str(filesystem_queue_folder(settings)),
            "processed_folder": str(base / "processed"),
            "store_processed": False,
            "control_folder": str(base / "control"),
        }
    elif settings.broker_url.startswith(("redis", "rediss")):
        # Must exceed the longest task (hard limit) or Redis redelivers a running task.
        conf["broker_transport_options"] = {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            # Look for messages past their visibility timeout every 10 s (one ZREVRANGEBYSCORE),
            # not kombu's default of every 10th such tick: a task lost with its worker comes back
            # within the timeout plus 10 s, not plus up to 100 s.
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            # A worker on several queues takes from the first (uploads) before the next (the
            # migration), instead of rotating: live uploads keep priority during a migration.
            "queue_order_strategy": "priority",
            "socket_timeout": settings.broker_timeout_s,
            "socket_connect_timeout": settings.broker_timeout_s,
            "socket_keepalive": True,
            "retry_on_timeout": False,
        }
    return conf


def filesystem_queue_folder(settings: Settings) -> Path:
    """Where kombu's filesystem transport keeps waiting messages (development's broker)."""
    return settings.var_dir / "broker" / "queue"


def prepare_broker(settings: Settings) -> None:
    """The filesystem transport needs its folders before the first message (development only)."""
    if settings.broker_url.startswith("filesystem"):
        for sub in ("queue", "processed", "control"):
            (settings.var_dir / "broker" / sub).mkdir(parents=True, exist_ok=True)
