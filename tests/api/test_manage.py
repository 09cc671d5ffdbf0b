"""The upload API over HTTP with a real worker, Redis, PostgreSQL and SeaweedFS: batches,
callbacks, gallery management, delete, signed URLs and ownership."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import requests
from sqlalchemy import select

from db.models import Image
from tests.conftest import corpus, new_entity_id
from tests.support.http import upload, wait_for_job
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

PHOTOS = ["nikon-p6000_small_640x480.jpg", "waterfall_progressive_orient6_308x231.jpg", "tree_1024x772.webp"]


def _batch(base, headers, entity, entity_id, files, data=None):
    handles = [(name, open(path, "rb"), ctype) for name, path, ctype in files]
    try:
        return requests.post(
            f"{base}/api/v1/{entity}/{entity_id}/images",
            headers=headers,
            data=data or {},
            files=[("files", h) for h in handles],
            timeout=60,
        )
    finally:
        for _, fh, _ in handles:
            fh.close()


def _ready_image(base, headers, entity="properties", entity_id=None, photo=PHOTOS[0]) -> dict:
    entity_id = entity_id or new_entity_id()
    body = upload(base, headers, entity, entity_id, corpus("photos", photo)).json()
    job = wait_for_job(base, headers, body["job"]["status_url"])
    assert job["status"] == "succeeded", job
    return requests.get(f"{base}/api/v1/images/{body['images'][0]['id']}", headers=headers, timeout=10).json()


# --- batches ---------------------------------------------------------------------------------


def test_batch_job_reports_counts_per_image_errors_and_partial(live_server, celery_worker, auth):
    entity_id = new_entity_id()
    files = [(name, corpus("photos", name), "image/jpeg") for name in PHOTOS]
    files += [
        ("notes.jpg", corpus("reject", "libvips-logo.svg"), "image/jpeg"),  # refused at once
        ("cut.jpg", corpus("reject", "libvips-truncated.jpg"), "image/jpeg"),
    ]  # fails in the worker
    r = _batch(live_server, auth, "projects", entity_id, files)
    assert r.status_code == 202, r.text
    body = r.json()
    assert [i["filename"] for i in body["images"]] == PHOTOS + ["cut.jpg"]
    assert body["rejected"] == [
        {"filename": "notes.jpg", "error": {"code": "unsupported_media_type", "message": body["rejected"][0]["error"]["message"]}}
    ]

    job = wait_for_job(live_server, auth, body["job"]["status_url"])
    assert job["status"] == "partial"
    assert (job["total"], job["succeeded"], job["failed"], job["pending"]) == (4, 3, 1, 0)
    by_name = {i["filename"]: i for i in job["images"]}
    assert by_name["cut.jpg"]["status"] == "failed" and by_name["cut.jpg"]["error"]["code"] == "corrupt_image"
    assert all(by_name[n]["status"] == "ready" and by_name[n]["error"] is None for n in PHOTOS)


def test_too_many_files_in_one_request_is_refused_before_anything_is_stored(live_server, auth, settings, session):
    entity_id = new_entity_id()
    n = settings.max_files_per_request + 1
    files = [(f"{k}.jpg", corpus("photos", PHOTOS[1]), "image/jpeg") for k in range(n)]
    r = _batch(live_server, auth, "projects", entity_id, files)
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_files"
    assert session.scalars(select(Image).where(Image.entity_id == entity_id)).all() == []


# --- callbacks -------------------------------------------------------------------------------


def test_callback_is_signed_retried_and_recorded(live_server, celery_worker, auth, settings):
    receiver = Receiver(fail_first=1)
    entity_id = new_entity_id()
    files = [(name, corpus("photos", name), "image/jpeg") for name in PHOTOS[:2]]
    r = _batch(live_server, auth, "properties", entity_id, files, data={"callback_url": receiver.url})
    assert r.status_code == 202, r.text
    receiver.wait(2)  # the first answer was a 500: delivered again, with backoff
    for headers, body in receiver.calls:
        expected = hmac.new(
            settings.callback_secret.encode(), headers["x-imagepipe-timestamp"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        assert headers["x-imagepipe-signature"] == f"sha256={expected}"
        assert abs(int(headers["x-imagepipe-timestamp"]) - time.time()) < 120
        assert headers["content-type"] == "application/json"
    sent = json.loads(receiver.calls[-1][1])
    assert sent["id"] == r.json()["job"]["id"] and sent["status"] == "succeeded" and sent["total"] == 2
    time.sleep(0.5)
    job = requests.get(live_server + r.json()["job"]["status_url"], headers=auth, timeout=10).json()
    assert job["callback"]["state"] == "delivered" and job["callback"]["attempts"] == 2
    assert job["callback"]["delivered_at"]
    assert len(receiver.calls) == 2


def test_callback_only_to_allowed_hosts(live_server, auth):
    for url in ("http://example.com/hook", "ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x"):
        r = _batch(
            live_server,
            auth,
            "properties",
            new_entity_id(),
            [("a.jpg", corpus("photos", PHOTOS[1]), "image/jpeg")],
            data={"callback_url": url},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "callback_not_allowed", url


# --- gallery management ----------------------------------------------------------------------


def test_patch_orders_the_gallery_keeps_one_cover_and_sets_alt_text(live_server, celery_worker, auth, make_token):
    entity_id = new_entity_id()
    ids = []
    for photo in PHOTOS:
        body = upload(live_server, auth, "properties", entity_id, corpus("photos", photo)).json()
        wait_for_job(live_server, auth, body["job"]["status_url"])
        ids.append(body["images"][0]["id"])
    url = f"{live_server}/api/v1/images"
    for image_id, position in zip(ids, (2, 0, 1), strict=True):
        r = requests.patch(f"{url}/{image_id}", json={"position": position}, headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["position"] == position
    listing = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images", headers=auth, timeout=10).json()
    assert [i["id"] for i in listing["images"]] == [ids[1], ids[2], ids[0]]

    assert requests.patch(f"{url}/{ids[0]}", json={"is_primary": True}, headers=auth, timeout=10).json()["is_primary"]
    r = requests.patch(
        f"{url}/{ids[2]}", json={"is_primary": True, "alt_text": "  Living room, south light "}, headers=auth, timeout=10
    ).json()
    assert r["is_primary"] and r["alt_text"] == "Living room, south light"
    listing = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images", headers=auth, timeout=10).json()
    assert [i["id"] for i in listing["images"] if i["is_primary"]] == [ids[2]]

    # Paging keeps the gallery order.
    page1 = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images?limit=2", headers=auth, timeout=10).json()
    page2 = requests.get(
        f"{live_server}/api/v1/properties/{entity_id}/images?limit=2&cursor={page1['next_cursor']}", headers=auth, timeout=10
    ).json()
    assert [i["id"] for i in page1["images"] + page2["images"]] == [ids[1], ids[2], ids[0]]
    assert page2["next_cursor"] is None

    for bad in (
        {"position": -1},
        {"position": "1"},
        {"is_primary": "yes"},
        {"alt_text": 5},
        {"alt_text": "x" * 501},
        {"colour": "red"},
    ):
        r = requests.patch(f"{url}/{ids[0]}", json=bad, headers=auth, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter", bad
    r = requests.patch(f"{url}/{ids[0]}", data="position=1", headers=auth, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    # Someone else's image does not exist for them; an admin may change it.
    other = {"Authorization": f"Bearer {make_token(7)}"}
    r = requests.patch(f"{url}/{ids[0]}", json={"position": 9}, headers=other, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "image_not_found"
    admin = {"Authorization": f"Bearer {make_token(1, admin=True)}"}
    assert requests.patch(f"{url}/{ids[0]}", json={"position": 9}, headers=admin, timeout=10).status_code == 200


# --- delete ----------------------------------------------------------------------------------


def _keys(store, data: dict, session) -> list[str]:
    row = session.get(Image, data["id"])
    session.refresh(row)
    return [row.s3_key] + [r.key for r in row.renditions]


def test_delete_removes_every_object_and_the_record(live_server, celery_worker, auth, make_token, store, session):
    data = _ready_image(live_server, auth)
    keys = _keys(store, data, session)
    assert len(keys) == 7 and all(store.exists(k) for k in keys)
    other = {"Authorization": f"Bearer {make_token(7)}"}
    url = f"{live_server}/api/v1/images/{data['id']}"
    assert requests.delete(url, headers=other, timeout=10).status_code == 404  # not theirs: not there

    r = requests.delete(url, headers=auth, timeout=10)
    assert r.status_code == 204 and r.content == b""
    assert [k for k in keys if store.exists(k)] == []
    session.expire_all()
    assert session.get(Image, data["id"]) is None
    assert requests.get(url, headers=auth, timeout=10).status_code == 404
    again = requests.delete(url, headers=auth, timeout=10)
    assert again.status_code == 404 and again.json()["error"]["code"] == "image_not_found"


def test_delete_when_the_store_fails_hides_the_image_and_a_task_finishes(
    live_server, celery_worker, auth, settings, store, session, seaweed
):
    from api.app import create_app
    from tests.support.flaky_proxy import FlakyProxy

    data = _ready_image(live_server, auth, entity="projects")
    keys = _keys(store, data, session)
    with FlakyProxy(seaweed.endpoint_url) as proxy:
        proxy.fail_next = 10_000  # the API's store is down for the whole request
        broken = create_app(settings.with_overrides(aws_s3_endpoint_url=proxy.url))
        r = broken.test_client().delete(f"/api/v1/images/{data['id']}", headers=auth)
        assert r.status_code == 202 and r.get_json() == {"id": data["id"], "status": "deleting"}
        # Gone from the gallery and from reads at once...
        listing = requests.get(f"{live_server}/api/v1/projects/{data['entity_id']}/images", headers=auth, timeout=10).json()
        assert listing["images"] == []
        assert requests.get(f"{live_server}/api/v1/images/{data['id']}", headers=auth, timeout=10).status_code == 404
        # ...and the worker's task (its store is healthy) removes the objects and the row.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            session.expire_all()
            if session.get(Image, data["id"]) is None:
                break
            time.sleep(0.2)
        assert session.get(Image, data["id"]) is None
        assert [k for k in keys if store.exists(k)] == []


# --- signed URLs -----------------------------------------------------------------------------


def test_signed_url_opens_the_private_original_and_expires(live_server, celery_worker, auth, make_token, store, session):
    data = _ready_image(live_server, auth, photo=PHOTOS[1])
    original = session.get(Image, data["id"]).s3_key
    anonymous = requests.get(store.public_url(original), timeout=10)
    assert anonymous.status_code == 403  # originals are private

    url = f"{live_server}/api/v1/images/{data['id']}/url"
    signed = requests.get(url, params={"expires_in": 120}, headers=auth, timeout=10).json()
    got = requests.get(signed["url"], timeout=10)
    assert got.status_code == 200 and got.content == corpus("photos", PHOTOS[1]).read_bytes()
    rendition = requests.get(url, params={"rendition": "thumbnail", "format": "jpeg"}, headers=auth, timeout=10).json()
    assert requests.get(rendition["url"], timeout=10).headers["Content-Type"] == "image/jpeg"

    short = requests.get(url, params={"expires_in": 1}, headers=auth, timeout=10).json()
    time.sleep(2.5)
    assert requests.get(short["url"], timeout=10).status_code == 403  # SeaweedFS enforces the expiry

    for bad in ({"expires_in": 0}, {"expires_in": 7 * 24 * 3600 + 1}, {"expires_in": "soon"}):
        r = requests.get(url, params=bad, headers=auth, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter", bad
    r = requests.get(url, params={"rendition": "poster"}, headers=auth, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "rendition_not_found"
    other = {"Authorization": f"Bearer {make_token(7)}"}
    assert requests.get(url, headers=other, timeout=10).status_code == 404


def test_cloudfront_signed_url_when_a_key_pair_is_configured(settings, store, tmp_path):
    import base64
    from urllib.parse import parse_qs, urlparse

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from services.images.manage import signed_url

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "cf.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    cf = settings.with_overrides(
        aws_cloudfront_url="https://d111.cloudfront.net", cloudfront_key_pair_id="K2JCJMDEHXQW5F", cloudfront_private_key_path=pem
    )
    url, expires_at = signed_url(cf, store, "originals/properties/1/2.jpg", 300)
    parsed = urlparse(url)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("https", "d111.cloudfront.net", "/originals/properties/1/2.jpg")
    q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    assert q["Key-Pair-Id"] == "K2JCJMDEHXQW5F" and int(q["Expires"]) == int(expires_at.timestamp())
    policy = (
        '{"Statement":[{"Resource":"https://d111.cloudfront.net/originals/properties/1/2.jpg",'
        f'"Condition":{{"DateLessThan":{{"AWS:EpochTime":{q["Expires"]}}}}}}}]}}'
    )
    sig = base64.b64decode(q["Signature"].replace("-", "+").replace("_", "=").replace("~", "/"))
    key.public_key().verify(sig, policy.encode(), padding.PKCS1v15(), hashes.SHA1())  # raises if wrong


# --- admin -----------------------------------------------------------------------------------


def test_admin_route_needs_the_admin_role(live_server, celery_worker, auth, make_token):
    body = upload(live_server, auth, "avatars", new_entity_id(), corpus("reject", "libvips-truncated.jpg")).json()
    wait_for_job(live_server, auth, body["job"]["status_url"])
    r = requests.get(f"{live_server}/api/v1/admin/images?status=failed", headers=auth, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    admin = {"Authorization": f"Bearer {make_token(1, admin=True)}"}
    r = requests.get(f"{live_server}/api/v1/admin/images?status=failed", headers=admin, timeout=10)
    assert r.status_code == 200 and body["images"][0]["id"] in [i["id"] for i in r.json()["images"]]
    assert requests.get(f"{live_server}/api/v1/admin/images?status=odd", headers=admin, timeout=10).status_code == 400
