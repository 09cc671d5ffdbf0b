"""`imagepipe feed sync` against a RESO-shaped Media feed the suite serves on loopback (records
made from the corpus), with a real worker downloading the photos: new keys imported with their
fields, the watermark honoured across a page boundary between equal timestamps, a page that
times out (the run exits 1 and the next resumes), a changed photo re-downloaded as a new image,
a field-only change applied in place, MediaStatus Deleted and a key that vanished (full
comparison) deleting ours; and the beat task on the worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import select

import celeryconfig
from db.models import Feed
from tests.conftest import ROOT, corpus, new_entity_id
from tests.support.photoserver import PhotoServer

pytestmark = pytest.mark.e2e

SYSTEM = "TestMLS"


def record(key, listing, ts, media_ts, photo, **fields):
    return {
        "MediaKey": key,
        "OriginatingSystemName": SYSTEM,
        "ResourceName": "Property",
        "ResourceRecordKey": str(listing),
        "MediaCategory": "Photo",
        "MediaStatus": "Active",
        "MediaURL": photo,
        "ModificationTimestamp": ts,
        "MediaModificationTimestamp": media_ts,
        **fields,
    }


def run_sync(env, url, *extra):
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "feed", "sync", "--url", url, "--json", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def settled(base, headers, listing, expect: int, timeout_s: float = 90) -> dict[int, dict]:
    """The listing's images once `expect` of them are ready and none is unfinished."""
    deadline = time.monotonic() + timeout_s
    while True:
        images = requests.get(f"{base}/api/v1/properties/{listing}/images", headers=headers, timeout=10).json()["images"]
        ready = [i for i in images if i["status"] == "ready"]
        if len(ready) == expect and all(i["status"] not in ("pending", "processing") for i in images):
            return {i["id"]: i for i in ready}
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled: {[(i['id'], i['status'], i['error']) for i in images]}")
        time.sleep(0.3)


@pytest.fixture
def feed_server():
    s = PhotoServer("127.0.0.2")
    s.feed.photos = {
        "front.jpg": corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes(),
        "kitchen.webp": corpus("photos", "tree_1024x772.webp").read_bytes(),
        "staged.jpg": corpus("photos", "waterfall_progressive_orient6_308x231.jpg").read_bytes(),
    }
    yield s
    s.close()


