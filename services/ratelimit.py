"""Per-user upload rate limit: a fixed one-minute window counted in Redis (shared by every API
process) or, without Redis, in this process only.

Fails open: if Redis does not answer, the request goes through and a warning is logged; an
outage of the limiter must not become an outage of uploads.
"""
from __future__ import annotations

import logging
import math
import threading
import time

log = logging.getLogger(__name__)

WINDOW_S = 60


class RateLimiter:
    def __init__(self, per_minute: int, redis_url: str | None = None, *, prefix: str = "imagepipe:ratelimit"):
        self.per_minute, self.prefix = per_minute, prefix
        self._redis = None
        if redis_url and per_minute:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._lock = threading.Lock()
        self._local: dict[str, tuple[int, int]] = {}

    @property
    def backend(self) -> str:
        return "redis" if self._redis is not None else "memory"

    def hit(self, key: str, cost: int = 1) -> int | None:
        """Count `cost` against `key`. Over the limit: the seconds to wait (for Retry-After)."""
        if not self.per_minute:
            return None
        now = time.time()
        window = int(now // WINDOW_S)
        retry_after = max(1, math.ceil((window + 1) * WINDOW_S - now))
        count = self._count_redis(key, window, cost) if self._redis is not None else None
        if count is None:
            count = self._count_local(key, window, cost)
        return retry_after if count > self.per_minute else None

    def _count_redis(self, key: str, window: int, cost: int) -> int | None:
        name = f"{self.prefix}:{key}:{window}"
        try:
            pipe = self._redis.pipeline()
            pipe.incrby(name, cost)
            pipe.expire(name, WINDOW_S + 5)
            return int(pipe.execute()[0])
        except Exception as exc:  # redis.RedisError and socket errors alike: fail open
            log.warning("rate limiter: Redis unavailable (%s); counting in this process only", exc)
            return None

    def _count_local(self, key: str, window: int, cost: int) -> int:
        with self._lock:
            seen_window, count = self._local.get(key, (window, 0))
            count = count + cost if seen_window == window else cost
            self._local[key] = (window, count)
            if len(self._local) > 100_000:  # bounded memory: drop finished windows
                self._local = {k: v for k, v in self._local.items() if v[0] == window}
            return count
