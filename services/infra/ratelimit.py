"""Per-user upload rate limit: a sliding one-minute window counted in Redis (shared by every
API process) or, without Redis, in this process only.

The window is the usual sliding-window counter: counts are kept per fixed minute, and a hit
is judged by this minute's count plus the previous minute's weighted by how much of it still
lies within the last 60 seconds. A fixed window would let a client send the limit at 0:59
and the limit again at 1:00; this one does not, at two counters per user. A refused hit is
not counted, so a client that waits `Retry-After` seconds gets through.

Fails open: if Redis does not answer, the request goes through and a warning is logged; an
outage of the limiter must not become an outage of uploads.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

WINDOW_S = 60


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        redis_url: str | None = None,
        *,
        prefix: str = "imagepipe:ratelimit",
        clock: Callable[[], float] = time.time,
    ):
        self.per_minute, self.prefix, self.clock = per_minute, prefix, clock
        self._redis = None
        if redis_url and per_minute:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._lock = threading.Lock()
        self._local: dict[tuple[str, int], int] = {}

    @property
    def backend(self) -> str:
        return "redis" if self._redis is not None else "memory"

    def hit(self, key: str, cost: int = 1) -> int | None:
        """Count `cost` against `key`. Over the limit: not counted, and the seconds to wait
        (for Retry-After) until the same hit would pass."""
        if not self.per_minute:
            return None
        now = self.clock()
        window = int(now // WINDOW_S)
        elapsed = (now - window * WINDOW_S) / WINDOW_S  # 0 .. 1 into this minute
        counts = self._redis_hit(key, window, cost, elapsed) if self._redis is not None else None
        if counts is None:
            counts = self._local_hit(key, window, cost, elapsed)
        previous, current, allowed = counts
        return None if allowed else self._retry_after(previous, current, cost, elapsed)

    def release(self, key: str, cost: int) -> None:
        """Give back `cost` counted by an earlier hit of this minute (a request refused later on)."""
        if not self.per_minute or cost <= 0:
            return
        window = int(self.clock() // WINDOW_S)
        if self._redis is not None:
            try:
                self._redis.decrby(f"{self.prefix}:{key}:{window}", cost)
                return
            except Exception as exc:  # fail open, as hit() does
                log.warning("rate limiter: Redis unavailable (%s)", exc)
        with self._lock:
            if (key, window) in self._local:
                self._local[(key, window)] = max(0, self._local[(key, window)] - cost)

    def _over(self, previous: int, current: int, elapsed: float) -> bool:
        return previous * (1 - elapsed) + current > self.per_minute

    def _retry_after(self, previous: int, current: int, cost: int, elapsed: float) -> int:
        """Seconds until previous * (1 - elapsed') + current + cost <= limit, no other hits."""
        if cost > self.per_minute:  # more than the whole limit in one go never passes
            return 2 * WINDOW_S
        room = self.per_minute - current - cost
        if room >= 0 and previous:
            wait = (1 - room / previous) - elapsed  # still within this minute
        else:
            # This minute's own hits are too many (current > limit - cost >= 0): wait for the
            # next minute, where they count as `previous` and must decay to leave room for `cost`.
            wait = (1 - elapsed) + (1 - (self.per_minute - cost) / current)
        return max(1, math.ceil(wait * WINDOW_S))

    def _redis_hit(self, key: str, window: int, cost: int, elapsed: float) -> tuple[int, int, bool] | None:
        name = f"{self.prefix}:{key}:{window}"
        assert self._redis is not None
        try:
            pipe = self._redis.pipeline()
            pipe.incrby(name, cost)
            pipe.expire(name, 2 * WINDOW_S + 5)  # it is the previous minute for one more minute
            pipe.get(f"{self.prefix}:{key}:{window - 1}")
            current, _, previous = pipe.execute()
            previous, current = int(previous or 0), int(current)
            if self._over(previous, current, elapsed):
                self._redis.decrby(name, cost)  # a refused hit does not count
                return previous, current - cost, False
            return previous, current, True
        except Exception as exc:  # redis.RedisError and socket errors alike: fail open
            log.warning("rate limiter: Redis unavailable (%s); counting in this process only", exc)
            return None

    def _local_hit(self, key: str, window: int, cost: int, elapsed: float) -> tuple[int, int, bool]:
        with self._lock:
            previous = self._local.get((key, window - 1), 0)
            current = self._local.get((key, window), 0)
            if self._over(previous, current + cost, elapsed):
                return previous, current, False
            self._local[(key, window)] = current + cost
            if len(self._local) > 100_000:  # bounded memory: keep the two live minutes only
                self._local = {k: v for k, v in self._local.items() if k[1] >= window - 1}
            return previous, current + cost, True
