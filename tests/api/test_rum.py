"""`POST /api/v1/rum` as a browser's beacon reaches it: text/plain JSON, no token. Accepted beacons
move the load-time histogram, the per-viewport counter and the LCP histogram by exactly what was
sent (numbers clamped); anything else is a clear 400, an oversized body 413, a flood 429."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from tests.conftest import new_entity_id
from tests.support.queues import RecordingQueue


def _samples(client) -> dict:
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _v(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def client(settings):
    app = create_app(settings.with_overrides(rum_per_minute=5, rate_limit_redis_url=None), queue=RecordingQueue())
    return app.test_client()


def _beacon(client, body, content_type="text/plain;charset=UTF-8", addr=None):
    addr = addr or f"198.51.100.{new_entity_id() % 250}"
    return client.post(
        "/api/v1/rum",
        data=json.dumps(body) if not isinstance(body, bytes) else body,
        content_type=content_type,
        environ_base={"REMOTE_ADDR": addr},
    )


def test_a_beacon_moves_the_histograms_by_what_it_carries(client):
    before = _samples(client)
    body = {
        "loads": [
            {"rendition": "large", "format": "webp", "context": "detail", "load_ms": 420.5, "bytes": 180_000, "viewport": 1280},
            {"rendition": "thumbnail", "format": "jpeg", "context": "list", "load_ms": 35, "bytes": 0, "viewport": 390},
            {"rendition": "large", "format": "webp", "context": "detail", "load_ms": 9e12, "bytes": 10**15, "viewport": 10**9},
        ],
        "lcp": {"rendition": "large", "format": "webp", "context": "detail", "ms": 1234},
    }
    r = _beacon(client, body)
    assert r.status_code == 204, r.get_data(as_text=True)
    after = _samples(client)

    def moved(name, **labels):
        return _v(after, name, **labels) - _v(before, name, **labels)

    detail = dict(rendition="large", format="webp", context="detail")
    assert moved("imagepipe_image_load_seconds_count", **detail) == 2
    assert moved("imagepipe_image_load_seconds_sum", **detail) == pytest.approx(0.4205 + 120)  # clamped to 120 s
    assert moved("imagepipe_image_load_seconds_bucket", **detail, le="0.5") == 1
    assert moved("imagepipe_image_load_seconds_bucket", **detail, le="20.0") == 1  # the clamped one is past 20 s
    assert moved("imagepipe_image_loads_total", rendition="large", context="detail", viewport="1024-1439") == 1
    assert moved("imagepipe_image_loads_total", rendition="large", context="detail", viewport=">=1920") == 1
    assert moved("imagepipe_image_loads_total", rendition="thumbnail", context="list", viewport="<480") == 1
    assert moved("imagepipe_image_load_bytes_total", rendition="large", format="webp") == 180_000 + 64 * 1024 * 1024
    assert moved("imagepipe_image_load_bytes_total", rendition="thumbnail", format="jpeg") == 0
    assert moved("imagepipe_image_lcp_seconds_count", rendition="large", context="detail") == 1
    assert moved("imagepipe_image_lcp_seconds_sum", rendition="large", context="detail") == pytest.approx(1.234)
    assert moved("imagepipe_rum_beacons_total", outcome="accepted") == 1
    # application/json is as good as text/plain
    assert _beacon(client, {"loads": []}, content_type="application/json").status_code == 204


@pytest.mark.parametrize(
    "body, field",
    [
        ({"loads": [{"rendition": "huge", "format": "webp", "context": "detail", "load_ms": 1, "viewport": 1}]}, "rendition"),
        ({"loads": [{"rendition": "large", "format": "gif", "context": "detail", "load_ms": 1, "viewport": 1}]}, "format"),
        ({"loads": [{"rendition": "large", "format": "webp", "context": "hero", "load_ms": 1, "viewport": 1}]}, "context"),
        ({"loads": [{"rendition": "large", "format": "webp", "context": "grid", "load_ms": -1, "viewport": 1}]}, "load_ms"),
        ({"loads": [{"rendition": "large", "format": "webp", "context": "grid", "load_ms": "1", "viewport": 1}]}, "load_ms"),
        ({"loads": [], "url": "https://tracker.example/"}, "url"),  # no free text is taken
        ({"loads": [{"rendition": "large", "format": "webp", "context": "grid", "load_ms": 1, "viewport": 1}] * 51}, "loads"),
        (b"not json", "JSON object"),
        (b"[1, 2]", "JSON object"),
    ],
)
def test_anything_else_is_a_clear_400_and_counts_as_invalid(client, body, field):
    before = _v(_samples(client), "imagepipe_rum_beacons_total", outcome="invalid")
    r = _beacon(client, body)
    assert r.status_code == 400, r.get_data(as_text=True)
    error = r.get_json()["error"]
    expected = "invalid_json" if field == "JSON object" else "invalid_parameter"
    assert error["code"] == expected and field in error["message"], error
    assert _v(_samples(client), "imagepipe_rum_beacons_total", outcome="invalid") == before + 1


def test_a_large_body_is_refused_before_it_is_read_and_a_flood_is_limited_per_address(client, settings):
    big = _beacon(client, b"{" + b" " * 20_000 + b"}")
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "request_too_large"
    codes = [_beacon(client, {"loads": []}, addr="203.0.113.9").status_code for _ in range(6)]
    assert codes == [204] * 5 + [429]
    limited = _beacon(client, {"loads": []}, addr="203.0.113.9")
    assert limited.get_json()["error"]["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
    assert _beacon(client, {"loads": []}, addr="203.0.113.10").status_code == 204  # another visitor
    off = create_app(settings.with_overrides(rum_per_minute=0), queue=RecordingQueue()).test_client()
    assert _beacon(off, {"loads": []}).status_code == 404
