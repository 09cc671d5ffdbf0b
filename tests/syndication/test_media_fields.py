"""RESO media fields through the API (upload per file, PATCH, the gallery and the public view),
permission hiding non-public media, and an altered photo's disclosure linking its original; with
a real worker, PostgreSQL and SeaweedFS."""

from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import corpus, new_entity_id
from tests.support.http import wait_for_job

pytestmark = pytest.mark.e2e

FRONT = "nikon-p6000_small_640x480.jpg"
ROOM = "tree_1024x772.webp"


def upload_with_media(base, headers, entity_id, files, media, entity="properties"):
    handles = [(name, open(corpus("photos", name), "rb")) for name in files]
    try:
        return requests.post(
            f"{base}/api/v1/{entity}/{entity_id}/images",
            headers=headers,
            data={"media": json.dumps(media)},
            files=[("files", (name, fh, "application/octet-stream")) for name, fh in handles],
            timeout=60,
        )
    finally:
        for _, fh in handles:
            fh.close()


def gallery(base, entity_id, headers=None):
    r = requests.get(f"{base}/api/v1/properties/{entity_id}/images", headers=headers or {}, timeout=10)
    assert r.status_code == 200, r.text
    return {i["id"]: i for i in r.json()["images"]}


@pytest.fixture(scope="module")
def staged_listing(live_server, celery_worker, make_token):
    """A listing with an exterior photo and a room photo, uploaded with their media fields."""
    entity_id = new_entity_id()
    headers = {"Authorization": f"Bearer {make_token(entities=(f'properties:{entity_id}',))}"}
    media = [
        {"category": "Photo", "image_of": "FrontOfStructure", "caption": "From the street"},
        {"category": "Photo", "image_of": "LivingRoom", "description": "South-facing, 30 m²", "permission": "Public"},
    ]
    r = upload_with_media(live_server, headers, entity_id, [FRONT, ROOM], media)
    assert r.status_code == 202, r.text
    job = wait_for_job(live_server, headers, r.json()["job"]["status_url"])
    assert job["status"] == "succeeded", job
    front, room = (i["id"] for i in r.json()["images"])
    return entity_id, headers, front, room


def test_upload_takes_media_fields_per_file(live_server, staged_listing):
    entity_id, headers, front, room = staged_listing
    mine = gallery(live_server, entity_id, headers)
    assert (mine[front]["category"], mine[front]["image_of"], mine[front]["caption"]) == (
        "Photo",
        "FrontOfStructure",
        "From the street",
    )
    assert mine[front]["description"] is None and mine[front]["alteration"] == [] and mine[front]["permission"] == "Public"
    assert (mine[room]["image_of"], mine[room]["description"]) == ("LivingRoom", "South-facing, 30 m²")


def test_patch_round_trips_fields_and_an_altered_photo_discloses_its_original(live_server, staged_listing, make_token):
    entity_id, headers, front, room = staged_listing
    # A staged copy of the room photo: uploaded, then marked altered with its original.
    r = upload_with_media(
        live_server, headers, entity_id, ["waterfall_progressive_orient6_308x231.jpg"], [{"image_of": "LivingRoom"}]
    )
    assert r.status_code == 202, r.text
    wait_for_job(live_server, headers, r.json()["job"]["status_url"])
    staged = r.json()["images"][0]["id"]
    patch = {"alteration": ["VirtualStagingItemAddition", "DeclutteredItemRemoved"], "original_of": room, "caption": "Staged"}
    r = requests.patch(f"{live_server}/api/v1/images/{staged}", headers=headers, json=patch, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["alteration"] == ["VirtualStagingItemAddition", "DeclutteredItemRemoved"]  # RESO's order
    assert body["original_of"] == room and body["caption"] == "Staged"

    public = gallery(live_server, entity_id)  # anyone
    room_large = public[room]["renditions"]["large"]["jpeg"]["url"]
    assert public[staged]["disclosure"] == {
        "text": "Virtually staged",
        "alteration": ["VirtualStagingItemAddition", "DeclutteredItemRemoved"],
        "original_id": room,
        "original_url": room_large,
    }
    assert public[room]["disclosure"] is None and "permission" not in public[room] and "source_url" not in public[room]
    assert requests.get(room_large, timeout=10).status_code == 200  # the original stays public

    # Clearing: None and [] put the fields back.
    r = requests.patch(
        f"{live_server}/api/v1/images/{staged}", headers=headers, json={"alteration": ["None"], "caption": None}, timeout=10
    )
    assert r.json()["alteration"] == [] and r.json()["caption"] is None and r.json()["disclosure"] is None


def test_non_public_media_never_reach_the_public_view(live_server, staged_listing):
    entity_id, headers, front, room = staged_listing
    url = f"{live_server}/api/v1/images/{front}"
    assert requests.patch(url, headers=headers, json={"permission": "AgentOnly"}, timeout=10).status_code == 200
    try:
        assert front not in gallery(live_server, entity_id)
        assert requests.get(url, timeout=10).status_code == 404
        assert gallery(live_server, entity_id, headers)[front]["permission"] == "AgentOnly"  # the writer still sees it
    finally:
        requests.patch(url, headers=headers, json={"permission": "Public"}, timeout=10)
    assert front in gallery(live_server, entity_id)


@pytest.mark.parametrize(
    ("patch", "says"),
    [
        ({"category": "Selfie"}, "category"),
        ({"image_of": "kitchen"}, "image_of"),  # RESO's values are case-sensitive
        ({"alteration": ["Photoshopped"]}, "alteration"),
        ({"permission": "Everyone"}, "permission"),
        ({"caption": "x" * 51}, "caption"),
        ({"description": "x" * 1025}, "description"),
        ({"original_of": 2**31 - 1}, "original_of"),
    ],
)
def test_bad_media_fields_are_refused_with_the_field_named(live_server, staged_listing, patch, says):
    entity_id, headers, front, room = staged_listing
    r = requests.patch(f"{live_server}/api/v1/images/{front}", headers=headers, json=patch, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter", r.text
    assert says in r.json()["error"]["message"]


def test_an_original_must_be_another_image_of_the_same_listing(live_server, staged_listing, make_token):
    entity_id, headers, front, room = staged_listing
    r = requests.patch(f"{live_server}/api/v1/images/{front}", headers=headers, json={"original_of": front}, timeout=10)
    assert r.status_code == 400 and "own original" in r.json()["error"]["message"]
    other = new_entity_id()
    other_headers = {"Authorization": f"Bearer {make_token(entities=(f'properties:{other}',))}"}
    r = upload_with_media(live_server, other_headers, other, [FRONT], [{"original_of": front}])
    assert (
        r.status_code == 400
        and r.json()["error"]["code"] == "invalid_parameter"
        and "original_of" in r.json()["error"]["message"]
    )
    r = upload_with_media(live_server, other_headers, other, [FRONT], [{}, {}])
    assert r.status_code == 400 and "one object per file" in r.json()["error"]["message"]
    r = upload_with_media(live_server, other_headers, other, [FRONT], [{"image_of": "Moon"}])
    assert r.status_code == 400 and "media[0]: image_of" in r.json()["error"]["message"]
    assert gallery(live_server, other, other_headers) == {}  # nothing stored
