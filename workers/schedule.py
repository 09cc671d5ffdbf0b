"""Celery beat's scheduler for imagepipe: the sweeps go to the maintenance queue, and a sweep is
not sent again while the one sent before has not started. With the workers down, beat used to
add five messages every SWEEP_INTERVAL_S; now each sweep waits queued once, and runs when a
worker returns.

A "queued" mark per sweep, set by beat when it sends (only if absent) and cleared by the task
when it starts: a Redis key (SET NX EX) on a Redis broker, a file beside the filesystem
transport's folder in development. The mark expires after SWEEP_MARK_TTL_S, so a sweep message
lost with its broker delays the next one by at most that."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from celery.beat import PersistentScheduler

import celeryconfig

log = logging.getLogger(__name__)

SWEEP_MARK_TTL_S = 3600


class QueuedMarks:
    """At most one queued message per name, across beat and the workers."""

    def __init__(self, broker_url: str, queue: str, folder: Path | None = None, ttl_s: int = SWEEP_MARK_TTL_S):
        self.broker_url, self.queue, self.folder, self.ttl_s = broker_url, queue, folder, ttl_s

    @classmethod
    def for_settings(cls, settings) -> QueuedMarks:
        return cls(settings.broker_url, settings.maintenance_queue, settings.var_dir / "broker" / "marks")

    @classmethod
    def for_app(cls, conf) -> QueuedMarks:
        """The same marks, from the Celery configuration celeryconfig.build() made (beat's)."""
        queue = conf.task_routes[next(iter(celeryconfig.SWEEP_TASKS))]["queue"]
        folder_in = (conf.broker_transport_options or {}).get("data_folder_in")
        return cls(conf.broker_url, queue, Path(folder_in).parent / "marks" if folder_in else None)

    def _redis(self):
        import redis

        return redis.Redis.from_url(self.broker_url, socket_timeout=5, socket_connect_timeout=5)

    def _key(self, name: str) -> str:
        return f"imagepipe:queued:{self.queue}:{name}"

    def claim(self, name: str) -> bool:
        """True when no message of `name` is marked queued (and marks it); False to skip sending."""
        if self.broker_url.startswith(("redis://", "rediss://")):
            return bool(self._redis().set(self._key(name), str(time.time()), nx=True, ex=self.ttl_s))
        if self.broker_url.startswith("filesystem") and self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{self.queue}.{name}"
            try:
                if time.time() - path.stat().st_mtime < self.ttl_s:
                    return False
                path.unlink(missing_ok=True)  # expired: a lost message must not stop the sweep for ever
            except FileNotFoundError:
                pass
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                return False
            return True
        return True  # another broker: sent every time (docs/operations.md)

    def release(self, name: str) -> None:
        """The message is being worked on: the next one may be sent. Never fails the work (a mark
        left behind only delays the next send until it expires)."""
        try:
            if self.broker_url.startswith(("redis://", "rediss://")):
                self._redis().delete(self._key(name))
            elif self.broker_url.startswith("filesystem") and self.folder is not None:
                (self.folder / f"{self.queue}.{name}").unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not clear the queued mark of %s: %s", name, exc)


class SweepScheduler(PersistentScheduler):
    """Beat's persistent scheduler, sending a sweep only when its last one has started."""

    def __init__(self, app, *args, **kwargs):
        self.marks = QueuedMarks.for_app(app.conf)
        super().__init__(app, *args, **kwargs)

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        if entry.task in celeryconfig.SINGLE_QUEUED_TASKS:
            try:
                free = self.marks.claim(entry.task)
            except Exception as exc:  # noqa: BLE001 - the broker is down: the send fails the same way
                log.warning("could not check whether %s is still queued: %s", entry.task, exc)
                free = True
            if not free:
                log.info("%s: the previous one is still queued; not sending another", entry.task)
                if advance:
                    entry = self.reserve(entry)
                return None
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
