"""The walking skeleton end to end: HTTP upload -> Redis -> real worker -> SeaweedFS -> Postgres."""

from __future__ import annotations

import time

import pytest
import pyvips
import requests
from sqlalchemy import select

from db.models import Image, Rendition
from tests.conftest import corpus, new_entity_id
from tests.support.containers import metadata_blocks
from tests.support.http import upload, wait_for_job

pytestmark = pytest.mark.e2e


def test_photo_upload_is_processed_into_six_public_renditions(live_server, celery_worker, auth, store, session, settings):
    entity_id = new_entity_id()
    photo = corpus("photos", "nikon-p6000_small_640x480.jpg")
    t0 = time.monotonic()
    r = upload(live_server, auth, "properties", entity_id, photo, name="../../etc/passwd my photo.jpg")
    assert r.status_code == 202, r.text
    assert time.monotonic() - t0 < 10  # the request only stages bytes; generous bound for a noisy box
    body = r.json()
    assert body["job"]["status"] == "queued"
    assert body["job"]["status_url"] == f"/api/v1/jobs/{body['job']['id']}"
    [img] = body["images"]
    assert img["status"] == "pending"
    assert img["filename"] == "passwd my photo.jpg"

    job = wait_for_job(live_server, auth, body["job"]["status_url"])
    assert job["status"] == "succeeded", job
    assert set(job["_seen"]) <= {"queued", "processing", "succeeded"}

    data = requests.get(f"{live_server}/api/v1/images/{img['id']}", headers=auth, timeout=10).json()
    assert data["status"] == "ready"
    assert (data["width"], data["height"]) == (640, 480)
    assert data["file_size"] == photo.stat().st_size
    assert data["mime_type"] == "image/jpeg"
    assert set(data["renditions"]) == {"thumbnail", "medium", "large"}
    expected_width = {"thumbnail": 300, "medium": 640, "large": 640}  # 640 px source: never upscaled
    for name, formats in data["renditions"].items():
        assert set(formats) == {"jpeg", "webp"}
        for fmt, rend in formats.items():
            # anonymous GET, as a browser would
            resp = requests.get(rend["url"], timeout=10)
            assert resp.status_code == 200, rend["url"]
            assert resp.headers["Content-Type"] == rend["content_type"] == f"image/{fmt}"
            assert len(resp.content) == rend["bytes"]
            img_px = pyvips.Image.new_from_buffer(resp.content, "")
            assert (img_px.width, img_px.height) == (rend["width"], rend["height"])
            assert rend["width"] == expected_width[name]
            assert rend["height"] == round(rend["width"] * 480 / 640)
            assert metadata_blocks(resp.content) == []

    # the objects in the bucket: private original, public renditions, staging cleaned up
    row = session.get(Image, img["id"])
    assert row.s3_key == f"originals/properties/{entity_id}/{img['id']}.jpg"
    assert row.s3_bucket == settings.aws_s3_bucket
    assert row.sha256 and len(row.sha256) == 64
    assert row.large_url and row.large_url.endswith(".jpg")
    original = store.head(row.s3_key)
    assert original.size == photo.stat().st_size
    assert original.cache_control == "private, no-store"
    assert requests.get(store.public_url(row.s3_key), timeout=10).status_code == 403
    assert not store.exists(row.staging_key)
    assert "passwd" not in row.s3_key and all("passwd" not in r.key for r in row.renditions)

    keys = sorted(o.key for o in store.list(f"public/properties/{entity_id}/"))
    assert keys == sorted(r.key for r in row.renditions) and len(keys) == 6
    for r in row.renditions:
        head = store.head(r.key)
        assert head.content_type == r.content_type
        assert head.cache_control == "public, max-age=31536000, immutable"
        assert head.metadata["image-id"] == str(img["id"])
        assert head.metadata["entity-type"] == "properties"
        assert head.metadata["entity-id"] == str(entity_id)
        assert head.metadata["user-id"] == "42"
        assert "upload-time" in head.metadata


def test_same_photo_on_two_entities_shares_no_keys(live_server, celery_worker, auth, session):
    photo = corpus("photos", "waterfall_progressive_orient6_308x231.jpg")
    a, b = new_entity_id(), new_entity_id()
    jobs = [upload(live_server, auth, ent, eid, photo).json() for ent, eid in (("properties", a), ("projects", b))]
    for j in jobs:
        assert wait_for_job(live_server, auth, j["job"]["status_url"])["status"] == "succeeded"
    ids = [j["images"][0]["id"] for j in jobs]
    assert ids[0] != ids[1]
    keys = [set(session.scalars(select(Rendition.key).where(Rendition.image_id == i))) for i in ids]
    originals = [session.get(Image, i).s3_key for i in ids]
    assert len(keys[0]) == len(keys[1]) == 6
    assert not keys[0] & keys[1]
    assert originals[0] != originals[1]


