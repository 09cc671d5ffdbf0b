"""Limits and failure answers a client relies on: rate limit, the HTTP body cap, 503s with
Retry-After, request ids and one structured log line per error."""

from __future__ import annotations

import io
import json
import logging
import socket
import time

import redis

from api.app import create_app
from services.infra.logs import JsonFormatter
from tests.conftest import REDIS_URL, corpus, new_entity_id
from tests.support.queues import RecordingQueue


def _photo():
    return {"file": (io.BytesIO(corpus("photos", "waterfall_progressive_orient6_308x231.jpg").read_bytes()), "a.jpg")}


def test_upload_rate_limit_is_per_user_in_redis_with_retry_after(settings, make_token):
    prefix = f"imagepipe-test:{new_entity_id()}"
    app = create_app(
        settings.with_overrides(rate_limit_uploads_per_minute=2, rate_limit_redis_url=REDIS_URL), queue=RecordingQueue()
    )
    app.extensions["imagepipe"].limiter.prefix = prefix  # this test's own counters
    assert app.extensions["imagepipe"].limiter.backend == "redis"
    client = app.test_client()
    alice = {"Authorization": f"Bearer {make_token(501, entities=('properties:*',))}"}
    bob = {"Authorization": f"Bearer {make_token(502, entities=('properties:*',))}"}
    entity = new_entity_id()
    codes = [client.post(f"/api/v1/properties/{entity}/images", headers=alice, data=_photo()).status_code for _ in range(3)]
    assert codes[:2] == [202, 202] and codes[2] == 429
    limited = client.post(f"/api/v1/properties/{entity}/images", headers=alice, data=_photo())
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 120  # sliding window: up to two minutes
    assert client.post(f"/api/v1/properties/{entity}/images", headers=bob, data=_photo()).status_code == 202
    # More files in one request than the whole limit: refused with a message that says so.
    three = client.post(f"/api/v1/properties/{entity}/images", headers=bob, data={"file": [_photo()["file"] for _ in range(3)]})
    assert three.status_code == 429 and "send fewer files" in three.get_json()["error"]["message"]
    # The count lives in Redis, so every API process shares it.
    assert any(redis.Redis.from_url(REDIS_URL).scan_iter(f"{prefix}:uploads:501:*"))


def test_body_over_the_cap_is_refused_before_it_is_read(live_server, auth, settings):
    host, port = live_server.removeprefix("http://").split(":")
    cap = settings.max_upload_bytes * settings.max_files_per_request
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (
                f"POST /api/v1/properties/1/images HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: {auth['Authorization']}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {cap * 2}\r\n\r\n"
            ).encode()
        )
        # No body is sent: the answer can only come from the headers.
        t0 = time.monotonic()
        chunks = []
        while chunk := sock.recv(65536):  # the server answers and closes
            chunks.append(chunk)
        reply = b"".join(chunks).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert time.monotonic() - t0 < 10
    assert '"code": "file_too_large"' in reply or '"code":"file_too_large"' in reply


def test_store_down_during_an_upload_is_503_with_retry_after(settings, auth):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    app = create_app(settings.with_overrides(aws_s3_endpoint_url=dead), queue=RecordingQueue())
    r = app.test_client().post(f"/api/v1/properties/{new_entity_id()}/images", headers=auth, data=_photo())
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "storage_unavailable"
    assert int(r.headers["Retry-After"]) > 0


def test_database_down_is_503_with_retry_after(settings, auth):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(
        settings.with_overrides(database_url=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/x"), queue=RecordingQueue()
    )
    r = app.test_client().get("/api/v1/images/1", headers=auth)
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "database_unavailable"
    assert int(r.headers["Retry-After"]) > 0


def test_broker_down_is_503_and_the_image_does_not_hang_pending(settings, auth, session):
    """The real producer against a broker that refuses connections."""
    from db.models import Image
    from services.infra.queue import CeleryQueue

    app = create_app(settings, queue=CeleryQueue(settings.with_overrides(broker_url="redis://127.0.0.1:1/0")))
    entity = new_entity_id()
    first = {**_photo(), "media": json.dumps({"caption": "first try"})}
    r = app.test_client().post(f"/api/v1/properties/{entity}/images", headers=auth, data=first)
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "queue_unavailable"
    assert int(r.headers["Retry-After"]) > 0
    [row] = session.query(Image).filter(Image.entity_id == entity).all()
    assert (row.status, row.error_code) == ("failed", "queue_unavailable")

    # The client retries once the broker is back: the same image is taken again, not a second one
    # beside a failed one (the several-hosts suite's flapping link found the pair).
    queue = RecordingQueue()
    again = (
        create_app(settings, queue=queue).test_client().post(f"/api/v1/properties/{entity}/images", headers=auth, data=_photo())
    )
    assert again.status_code == 202, again.get_json()
    [image] = again.get_json()["images"]
    assert image["id"] == row.id and image["status"] == "pending"
    session.expire_all()
    [row] = session.query(Image).filter(Image.entity_id == entity).all()
    assert (row.status, row.error_code, row.error_message) == ("pending", None, None)
    assert row.caption is None  # the earlier attempt's fields are not carried over
    assert row.staging_key and queue.images == [row.id]


def test_every_error_is_one_structured_line_with_the_request_id(settings, auth, caplog):
    app = create_app(settings, queue=RecordingQueue())
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="imagepipe"):
        r = client.get("/api/v1/images/999999999", headers={**auth, "X-Request-ID": "req-abc-12345"})
    assert r.status_code == 404 and r.headers["X-Request-ID"] == "req-abc-12345"
    [record] = [rec for rec in caplog.records if getattr(rec, "code", None) == "image_not_found"]
    line = json.loads(JsonFormatter().format(record))
    assert {k: line[k] for k in ("request_id", "user_id", "image_id", "code", "category", "status")} == {
        "request_id": "req-abc-12345",
        "user_id": 42,
        "image_id": 999999999,
        "code": "image_not_found",
        "category": "validation",
        "status": 404,
    }
    generated = client.get("/api/v1/images/1", headers={**auth, "X-Request-ID": "bad id!"})
    assert len(generated.headers["X-Request-ID"]) == 32  # an unusable id is replaced, not echoed
    with caplog.at_level(logging.INFO, logger="imagepipe"):
        client.get("/api/v1/jobs/x")
    [unauth] = [rec for rec in caplog.records if getattr(rec, "code", None) == "unauthorized"]
    assert unauth.category == "auth"


def test_broker_down_fails_an_orphan_scan_instead_of_leaving_it_queued(settings, make_token, session):
    from db.models import StorageScan
    from services.infra.queue import CeleryQueue

    app = create_app(settings, queue=CeleryQueue(settings.with_overrides(broker_url="redis://127.0.0.1:1/0")))
    entity = new_entity_id()
    r = app.test_client().post(
        "/api/v1/admin/storage/cleanup-orphaned",
        json={"entity": "projects", "entity_id": entity},
        headers={"Authorization": f"Bearer {make_token(1, admin=True)}"},
    )
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "queue_unavailable"
    [scan] = session.query(StorageScan).filter(StorageScan.entity_id == entity).all()
    assert scan.status == "failed" and scan.error == "the task queue did not take the scan"
