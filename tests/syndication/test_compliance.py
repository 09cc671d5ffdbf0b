"""Compliance warnings on a listing's gallery and GET .../compliance: a too-small photo, an altered
cover, an unpaired staged photo, an aspect a strict profile refuses to take as it is; warnings
that go once the listing is put right; never a refusal, never in the public view."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import new_entity_id
from tests.support.http import wait_for_job
from tests.syndication.test_media_fields import upload_with_media

pytestmark = pytest.mark.e2e


def codes(compliance) -> set[tuple[str, int | None]]:
    return {(w["code"], w["image_id"]) for w in compliance["warnings"]}


def test_warnings_for_the_mls_rules_and_their_repair(live_server, celery_worker, make_token):
    listing = new_entity_id()
    headers = {"Authorization": f"Bearer {make_token(entities=(f'properties:{listing}',))}"}
    files = ["iphone6_3264x2448.jpg", "nikon-p6000_small_640x480.jpg", "olympus-ep3_4032x3024.jpg", "flickr-saw_2725x2225.jpg"]
    media = [
        {"category": "Photo", "image_of": "FrontOfStructure", "alteration": ["TwilightConversion"]},  # an altered cover
        {"category": "Photo", "image_of": "Kitchen"},  # 640x480: too small
        {"category": "Photo", "image_of": "LivingRoom", "alteration": ["VirtualStagingItemAddition"]},  # no original
        {"category": "Photo", "image_of": "Yard"},  # 2725x2225: not 4:3
    ]
    r = upload_with_media(live_server, headers, listing, files, media)
    assert r.status_code == 202, r.text  # warnings, never refusals
    assert wait_for_job(live_server, headers, r.json()["job"]["status_url"], timeout_s=180)["status"] == "succeeded"
    cover, small, staged, yard = (i["id"] for i in r.json()["images"])
    patch = lambda image, body: requests.patch(f"{live_server}/api/v1/images/{image}", headers=headers, json=body, timeout=10)  # noqa: E731
    assert patch(cover, {"is_primary": True, "position": 0}).status_code == 200
    for image, position in ((small, 3), (staged, 1), (yard, 2)):
        assert patch(image, {"position": position}).status_code == 200

    gallery = requests.get(f"{live_server}/api/v1/properties/{listing}/images", headers=headers, timeout=10).json()
    assert gallery["compliance"]["profile"] == "default" and gallery["compliance"]["ok"] is False
    assert codes(gallery["compliance"]) == {
        ("primary_altered", cover),
        ("altered_without_original", cover),  # an altered cover is unpaired too
        ("too_small", small),
        ("altered_without_original", staged),
    }
    assert all(w["message"] for w in gallery["compliance"]["warnings"])
    public = requests.get(f"{live_server}/api/v1/properties/{listing}/images", timeout=10).json()
    assert "compliance" not in public

    url = f"{live_server}/api/v1/properties/{listing}/compliance"
    strict = requests.get(url, params={"profile": "mls-strict"}, headers=headers, timeout=10).json()
    assert ("aspect", yard) in codes(strict) and ("too_small", small) in codes(strict)

    # Put right: an unaltered cover, the staged photo paired with its original right beside it.
    assert patch(cover, {"alteration": []}).status_code == 200
    assert patch(staged, {"original_of": small}).status_code == 200  # not adjacent: position 1 vs 3
    now = requests.get(url, headers=headers, timeout=10).json()
    assert codes(now) == {("too_small", small), ("original_not_adjacent", staged)}
    for image, position in ((small, 1), (staged, 2), (yard, 3)):
        assert patch(image, {"position": position}).status_code == 200
    assert patch(small, {"permission": "Private"}).status_code == 200  # the original must stay public
    assert codes(requests.get(url, headers=headers, timeout=10).json()) == {("original_not_public", staged)}
    assert patch(small, {"permission": "Public"}).status_code == 200
    assert codes(requests.get(url, headers=headers, timeout=10).json()) == {("too_small", small)}
    settled = requests.get(url, params={"profile": "disclosure-only"}, headers=headers, timeout=10).json()
    assert settled == {"profile": "disclosure-only", "ok": True, "warnings": []}


def test_an_unknown_profile_is_refused(live_server, make_token):
    listing = new_entity_id()
    headers = {"Authorization": f"Bearer {make_token(entities=(f'properties:{listing}',))}"}
    r = requests.get(
        f"{live_server}/api/v1/properties/{listing}/compliance", params={"profile": "nar"}, headers=headers, timeout=10
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter" and "default" in r.json()["error"]["message"]