def test_feed_sync_replicates_changes_resumes_and_deletes(live_server, celery_worker, settings_env, make_token, feed_server):
    listing = new_entity_id()
    headers = {"Authorization": f"Bearer {make_token(entities=(f'properties:{listing}',))}"}
    media, feed = feed_server.base + "/media/", feed_server.feed
    T1, T2, T3, T4, T5 = (f"2026-11-0{d}T10:00:00Z" for d in range(1, 6))
    staging = ["VirtualStagingItemAddition"]
    feed.records = {
        "A": record("A", listing, T1, T1, media + "front.jpg", ImageOf="FrontOfStructure", Order=0, PreferredPhotoYN=True),
        "B": record("B", listing, T1, T1, media + "kitchen.webp", ImageOf="Kitchen", Order=1, ShortDescription="Kitchen"),
        "C": record("C", listing, T2, T2, media + "staged.jpg", ImageOf="LivingRoom", Order=2, MediaAlteration=staging),
        "D": record("D", listing, T2, T2, "https://video.example/tour.mp4", MediaCategory="Video"),
        "E": record("E", "MLS-77", T3, T3, media + "front.jpg"),
    }  # fmt: skip
    url = feed_server.base + "/reso/Media"

    # 1. Everything is new: three photos imported (pages of two: A and B share T1 across nothing,
    #    C and D share T2), the video and the foreign listing key skipped.
    code, report = run_sync(settings_env, url)
    assert code == 0, report
    assert (report["created"], report["records"], report["watermark"]) == (3, 5, T3)
    assert sorted(s["MediaKey"] for s in report["skipped"]) == ["D", "E"] and report["full_compare"]
    ready = settled(live_server, headers, listing, 3)
    by_image_of = {i["image_of"]: i for i in ready.values()}
    front, kitchen, staged = by_image_of["FrontOfStructure"], by_image_of["Kitchen"], by_image_of["LivingRoom"]
    assert front["is_primary"] and (kitchen["position"], kitchen["caption"]) == (1, "Kitchen")
    assert staged["alteration"] == ["VirtualStagingItemAddition"] and staged["source_url"] == media + "staged.jpg"
    assert (front["width"], front["height"]) == (640, 480)
    # ... and our own RESO feed serves them on (re-hosted: MediaURL is ours).
    ours = requests.get(
        f"{live_server}/api/v1/reso/Media", params={"$filter": f"ResourceRecordKey eq '{listing}'"}, timeout=10
    ).json()["value"]
    assert {r["ImageOf"] for r in ours} == {"FrontOfStructure", "Kitchen", "LivingRoom"}
    assert not any(r["MediaURL"].startswith(feed_server.base) for r in ours)

    # 2. Nothing changed: nothing read past the watermark.
    code, report = run_sync(settings_env, url)
    assert code == 0 and (report["records"], report["created"], report["full_compare"]) == (0, 0, False)

    # 3. A field change (B), a changed photo (C), a deletion (A); the second page hangs once.
    feed.records["B"].update(ModificationTimestamp=T4, ShortDescription="Updated kitchen")
    feed.photos["staged.jpg"] = corpus("photos", "canon-300d_cmyk_500x333.jpg").read_bytes()
    feed.records["C"].update(ModificationTimestamp=T4, MediaModificationTimestamp=T4)
    feed.records["A"].update(ModificationTimestamp=T5, MediaStatus="Deleted")
    feed.stall_once = {f"{T4}~C"}
    started = time.monotonic()
    code, report = run_sync(settings_env, url)
    assert code == 1 and report["error"]["code"] == "fetch_timeout", report
    assert time.monotonic() - started < 40
    assert (report["updated"], report["refetched"], report["deleted"], report["watermark"]) == (1, 1, 0, T3)

    # 4. The next run resumes from the watermark: B and C are not applied twice, A is deleted.
    code, report = run_sync(settings_env, url)
    assert code == 0, report
    assert (report["updated"], report["refetched"], report["unchanged"], report["deleted"], report["watermark"]) == (
        0,
        0,
        2,
        1,
        T5,
    )
    ready = settled(live_server, headers, listing, 2)
    assert front["id"] not in ready and staged["id"] not in ready  # deleted; replaced by a new image
    assert requests.get(f"{live_server}/api/v1/images/{staged['id']}", timeout=10).status_code == 404
    new_staged = next(i for i in ready.values() if i["image_of"] == "LivingRoom")
    assert (new_staged["width"], new_staged["height"]) == (500, 333)  # the new photo's
    assert ready[kitchen["id"]]["caption"] == "Updated kitchen"  # in place, same image

    # 5. A key that vanished from the feed is found by the full comparison.
    del feed.records["B"]
    code, report = run_sync(settings_env, url, "--full")
    assert code == 0 and report["full_compare"] and report["vanished"] == 1
    assert list(settled(live_server, headers, listing, 1)) == [new_staged["id"]]


def test_beat_syncs_each_configured_feed_on_the_worker(celery_worker, settings, feed_server, live_server, make_token, session):
    assert not any(k.startswith("feed_sync") for k in celeryconfig.beat_schedule(settings))
    on = celeryconfig.beat_schedule(settings.with_overrides(feed_urls=f"{feed_server.base}/reso/Media https://b.example/Media"))
    assert on["feed_sync_0"]["task"] == celeryconfig.FEED_SYNC_TASK and on["feed_sync_0"]["kwargs"] == {
        "url": f"{feed_server.base}/reso/Media"
    }
    assert (
        on["feed_sync_1"]["kwargs"] == {"url": "https://b.example/Media"}
        and on["feed_sync_1"]["schedule"] == settings.feed_sync_interval_s
    )

    listing = new_entity_id()
    T1 = "2026-10-01T00:00:00Z"
    feed_server.feed.records = {"K": record("K", listing, T1, T1, feed_server.base + "/media/front.jpg", ImageOf="Kitchen")}
    celery_worker.app.send_task(
        celeryconfig.FEED_SYNC_TASK, kwargs={"url": f"{feed_server.base}/reso/Media"}, queue=settings.maintenance_queue
    )
    headers = {"Authorization": f"Bearer {make_token(entities=(f'properties:{listing}',))}"}
    (image,) = settled(live_server, headers, listing, 1).values()
    assert image["image_of"] == "Kitchen"
    row = session.scalars(select(Feed).where(Feed.url == f"{feed_server.base}/reso/Media")).one()
    report = json.loads(row.last_report)
    assert report["created"] == 1 and report["complete"] and row.watermark is not None