def test_orientation_6_photo_is_stored_upright(live_server, celery_worker, auth):
    photo = corpus("photos", "canon-sx60_orient6_2048x1536.jpg")
    body = upload(live_server, auth, "avatars", new_entity_id(), photo).json()
    assert wait_for_job(live_server, auth, body["job"]["status_url"])["status"] == "succeeded"
    data = requests.get(f"{live_server}/api/v1/images/{body['images'][0]['id']}", headers=auth, timeout=10).json()
    assert (data["width"], data["height"]) == (1536, 2048)
    large = data["renditions"]["large"]["jpeg"]
    assert (large["width"], large["height"]) == (1536, 2048)
    px = pyvips.Image.new_from_buffer(requests.get(large["url"], timeout=10).content, "")
    assert px.height > px.width


def test_corrupt_file_ends_as_failed_job_with_stable_code(live_server, celery_worker, auth, store, session):
    bad = corpus("reject", "thumbor-BlueSquare_truncated.jpg")  # JPEG magic, truncated data
    body = upload(live_server, auth, "properties", new_entity_id(), bad).json()
    job = wait_for_job(live_server, auth, body["job"]["status_url"])
    assert job["status"] == "failed"
    assert job["images"][0]["error"]["code"] == "corrupt_image"
    row = session.get(Image, body["images"][0]["id"])
    assert row.status == "failed" and row.error_code == "corrupt_image"
    assert row.renditions == []
    assert not store.exists(row.staging_key)


def test_listing_is_newest_first(live_server, celery_worker, auth):
    entity_id = new_entity_id()
    first = upload(live_server, auth, "projects", entity_id, corpus("photos", "waterfall_progressive_orient6_308x231.jpg")).json()
    second = upload(live_server, auth, "projects", entity_id, corpus("photos", "nikon-p6000_small_640x480.jpg")).json()
    for j in (first, second):
        wait_for_job(live_server, auth, j["job"]["status_url"])
    listing = requests.get(f"{live_server}/api/v1/projects/{entity_id}/images", headers=auth, timeout=10).json()
    assert [i["id"] for i in listing["images"]] == [second["images"][0]["id"], first["images"][0]["id"]]
    assert all(set(i["renditions"]) == {"thumbnail", "medium", "large"} for i in listing["images"])
    other = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images", headers=auth, timeout=10).json()
    assert other["images"] == []


def test_same_bytes_again_return_the_existing_image(live_server, celery_worker, auth, store, session):
    entity_id = new_entity_id()
    photo = corpus("photos", "waterfall_progressive_orient6_308x231.jpg")
    first = upload(live_server, auth, "properties", entity_id, photo, name="a.jpg").json()
    wait_for_job(live_server, auth, first["job"]["status_url"])
    original_id = first["images"][0]["id"]
    staged_before = {o.key for o in store.list("staging/")}

    again = upload(live_server, auth, "properties", entity_id, photo, name="renamed copy.jpg")
    assert again.status_code == 202, again.text
    [dup] = again.json()["images"]
    assert dup == {"id": original_id, "status": "ready", "filename": "renamed copy.jpg", "duplicate_of": original_id}
    # The new job is about the existing image, so it is already done.
    assert again.json()["job"]["status"] == "succeeded"
    listing = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images", headers=auth, timeout=10).json()
    assert [i["id"] for i in listing["images"]] == [original_id]
    session.expire_all()
    assert session.scalars(select(Image).where(Image.entity_id == entity_id)).all()[0].id == original_id
    assert {o.key for o in store.list("staging/")} - staged_before == set()  # nothing new was stored

    # Another entity is another gallery: the same photo is stored for it.
    other = upload(live_server, auth, "projects", entity_id, photo).json()
    assert "duplicate_of" not in other["images"][0]
    assert other["images"][0]["id"] != original_id


def test_placeholders_and_declared_type_are_on_the_record(live_server, celery_worker, auth):
    entity_id = new_entity_id()
    png = corpus("photos", "bird_rgba-opaque_576x384.png")
    body = upload(live_server, auth, "avatars", entity_id, png).json()  # declared image/jpeg by upload()
    wait_for_job(live_server, auth, body["job"]["status_url"])
    data = requests.get(f"{live_server}/api/v1/images/{body['images'][0]['id']}", headers=auth, timeout=10).json()
    assert data["mime_type"] == "image/png"
    assert data["declared_content_type"] == "image/jpeg"
    assert data["content_type_mismatch"] is True
    assert len(data["placeholder"]["blurhash"]) == 28  # 4 x 3 components for a landscape photo
    assert data["placeholder"]["dominant_color"].startswith("#") and len(data["placeholder"]["dominant_color"]) == 7
    assert data["animated"] is False
