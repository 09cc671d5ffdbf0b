"""API behaviour a client relies on: auth, error shapes, limits, readiness."""

from __future__ import annotations

import io
import time

import jwt
import pytest

from api.app import create_app
from tests.conftest import corpus, new_entity_id
from tests.support.queues import RecordingQueue


@pytest.fixture(scope="module")
def recorded():
    return []


@pytest.fixture(scope="module")
def client(settings, store, recorded, contract):
    small = settings.with_overrides(max_upload_bytes=200_000, max_files_per_request=3)
    app = contract.attach(create_app(small, queue=RecordingQueue(recorded)))
    return app.test_client()


def _jpeg(name="nikon-p6000_small_640x480.jpg"):
    return (io.BytesIO(corpus("photos", name).read_bytes()), name)


def _error(resp, status, code):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


def test_missing_token_is_401(client):
    resp = client.post("/api/v1/properties/1/images", data={"file": _jpeg()})
    _error(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    _error(client.get("/api/v1/jobs/0123456789abcdef0123456789abcdef"), 401, "unauthorized")
    _error(client.get("/api/v1/images/1", headers={"Authorization": "Bearer not-a-jwt"}), 401, "invalid_token")


def test_bad_tokens_are_401(client, settings):
    none_alg = jwt.encode({"sub": "42", "exp": int(time.time()) + 60}, None, algorithm="none")
    expired = jwt.encode({"sub": "42", "exp": int(time.time()) - 5}, settings.jwt_secret, algorithm="HS256")
    wrong_key = jwt.encode({"sub": "42", "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256")
    other_alg = jwt.encode({"sub": "42", "exp": int(time.time()) + 60}, settings.jwt_secret, algorithm="HS512")
    no_exp = jwt.encode({"sub": "42"}, settings.jwt_secret, algorithm="HS256")
    now = int(time.time())
    # valid but for another service, or for a century (issue 22, L4)
    no_aud = jwt.encode({"sub": "42", "iat": now, "exp": now + 60}, settings.jwt_secret, algorithm="HS256")
    century = jwt.encode({"sub": "42", "iat": now, "exp": now + 100 * 365 * 86400, "aud": "imagepipe"},
                         settings.jwt_secret, algorithm="HS256")  # fmt: skip
    for token in (none_alg, expired, wrong_key, other_alg, no_exp, no_aud, century, "garbage"):
        _error(client.get("/api/v1/images/1", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")


def test_upload_enqueues_only_committed_ids(client, auth, session, recorded):
    from db.models import Image

    recorded.clear()
    resp = client.post(f"/api/v1/avatars/{new_entity_id()}/images", headers=auth, data={"file": _jpeg()})
    assert resp.status_code == 202
    image_id = resp.get_json()["images"][0]["id"]
    assert recorded == [image_id]
    # visible from another session: the row was committed before the enqueue
    assert session.get(Image, image_id).status == "pending"
    assert resp.headers["Location"] == resp.get_json()["job"]["status_url"]


def test_not_an_image_is_415_at_once(client, auth, recorded):
    recorded.clear()
    data = {"file": (io.BytesIO(b"%PDF-1.4 not an image"), "photo.jpg", "image/jpeg")}
    _error(client.post("/api/v1/properties/1/images", headers=auth, data=data), 415, "unsupported_media_type")
    assert recorded == []


def test_oversize_file_is_413(client, auth):
    big = corpus("photos", "bird_rgba-opaque_576x384.png")  # 487 kB: over this client's 200 kB limit
    data = {"file": (io.BytesIO(big.read_bytes()), big.name)}
    _error(client.post("/api/v1/properties/1/images", headers=auth, data=data), 413, "file_too_large")


def test_request_body_over_the_http_limit_is_413(client, auth):
    data = {"files": [(io.BytesIO(b"\xff\xd8\xff" + b"0" * 300_000), f"{i}.jpg") for i in range(3)]}
    _error(client.post("/api/v1/properties/1/images", headers=auth, data=data), 413, "file_too_large")


def test_mixed_batch_lists_rejected_files(client, auth, recorded):
    recorded.clear()
    data = {"files": [_jpeg(), (io.BytesIO(b"GIF89a...."), "anim.gif")]}
    resp = client.post(f"/api/v1/projects/{new_entity_id()}/images", headers=auth, data=data)
    assert resp.status_code == 202
    body = resp.get_json()
    assert len(body["images"]) == 1 and len(recorded) == 1
    assert body["rejected"] == [
        {"filename": "anim.gif", "error": {"code": "unsupported_media_type", "message": body["rejected"][0]["error"]["message"]}}
    ]


def test_missing_file_unknown_entity_and_unknown_ids(client, auth):
    _error(client.post("/api/v1/properties/1/images", headers=auth, data={}), 400, "missing_file")
    _error(client.post("/api/v1/castles/1/images", headers=auth, data={"file": _jpeg()}), 404, "unknown_entity")
    _error(client.get("/api/v1/images/999999999", headers=auth), 404, "image_not_found")
    _error(client.get("/api/v1/jobs/nope", headers=auth), 404, "job_not_found")
    _error(client.get("/api/v1/nothing-here", headers=auth), 404, "not_found")
    _error(client.get("/api/v1/properties/1/images?limit=0", headers=auth), 400, "invalid_parameter")
    _error(client.delete("/api/v1/properties/1/images", headers=auth), 405, "method_not_allowed")


def test_jobs_are_visible_to_their_uploader_and_admins_only(client, make_token):
    owner = {"Authorization": f"Bearer {make_token(501, entities=('properties:*',))}"}
    other = {"Authorization": f"Bearer {make_token(502)}"}
    admin = {"Authorization": f"Bearer {make_token(1, admin=True)}"}
    resp = client.post(f"/api/v1/properties/{new_entity_id()}/images", headers=owner, data={"file": _jpeg()})
    url = resp.get_json()["job"]["status_url"]
    assert client.get(url, headers=owner).get_json()["status"] == "queued"
    _error(client.get(url, headers=other), 404, "job_not_found")
    assert client.get(url, headers=admin).status_code == 200


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok", "store": "ok"}


def test_readiness_names_what_is_down(settings):
    broken = settings.with_overrides(broker_url="redis://127.0.0.1:9/0", aws_s3_endpoint_url="http://127.0.0.1:9")
    resp = create_app(broken).test_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert sorted(body["down"]) == ["broker", "store"]
    assert body["checks"]["database"] == "ok"
    assert body["error"]["code"] == "not_ready"


def test_upload_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and b'src="/web/app.js"' in page.data
    script = client.get("/web/app.js")
    assert script.status_code == 200 and b'from "/web/imagepipe.js"' in script.data
    module = client.get("/web/imagepipe.js")
    assert module.status_code == 200 and b"export async function uploadImages" in module.data
    assert module.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert client.get("/web/imagepipe.css").status_code == 200
