"""Direct uploads: presigned POST to the store, then complete. SeaweedFS enforces the policy
for real (moto does not), so the store itself must refuse what the policy does not allow."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlparse

import pytest
import requests
from sqlalchemy import select

from api.app import create_app
from db.models import Upload
from tests.conftest import corpus, new_entity_id
from tests.support.http import wait_for_job
from tests.support.queues import RecordingQueue
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

PHOTO = "nikon-p6000_small_640x480.jpg"


def _create(base, headers, **overrides):
    data = corpus("photos", PHOTO).read_bytes()
    body = {
        "entity": "properties",
        "entity_id": new_entity_id(),
        "filename": "IMG_0001.JPG",
        "content_type": "image/jpeg",
        "size": len(data),
        **overrides,
    }
    return requests.post(f"{base}/api/v1/uploads", json=body, headers=headers, timeout=10)


def _post_to_store(up: dict, data: bytes, content_type: str = "image/jpeg", fields: dict | None = None):
    return requests.post(up["url"], data=fields or up["fields"], files={"file": ("f", data, content_type)}, timeout=30)


def test_direct_upload_end_to_end_and_completing_twice(live_server, celery_worker, auth, store, session):
    r = _create(live_server, auth)
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["fields"]["key"] == f"staging/{up['upload_id']}"  # ids only: the filename is not in the key
    assert up["fields"]["Content-Type"] == "image/jpeg" and up["method"] == "POST"
    assert up["complete_url"] == f"/api/v1/uploads/{up['upload_id']}/complete"

    early = requests.post(live_server + up["complete_url"], headers=auth, timeout=10)
    assert early.status_code == 409 and early.json()["error"]["code"] == "upload_not_received"

    data = corpus("photos", PHOTO).read_bytes()
    stored = _post_to_store(up, data)
    assert stored.status_code in (200, 201, 204), stored.text
    assert store.get(up["fields"]["key"]) == data

    done = requests.post(live_server + up["complete_url"], headers=auth, timeout=10)
    assert done.status_code == 202, done.text
    # The presigned POST is still valid (it cannot be revoked), but what is processed is a copy
    # under a key the client never had: a second POST changes nothing.
    swapped = _post_to_store(up, b"\xff\xd8\xff" + b"\0" * (len(data) - 3))  # the declared size, other bytes
    assert swapped.status_code in (200, 201, 204)
    job = wait_for_job(live_server, auth, done.json()["job"]["status_url"])
    assert job["status"] == "succeeded" and job["images"][0]["filename"] == "IMG_0001.JPG"
    image = requests.get(f"{live_server}/api/v1/images/{job['images'][0]['id']}", headers=auth, timeout=10).json()
    assert (image["width"], image["height"]) == (640, 480)
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(image["renditions"]) == 3

    again = requests.post(live_server + up["complete_url"], headers=auth, timeout=10)
    assert again.status_code == 202 and again.json()["job"]["id"] == done.json()["job"]["id"]
    row = session.scalars(select(Upload).where(Upload.id == up["upload_id"])).one()
    assert row.completed_at and row.image_id == job["images"][0]["id"]


def test_direct_upload_takes_a_callback_url_too(live_server, celery_worker, auth):
    receiver = Receiver()
    assert _create(live_server, auth, callback_url="http://example.com/x").json()["error"]["code"] == "callback_not_allowed"
    up = _create(live_server, auth, callback_url=receiver.url).json()
    _post_to_store(up, corpus("photos", PHOTO).read_bytes())
    done = requests.post(live_server + up["complete_url"], headers=auth, timeout=10).json()
    receiver.wait(1)
    assert b'"status":"succeeded"' in receiver.calls[0][1] and done["job"]["id"].encode() in receiver.calls[0][1]


def test_store_itself_refuses_oversize_wrong_type_other_key_and_expired_uploads(store):
    post = store.presigned_post("staging/policy-check", content_type="image/jpeg", max_bytes=1000, expires_in_s=60)
    small = b"\xff\xd8\xff" + b"\0" * 500
    too_big = _post_to_store({"url": post.url, "fields": post.fields}, b"\xff\xd8\xff" + b"\0" * 2000)
    assert too_big.status_code in (400, 403), too_big.text  # EntityTooLarge / policy violation
    wrong_type = _post_to_store(
        {"url": post.url, "fields": {**post.fields, "Content-Type": "text/html"}}, small, content_type="text/html"
    )
    assert wrong_type.status_code in (400, 403), wrong_type.text
    other_key = _post_to_store({"url": post.url, "fields": {**post.fields, "key": "public/evil.html"}}, small)
    assert other_key.status_code in (400, 403), other_key.text
    assert not store.exists("public/evil.html") and not store.exists("staging/policy-check")

    ok = _post_to_store({"url": post.url, "fields": post.fields}, small)
    assert ok.status_code in (200, 201, 204), ok.text
    assert store.get("staging/policy-check") == small

    short = store.presigned_post("staging/policy-late", content_type="image/jpeg", max_bytes=1000, expires_in_s=1)
    time.sleep(2.5)
    late = _post_to_store({"url": short.url, "fields": short.fields}, small)
    assert late.status_code in (400, 403), late.text
    assert not store.exists("staging/policy-late")


def test_create_refuses_bad_requests(live_server, auth, settings):
    cases = [
        ({"content_type": "text/html"}, 415, "unsupported_media_type"),
        ({"size": settings.max_upload_bytes + 1}, 413, "file_too_large"),
        ({"size": 0}, 400, "invalid_parameter"),
        ({"entity": "castles"}, 404, "unknown_entity"),
        ({"entity_id": "12"}, 400, "invalid_parameter"),
        ({"sha256": "not-a-digest"}, 400, "invalid_parameter"),
        ({"sha256": "ab" * 31}, 400, "invalid_parameter"),
    ]
    for overrides, status, code in cases:
        r = _create(live_server, auth, **overrides)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), overrides
    r = requests.post(f"{live_server}/api/v1/uploads", data="x", headers=auth, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def test_the_store_takes_exactly_the_declared_size(live_server, auth, store):
    """Issue 27: declaring 100 kB and sending 2.9 MB was accepted and processed. The presigned
    POST's content-length-range is the declared size: SeaweedFS refuses more and less."""
    data = corpus("photos", PHOTO).read_bytes()
    up = _create(live_server, auth, size=len(data) - 1000).json()
    assert up["max_bytes"] == len(data) - 1000
    bigger = _post_to_store(up, data)
    assert bigger.status_code in (400, 403) and b"EntityTooLarge" in bigger.content, bigger.text
    smaller = _post_to_store(up, data[: len(data) - 2000])
    assert smaller.status_code in (400, 403) and b"EntityTooSmall" in smaller.content, smaller.text
    assert not store.exists(up["fields"]["key"])
    r = requests.post(live_server + up["complete_url"], headers=auth, timeout=10)
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_not_received"
    exact = _post_to_store(up, data[: len(data) - 1000])
    assert exact.status_code in (200, 201, 204), exact.text


