"""POST /api/v1/{entity}/{id}/imports with a real worker: photos downloaded from the loopback
photo server (allow-listed for tests only) become ready images with their media fields; each
URL that cannot be fetched fails its own image with a fetch_* code; bad requests are refused
before anything is stored."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import corpus, new_entity_id
from tests.support.http import wait_for_job
from tests.support.photoserver import PhotoServer

pytestmark = pytest.mark.e2e

PHOTO = "nikon-p6000_small_640x480.jpg"


@pytest.fixture(scope="module")
def photos():
    s = PhotoServer("127.0.0.2")
    yield s
    s.close()


@pytest.fixture(scope="module")
def loopback():
    s = PhotoServer("127.0.0.1")
    yield s
    s.close()


def _import(base, headers, entity_id, items, entity="properties"):
    return requests.post(f"{base}/api/v1/{entity}/{entity_id}/imports", headers=headers, json={"items": items}, timeout=30)


def test_imports_download_good_urls_and_fail_the_rest_with_their_codes(
    live_server, celery_worker, make_token, photos, loopback, store
):
    entity_id = new_entity_id()
    headers = {"Authorization": f"Bearer {make_token(entities=(f'properties:{entity_id}',))}"}
    good = f"{photos.base}/photos/{PHOTO}"
    items = [
        {"url": good, "category": "Photo", "image_of": "FrontOfStructure", "caption": "Front"},
        {"url": f"{photos.base}/redirect?to={loopback.base}/photos/{PHOTO}"},  # allowed host -> 127.0.0.1
        {"url": f"{photos.base}/status/404"},
        {"url": f"{photos.base}/huge"},
        {"url": f"{photos.base}/reject/libvips-logo.svg"},  # not a format we take
    ]
    seen = len(loopback.requests)
    r = _import(live_server, headers, entity_id, items)
    assert r.status_code == 202, r.text
    ids = [i["id"] for i in r.json()["images"]]
    assert [i["filename"] for i in r.json()["images"]][0] == PHOTO
    job = wait_for_job(live_server, headers, r.json()["job"]["status_url"])
    assert job["status"] == "partial" and (job["succeeded"], job["failed"]) == (1, 4)

    views = [requests.get(f"{live_server}/api/v1/images/{i}", headers=headers, timeout=10).json() for i in ids]
    ok = views[0]
    assert ok["status"] == "ready" and (ok["image_of"], ok["caption"], ok["source_url"]) == ("FrontOfStructure", "Front", good)
    assert (ok["width"], ok["height"]) == (640, 480) and set(ok["renditions"]) == {"thumbnail", "medium", "large"}
    assert ok["sha256"] == __import__("hashlib").sha256(corpus("photos", PHOTO).read_bytes()).hexdigest()
    # Re-hosted: the renditions are our objects, not links to the source.
    assert ok["renditions"]["large"]["jpeg"]["url"].startswith(store.public_url(""))
    codes = [v["error"]["code"] for v in views[1:]]
    assert codes == ["fetch_refused_address", "fetch_http_error", "fetch_too_large", "unsupported_media_type"]
    assert all(v["error"]["message"] for v in views[1:])
    assert len(loopback.requests) == seen  # the redirect to loopback was never followed

    # The same photo again: refused as a duplicate of the first, nothing stored twice.
    r = _import(live_server, headers, entity_id, [{"url": good}])
    job = wait_for_job(live_server, headers, r.json()["job"]["status_url"])
    assert job["status"] == "failed" and job["images"][0]["error"]["code"] == "duplicate_image"
    assert str(ids[0]) in job["images"][0]["error"]["message"]


@pytest.mark.parametrize(
    ("items", "code", "says"),
    [
        ([{"url": "ftp://example.com/a.jpg"}], "invalid_url", "items[0].url: only http and https"),
        ([{"url": "https://example.com:2222/a.jpg"}], "invalid_url", "ports 80 and 443"),
        ([{"url": "http://127.0.0.1:5432/"}], "invalid_url", "ports 80 and 443"),
        ([{"url": "https://example.com/a.jpg", "image_of": "Moon"}], "invalid_parameter", "image_of"),
        ([{"url": "https://example.com/a.jpg", "original_of": 2**31 - 1}], "invalid_parameter", "original_of"),
        ([], "invalid_parameter", "items"),
        ([{"url": f"https://example.com/{n}.jpg"} for n in range(21)], "too_many_files", "IMPORT_MAX_URLS"),
    ],
)
def test_bad_imports_are_refused_before_anything_is_stored(live_server, make_token, items, code, says):
    entity_id = new_entity_id()
    headers = {"Authorization": f"Bearer {make_token(entities=(f'properties:{entity_id}',))}"}
    r = _import(live_server, headers, entity_id, items)
    assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
    assert says in r.json()["error"]["message"]
    gallery = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images", headers=headers, timeout=10).json()
    assert gallery["images"] == []


def test_imports_need_a_grant(live_server, make_token):
    entity_id = new_entity_id()
    other = {"Authorization": f"Bearer {make_token(entities=(f'properties:{entity_id + 1}',))}"}
    r = _import(live_server, other, entity_id, [{"url": "https://example.com/a.jpg"}])
    assert r.status_code in (403, 404) and r.json()["error"]["code"]
