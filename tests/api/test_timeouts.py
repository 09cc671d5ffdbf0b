"""A dependency that hangs costs the API seconds: it answers 503 with Retry-After within its
budget (here with short timeouts, so the suite stays fast; docs/reliability.md has the defaults)."""
from __future__ import annotations

import io
import time

import pytest

from api.app import create_app
from services.queue import CeleryQueue, QueueUnavailable
from tests.conftest import corpus, new_entity_id
from tests.support.queues import RecordingQueue
from tests.support.services import BlackHole


@pytest.fixture
def hole():
    h = BlackHole()
    yield h
    h.close()


def test_a_frozen_store_is_a_503_within_two_tries(settings, auth, hole):
    frozen = settings.with_overrides(aws_s3_endpoint_url=f"http://127.0.0.1:{hole.port}", store_read_timeout_s=1.0,
                                     store_connect_timeout_s=1.0)
    client = create_app(frozen, queue=RecordingQueue()).test_client()
    started = time.monotonic()
    r = client.post(f"/api/v1/properties/{new_entity_id()}/images", headers=auth,
                    data={"file": (io.BytesIO(corpus("photos", "tree_1024x772.webp").read_bytes()), "t.webp")})
    took = time.monotonic() - started
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "storage_unavailable"
    assert int(r.headers["Retry-After"]) > 0
    assert 1.0 <= took < 2 * (1.0 + 1.0) + 1.5, took  # two tries of connect + read, and a short backoff
    assert len(hole.held) == 2  # the API tried twice, not STORE_MAX_ATTEMPTS times


def test_a_frozen_broker_is_a_503_and_the_images_are_failed_not_pending(settings, auth, hole, session):
    from db.models import Image

    queue = CeleryQueue(settings.with_overrides(broker_url=f"redis://127.0.0.1:{hole.port}/0", broker_timeout_s=1.0))
    started = time.monotonic()
    with pytest.raises(QueueUnavailable):
        queue.process_images([1])
    assert time.monotonic() - started < 8
    client = create_app(settings, queue=queue).test_client()
    entity = new_entity_id()
    r = client.post(f"/api/v1/properties/{entity}/images", headers=auth,
                    data={"file": (io.BytesIO(corpus("photos", "tree_1024x772.webp").read_bytes()), "t.webp")})
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "queue_unavailable"
    [row] = session.query(Image).filter(Image.entity_id == entity).all()
    assert (row.status, row.error_code) == ("failed", "queue_unavailable")


def test_a_frozen_callback_receiver_is_a_failed_attempt_after_its_timeout(settings, hole):
    from services.callbacks import Attempt, send

    started = time.monotonic()
    problem = send(Attempt("job", f"http://127.0.0.1:{hole.port}/cb", b"{}"),
                   settings.with_overrides(callback_timeout_s=1.0))
    assert problem and "timed out" in problem.lower()
    assert time.monotonic() - started < 3