def test_completion_refuses_a_size_the_store_let_through(settings, tmp_path, auth):
    """A store that does not enforce the range (a replaced object, a lenient S3 clone): the size
    is checked again at completion, and the staged bytes are not kept."""
    from storage.local import LocalObjectStore

    local = settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path / "store")
    client = create_app(local, queue=RecordingQueue()).test_client()
    data = corpus("photos", PHOTO).read_bytes()
    body = {"entity": "avatars", "entity_id": 5, "filename": "me.jpg", "content_type": "image/jpeg", "size": 1000}
    up = client.post("/api/v1/uploads", headers=auth, json=body).get_json()
    LocalObjectStore(tmp_path / "store").put(up["fields"]["key"], data, content_type="image/jpeg")  # behind its back
    r = client.post(up["complete_url"], headers=auth)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "size_mismatch", r.get_data(as_text=True)
    assert str(len(data)) in r.get_json()["error"]["message"]
    assert not (tmp_path / "store" / up["fields"]["key"]).exists()


def test_complete_checks_what_arrived(live_server, auth, make_token, store):
    html = b"<html>not a photo</html>" * 10
    up = _create(live_server, auth, size=len(html)).json()
    _post_to_store(up, html)
    r = requests.post(live_server + up["complete_url"], headers=auth, timeout=10)
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert not store.exists(up["fields"]["key"])  # refused bytes are not kept

    theirs = _create(live_server, auth).json()
    other = {"Authorization": f"Bearer {make_token(7)}"}
    r = requests.post(live_server + theirs["complete_url"], headers=other, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "upload_not_found"
    r = requests.post(f"{live_server}/api/v1/uploads/nope/complete", headers=auth, timeout=10)
    assert r.status_code == 404


def test_local_store_offers_the_same_direct_upload(settings, tmp_path, auth):
    local = settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path / "store")
    queued: list[int] = []
    app = create_app(local, queue=RecordingQueue(queued))
    client = app.test_client()
    data = corpus("photos", PHOTO).read_bytes()
    up = client.post(
        "/api/v1/uploads",
        headers=auth,
        json={"entity": "avatars", "entity_id": 5, "filename": "me.jpg", "content_type": "image/jpeg", "size": len(data)},
    )
    assert up.status_code == 201, up.get_data(as_text=True)
    up = up.get_json()
    assert urlparse(up["url"]).path == "/media/upload"

    def post(fields, body, ctype="image/jpeg"):
        import io

        return client.post(
            "/media/upload", data={**fields, "file": (io.BytesIO(body), "f", ctype)}, content_type="multipart/form-data"
        )

    assert post({**up["fields"], "Content-Type": "text/html"}, data).status_code == 403
    assert post({**up["fields"], "key": "public/x.html"}, data).status_code == 403
    assert post({**up["fields"], "signature": "0" * 64}, data).status_code == 403
    assert post(up["fields"], b"\xff" * (local.max_upload_bytes + 1)).status_code == 400
    assert post(up["fields"], data + b"\0").status_code == 400  # not the declared size
    assert post(up["fields"], data[:-1]).status_code == 400
    assert post(up["fields"], data).status_code == 204

    done = client.post(up["complete_url"], headers=auth)
    assert done.status_code == 202, done.get_data(as_text=True)
    assert queued == [done.get_json()["images"][0]["id"]]


