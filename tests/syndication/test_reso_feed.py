"""GET /api/v1/reso/Media: a portal replicating our public listing media the RESO way: the
fields, Order and sizes, $filter on ModificationTimestamp and ResourceRecordKey, paging by
@odata.nextLink with a stable tie-breaker, and what never appears (non-public media, kinds not
syndicated)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import update

from db.models import Image
from tests.conftest import new_entity_id
from tests.support.http import wait_for_job
from tests.syndication.test_media_fields import upload_with_media

pytestmark = pytest.mark.e2e

PHOTOS = ["nikon-p6000_small_640x480.jpg", "tree_1024x772.webp", "waterfall_progressive_orient6_308x231.jpg"]


def feed(base, **params):
    r = requests.get(f"{base}/api/v1/reso/Media", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def replicate(base, **params) -> list[dict]:
    """Every record, following @odata.nextLink as a portal does."""
    page = feed(base, **params)
    records = list(page["value"])
    while "@odata.nextLink" in page:
        r = requests.get(page["@odata.nextLink"], timeout=10)
        assert r.status_code == 200, r.text
        page = r.json()
        records += page["value"]
    return records


@pytest.fixture(scope="module")
def listing(live_server, celery_worker, make_token):
    entity_id = new_entity_id()
    headers = {"Authorization": f"Bearer {make_token(entities=(f'properties:{entity_id}',))}"}
    media = [
        {"category": "Photo", "image_of": "Kitchen", "caption": "Kitchen"},
        {"category": "Photo", "image_of": "FrontOfStructure", "caption": "Front"},
        {"category": "FloorPlan", "image_of": "FloorPlan", "permission": "Private"},
    ]
    r = upload_with_media(live_server, headers, entity_id, PHOTOS, media)
    assert r.status_code == 202, r.text
    assert wait_for_job(live_server, headers, r.json()["job"]["status_url"])["status"] == "succeeded"
    ids = [i["id"] for i in r.json()["images"]]
    cover = requests.patch(f"{live_server}/api/v1/images/{ids[1]}", headers=headers, json={"is_primary": True}, timeout=10)
    assert cover.status_code == 200
    return entity_id, headers, ids


def test_a_listing_s_public_media_in_reso_s_shape(live_server, listing):
    entity_id, headers, (kitchen, front, plan) = listing
    records = {r["MediaKey"]: r for r in feed(live_server, **{"$filter": f"ResourceRecordKey eq '{entity_id}'"})["value"]}
    assert set(records) == {str(kitchen), str(front)}  # the Private floor plan is not syndicated
    f, k = records[str(front)], records[str(kitchen)]
    assert (f["ResourceName"], f["ResourceRecordKey"], f["Order"], f["PreferredPhotoYN"]) == ("Property", str(entity_id), 0, True)
    assert (k["Order"], k["PreferredPhotoYN"], k["ImageOf"], k["ShortDescription"]) == (1, False, "Kitchen", "Kitchen")
    assert f["MediaCategory"] == "Photo" and f["MediaStatus"] == "Active" and f["MediaType"] == "Jpeg"
    assert f["Permission"] == ["Public"] and f["MediaAlteration"] == ["None"]

    gallery = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images", timeout=10).json()["images"]
    shown = {i["id"]: i for i in gallery}[front]["renditions"]
    sizes = {s["ImageSizeDescription"]: s for s in f["Imagepipe_MediaURLs"]}
    assert list(sizes) == ["Thumbnail", "Medium", "Large", "Largest"]
    for name, reso_name in (("thumbnail", "Thumbnail"), ("medium", "Medium"), ("large", "Large")):
        assert sizes[reso_name]["MediaURL"] == shown[name]["jpeg"]["url"]
        assert (sizes[reso_name]["ImageWidth"], sizes[reso_name]["ImageHeight"]) == (
            shown[name]["jpeg"]["width"],
            shown[name]["jpeg"]["height"],
        )
    assert (f["MediaURL"], f["ImageSizeDescription"], f["ImageWidth"]) == (
        sizes["Large"]["MediaURL"],
        "Largest",
        sizes["Large"]["ImageWidth"],
    )
    assert requests.get(f["MediaURL"], timeout=10).headers["Content-Type"] == "image/jpeg"  # re-hostable as it is
    stamp = datetime.fromisoformat(f["ModificationTimestamp"])
    assert stamp.tzinfo is not None and datetime.fromisoformat(f["MediaModificationTimestamp"]) <= stamp


def test_paging_with_ties_neither_repeats_nor_skips(live_server, listing, session):
    entity_id, headers, (kitchen, front, plan) = listing
    # Both public images changed in the same microsecond: the MediaKey breaks the tie.
    same = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    session.execute(update(Image).where(Image.id.in_([kitchen, front])).values(updated_at=same))
    session.commit()
    for orderby, expected in (("ModificationTimestamp asc", [kitchen, front]), ("ModificationTimestamp desc", [front, kitchen])):
        records = replicate(live_server, **{"$filter": f"ResourceRecordKey eq '{entity_id}'", "$top": "1", "$orderby": orderby})
        assert [int(r["MediaKey"]) for r in records] == sorted(expected, reverse=orderby.endswith("desc"))


def test_modification_timestamp_filter_finds_what_changed(live_server, listing):
    entity_id, headers, (kitchen, front, plan) = listing
    key = f"ResourceRecordKey eq '{entity_id}'"
    before = max(r["ModificationTimestamp"] for r in feed(live_server, **{"$filter": key})["value"])
    assert feed(live_server, **{"$filter": f"{key} and ModificationTimestamp gt {before}"})["value"] == []
    r = requests.patch(
        f"{live_server}/api/v1/images/{kitchen}", headers=headers, json={"description": "New worktops"}, timeout=10
    )
    assert r.status_code == 200
    changed = feed(live_server, **{"$filter": f"{key} and ModificationTimestamp gt {before}"})["value"]
    assert [(c["MediaKey"], c["LongDescription"]) for c in changed] == [(str(kitchen), "New worktops")]
    # A record made private leaves the feed (a portal's periodic key comparison removes it).
    requests.patch(f"{live_server}/api/v1/images/{kitchen}", headers=headers, json={"permission": "Idx"}, timeout=10)
    try:
        assert [c["MediaKey"] for c in feed(live_server, **{"$filter": key})["value"]] == [str(front)]
    finally:
        requests.patch(f"{live_server}/api/v1/images/{kitchen}", headers=headers, json={"permission": "Public"}, timeout=10)


def test_kinds_not_syndicated_are_absent(live_server, celery_worker, make_token):
    entity_id = new_entity_id()
    headers = {"Authorization": f"Bearer {make_token(entities=(f'projects:{entity_id}',))}"}
    r = upload_with_media(live_server, headers, entity_id, PHOTOS[:1], [{}], entity="projects")
    assert wait_for_job(live_server, headers, r.json()["job"]["status_url"])["status"] == "succeeded"
    assert feed(live_server, **{"$filter": f"ResourceRecordKey eq '{entity_id}'"})["value"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "City eq 'Austin'"},
        {"$filter": "ModificationTimestamp gt yesterday"},
        {"$filter": "ResourceRecordKey eq 12"},
        {"$orderby": "MediaKey desc"},
        {"$top": "0"},
        {"$top": "201"},
        {"$skiptoken": "nope"},
    ],
)
def test_queries_it_cannot_answer_are_refused_clearly(live_server, params):
    r = requests.get(f"{live_server}/api/v1/reso/Media", params=params, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter", r.text
    assert r.json()["error"]["message"]
