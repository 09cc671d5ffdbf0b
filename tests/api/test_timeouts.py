"""A dependency that hangs costs the API seconds: it answers 503 with Retry-After within its
budget (here with short timeouts, so the suite stays fast; docs/reliability.md has the defaults)."""

from __future__ import annotations

import io
import time

import pytest

from api.app import create_app
from services.infra.queue import CeleryQueue, QueueUnavailable
from tests.conftest import corpus, new_entity_id
from tests.support.queues import RecordingQueue
from tests.support.services import BlackHole


@pytest.fixture
def hole():
    h = BlackHole()
    yield h
    h.close()


def test_a_frozen_store_is_a_503_within_two_tries(settings, auth, hole):
    frozen = settings.with_overrides(
        aws_s3_endpoint_url=f"http://127.0.0.1:{hole.port}", store_read_timeout_s=1.0, store_connect_timeout_s=1.0
    )
    client = create_app(frozen, queue=RecordingQueue()).test_client()
    started = time.monotonic()
    r = client.post(
        f"/api/v1/properties/{new_entity_id()}/images",
        headers=auth,
        data={"file": (io.BytesIO(corpus("photos", "tree_1024x772.webp").read_bytes()), "t.webp")},
    )
    took = time.monotonic() - started
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "storage_unavailable"
    assert int(r.headers["Retry-After"]) > 0
    assert 1.0 <= took < 2 * (1.0 + 1.0) + 1.5, took  # two tries of connect + read, and a short backoff
    assert len(hole.held) == 2  # the API tried twice, not STORE_MAX_ATTEMPTS times


def test_the_store_s_deadline_spans_its_tries(settings, auth, hole):
    """STORE_REQUEST_DEADLINE_S: a second try that could run past it is not started, so a frozen
    store costs one try (the defaults: 2 s + 5 s of an 8 s deadline, docs/reliability.md)."""
    frozen = settings.with_overrides(
        aws_s3_endpoint_url=f"http://127.0.0.1:{hole.port}",
        store_read_timeout_s=1.0,
        store_connect_timeout_s=1.0,
        store_request_deadline_s=1.6,
    )
    client = create_app(frozen, queue=RecordingQueue()).test_client()
    started = time.monotonic()
    r = client.post(
        f"/api/v1/properties/{new_entity_id()}/images",
        headers=auth,
        data={"file": (io.BytesIO(corpus("photos", "tree_1024x772.webp").read_bytes()), "t.webp")},
    )
    took = time.monotonic() - started
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "storage_unavailable"
    assert 1.0 <= took < 1.0 + 1.0 + 0.6, took  # one try: its connect and read timeouts at most
    assert len(hole.held) == 1  # the second could not have ended within the deadline


def test_a_frozen_broker_is_a_503_and_the_images_are_failed_not_pending(settings, auth, hole, session):
    from db.models import Image

    queue = CeleryQueue(settings.with_overrides(broker_url=f"redis://127.0.0.1:{hole.port}/0", broker_timeout_s=1.0))
    started = time.monotonic()
    with pytest.raises(QueueUnavailable):
        queue.process_images([1])
    assert time.monotonic() - started < 2 * 1.0 + 1.5  # one try: connect, then the first reply; never again
    client = create_app(settings, queue=queue).test_client()
    entity = new_entity_id()
    r = client.post(
        f"/api/v1/properties/{entity}/images",
        headers=auth,
        data={"file": (io.BytesIO(corpus("photos", "tree_1024x772.webp").read_bytes()), "t.webp")},
    )
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "queue_unavailable"
    [row] = session.query(Image).filter(Image.entity_id == entity).all()
    assert (row.status, row.error_code) == ("failed", "queue_unavailable")


def test_a_frozen_callback_receiver_is_a_failed_attempt_after_its_timeout(settings, hole):
    from services.jobs.callbacks import Attempt, send

    started = time.monotonic()
    problem = send(Attempt("job", f"http://127.0.0.1:{hole.port}/cb", b"{}"), settings.with_overrides(callback_timeout_s=1.0))
    assert problem and "timed out" in problem.lower()
    assert time.monotonic() - started < 3


def test_a_frozen_redis_holds_a_publish_for_one_broker_timeout_and_a_restarted_one_is_used_at_once(settings, tmp_path):
    """kombu's own retry reconnected and pinged a frozen Redis up to six times a publish (18 s
    with the default 3 s timeout); a publish now tries once, and once more only after a fast
    failure, which is what a pooled connection closed by a broker restart gives."""
    from tests.support.services import PrivateRedis

    redis = PrivateRedis(tmp_path / "redis").start()
    try:
        queue = CeleryQueue(settings.with_overrides(broker_url=redis.url, broker_timeout_s=1.0, task_queue="t-frozen"))
        queue.process_images([1])  # the pooled connection is open
        redis.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(QueueUnavailable) as refused:
                queue.process_images([2])
            assert time.monotonic() - started < 1.0 + 1.5
            assert refused.value.image_ids == [2]
        finally:
            redis.thaw()
        redis.stop()
        started = time.monotonic()
        with pytest.raises(QueueUnavailable):
            queue.process_images([3])
        assert time.monotonic() - started < 1.0  # refused at once, twice
        redis.start()
        queue.process_images([4])  # the closed pooled connection is replaced, the client hears nothing of it
        import redis as redis_client

        queued = redis_client.Redis.from_url(redis.url).llen("t-frozen")
        assert queued >= 2  # 1 and 4 (2 may have been written before the freeze was noticed)
    finally:
        redis.stop()