def test_local_store_pins_a_declared_sha256_too(settings, tmp_path, auth):
    local = settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path / "store")
    client = create_app(local, queue=RecordingQueue()).test_client()
    data = corpus("photos", PHOTO).read_bytes()
    body = {"entity": "avatars", "entity_id": 5, "content_type": "image/jpeg", "size": len(data)}
    up = client.post("/api/v1/uploads", headers=auth, json={**body, "sha256": hashlib.sha256(data).hexdigest()})
    up = up.get_json()
    assert up["fields"]["x-amz-checksum-sha256"]  # the field S3 takes: the same form for both stores

    def post(fields, payload):
        import io

        return client.post("/media/upload", data={**fields, "file": (io.BytesIO(payload), "f", "image/jpeg")})

    other = data[:-1] + bytes([data[-1] ^ 1])
    r = post(up["fields"], other)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_digest"
    forged = {**up["fields"], "x-amz-checksum-sha256": "AAAA"}
    assert post(forged, data).status_code == 403  # the checksum is in the signed policy
    assert post(up["fields"], data).status_code == 204
    done = client.post(up["complete_url"], headers=auth)
    assert done.status_code == 202, done.get_data(as_text=True)
    image = client.get(f"/api/v1/images/{done.get_json()['images'][0]['id']}", headers=auth).get_json()
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
