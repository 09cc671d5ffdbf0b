"""CORS (issue 27): a page on another origin (www.platform -> api.platform) calls the API. Exact
origins from CORS_ALLOWED_ORIGINS, no credentials, preflights answered before authentication."""

from __future__ import annotations

import io

from api.app import create_app
from tests.conftest import corpus, new_entity_id
from tests.support.queues import RecordingQueue

PAGE = "https://www.platform.example"


def _client(settings, origins=(PAGE,)):
    return create_app(settings.with_overrides(cors_allowed_origins=origins), queue=RecordingQueue()).test_client()


def test_a_preflight_from_an_allowed_origin_is_answered_without_a_token(settings):
    client = _client(settings)
    r = client.options(
        f"/api/v1/properties/{new_entity_id()}/images",
        headers={"Origin": PAGE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == PAGE  # the origin itself, never *
    assert "POST" in r.headers["Access-Control-Allow-Methods"] and "PATCH" in r.headers["Access-Control-Allow-Methods"]
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
    assert int(r.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert "Origin" in r.headers["Vary"]


def test_other_origins_get_no_cors_headers(settings):
    client = _client(settings)
    for origin in ("https://evil.example", "https://www.platform.example.evil.example", "null", PAGE + ":8443"):
        r = client.options("/api/v1/uploads", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and "Access-Control-Allow-Origin" not in r.headers, origin
        assert "Access-Control-Allow-Methods" not in r.headers
        got = client.get("/healthz", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in got.headers
    # no origins configured: nobody
    preflight = {"Origin": PAGE, "Access-Control-Request-Method": "POST"}
    r = _client(settings, origins=()).options("/api/v1/uploads", headers=preflight)
    assert "Access-Control-Allow-Origin" not in r.headers


def test_answers_and_errors_carry_the_origin_so_the_page_reads_the_message(settings, make_token):
    client = _client(settings)
    auth = {"Authorization": f"Bearer {make_token(42, entities=('properties:*',))}", "Origin": PAGE}
    html = io.BytesIO(b"<html>not a photo</html>" * 10)
    refused = client.post(f"/api/v1/properties/{new_entity_id()}/images", data={"file": (html, "a.jpg")}, headers=auth)
    assert refused.status_code == 415
    assert refused.headers["Access-Control-Allow-Origin"] == PAGE  # a page's fetch can read the error
    assert refused.get_json()["error"]["code"] == "unsupported_media_type"
    photo = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    ok = client.post(f"/api/v1/properties/{new_entity_id()}/images", data={"file": (io.BytesIO(photo), "a.jpg")}, headers=auth)
    assert ok.status_code == 202 and ok.headers["Access-Control-Allow-Origin"] == PAGE
    assert "Location" in ok.headers["Access-Control-Expose-Headers"]
    unauthorized = client.get("/api/v1/jobs/x", headers={"Origin": PAGE})
    assert unauthorized.status_code == 401 and unauthorized.headers["Access-Control-Allow-Origin"] == PAGE
