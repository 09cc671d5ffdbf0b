"""PUT /api/v1/{entity}/{id}/images/{filename}: the image as the request body, with a real worker,
PostgreSQL and SeaweedFS: the form upload's answers (202 and a job, duplicates, 415, 413, 403)
without multipart; the filename is a label only."""

from __future__ import annotations

import hashlib

import pytest
import requests

from tests.conftest import corpus, new_entity_id
from tests.support.http import wait_for_job

pytestmark = pytest.mark.e2e

PHOTO = "nikon-p6000_small_640x480.jpg"


def put(base, headers, entity_id, name, body, ctype="image/jpeg", entity="properties", **kw):
    return requests.put(
        f"{base}/api/v1/{entity}/{entity_id}/images/{name}",
        headers={**headers, "Content-Type": ctype},
        data=body,
        timeout=60,
        **kw,
    )


@pytest.fixture
def listing(make_token):
    entity_id = new_entity_id()
    return entity_id, {"Authorization": f"Bearer {make_token(entities=(f'properties:{entity_id}',))}"}


def test_a_raw_body_upload_is_processed_like_a_form_upload(live_server, celery_worker, listing, store):
    entity_id, headers = listing
    data = corpus("photos", PHOTO).read_bytes()
    r = put(live_server, headers, entity_id, "front%20door.jpg", data)
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == r.json()["job"]["status_url"]
    (image,) = r.json()["images"]
    assert image["filename"] == "front door.jpg"
    job = wait_for_job(live_server, headers, r.json()["job"]["status_url"])
    assert job["status"] == "succeeded"
    view = requests.get(f"{live_server}/api/v1/images/{image['id']}", headers=headers, timeout=10).json()
    assert view["sha256"] == hashlib.sha256(data).hexdigest() and view["declared_content_type"] == "image/jpeg"
    assert (view["width"], view["height"]) == (640, 480) and set(view["renditions"]) == {"thumbnail", "medium", "large"}
    assert "front" not in view["renditions"]["large"]["jpeg"]["url"]  # keys never hold a client's name

    again = put(live_server, headers, entity_id, "copy.jpg", data)
    assert again.status_code == 202 and again.json()["images"][0]["duplicate_of"] == image["id"]


def test_streamed_without_a_length(live_server, celery_worker, listing):
    entity_id, headers = listing
    data = corpus("photos", "tree_1024x772.webp").read_bytes()
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))  # Transfer-Encoding: chunked
    r = put(live_server, headers, entity_id, "tree.webp", chunks, ctype="image/webp")
    assert r.status_code == 202, r.text
    assert wait_for_job(live_server, headers, r.json()["job"]["status_url"])["status"] == "succeeded"


def test_refusals_answer_like_the_form_upload_and_store_nothing(live_server, listing, settings, make_token):
    entity_id, headers = listing
    svg = put(live_server, headers, entity_id, "logo.svg", corpus("reject", "libvips-logo.svg").read_bytes(), "image/svg+xml")
    assert svg.status_code == 415 and svg.json()["error"]["code"] == "unsupported_media_type"
    empty = put(live_server, headers, entity_id, "nothing.jpg", b"")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "missing_file"
    big = put(live_server, headers, entity_id, "big.jpg", b"\xff\xd8\xff" + bytes(settings.limits.max_upload_bytes))
    assert big.status_code == 413 and big.json()["error"]["code"] == "file_too_large"
    other = {"Authorization": f"Bearer {make_token(entities=(f'properties:{entity_id + 1}',))}"}
    forbidden = put(live_server, other, entity_id, "x.jpg", corpus("photos", PHOTO).read_bytes())
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "entity_forbidden"
    gallery = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images", headers=headers, timeout=10).json()
    assert gallery["images"] == []
