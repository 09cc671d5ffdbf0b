"""The upload rate limit as a sliding one-minute window, on a controlled clock: in process
memory and in Redis (shared by every API process)."""

from __future__ import annotations

import uuid

import pytest

from services.infra.ratelimit import RateLimiter
from tests.conftest import REDIS_URL


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "redis"])
def limiter_factory(request):
    prefix = f"imagepipe-test:rl:{uuid.uuid4().hex[:8]}"

    def make(per_minute: int, clock: Clock) -> RateLimiter:
        url = REDIS_URL if request.param == "redis" else None
        limiter = RateLimiter(per_minute, url, prefix=prefix, clock=clock)
        assert limiter.backend == request.param
        return limiter

    yield make
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def test_no_double_burst_across_the_minute_edge(limiter_factory):
    clock = Clock(6000 * 60 + 59.0)  # one second before a minute ends
    limiter = limiter_factory(10, clock)
    assert [limiter.hit("u") for _ in range(10)] == [None] * 10
    assert limiter.hit("u") is not None
    clock.t += 1.5  # a fixed window would now allow 10 more at once
    wait = limiter.hit("u")
    assert wait == 6  # 10 x (1 - 0.1) + 1 <= 10 once 10 % of the new minute has passed
    clock.t += wait - 1.5
    assert limiter.hit("u") is not None
    clock.t += 1.5
    assert limiter.hit("u") is None  # Retry-After was right: the same hit passes now


def test_refused_hits_do_not_count_and_users_are_separate(limiter_factory):
    clock = Clock(7000 * 60 + 10.0)
    limiter = limiter_factory(3, clock)
    assert [limiter.hit("alice") for _ in range(3)] == [None] * 3
    waits = [limiter.hit("alice") for _ in range(50)]  # hammering while limited
    assert all(w is not None for w in waits)
    assert limiter.hit("bob") is None
    clock.t += waits[-1]
    assert limiter.hit("alice") is None  # the 50 refused hits cost alice nothing


def test_a_steady_rate_under_the_limit_always_passes(limiter_factory):
    clock = Clock(8000 * 60 + 0.0)
    limiter = limiter_factory(60, clock)
    for _ in range(3 * 54):  # 54 per minute for three minutes: 90 % of the limit
        assert limiter.hit("u") is None, clock.t
        clock.t += 60 / 54


def test_a_request_of_several_files_costs_each_and_may_exceed_on_its_own(limiter_factory):
    clock = Clock(9000 * 60 + 30.0)
    limiter = limiter_factory(5, clock)
    assert limiter.hit("u", cost=4) is None
    assert limiter.hit("u", cost=2) is not None  # 6 > 5
    assert limiter.hit("u", cost=1) is None
    assert limiter.hit("u", cost=6) == 120  # more than the limit in one go: never, said as 2 min
