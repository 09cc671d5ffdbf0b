"""A guard around kombu's Redis transport (kombu 5.7, Celery 5.7), installed by the worker.

When the broker connection is lost, Celery's consumer collects the connection, which releases its
transport, and then closes it. If the default channel still holds unacknowledged messages (tasks
running in the pool), closing it makes the Redis QoS restore them through the released transport:
AttributeError ('NoneType' object has no attribute 'hostname'), which Celery treats as an
unrecoverable error, so the worker exits instead of reconnecting (tests/workers/test_broker_release.py).

Guarded, the restore is skipped when the transport is gone. Nothing is lost: each message is still
in Redis' unacked set, where any worker's visibility sweep puts it back on its queue once
BROKER_VISIBILITY_TIMEOUT_S has passed; a task that finished meanwhile runs again and is skipped.
"""

from __future__ import annotations

import logging

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

ORIGINAL_RESTORE_UNACKED = kombu_redis.QoS.restore_unacked


def _restore_unacked(self, client=None):
    if client is None and getattr(self.channel.connection, "client", None) is None:
        log.warning(
            "broker connection already released: %d unacknowledged message(s) stay in Redis' unacked set "
            "and return to their queue after the visibility timeout",
            len(self._delivered),
        )
        self._delivered.clear()
        return None
    return ORIGINAL_RESTORE_UNACKED(self, client)


def guard_unacked_restore() -> None:
    """Install the guard (idempotent)."""
    setattr(kombu_redis.QoS, "restore_unacked", _restore_unacked)  # noqa: B010 - patching a method
