"""Storage administration on a world of its own (a private PostgreSQL database and bucket, so
every figure can be asserted exactly): statistics, the orphan scan both ways, the sweeps (two at
once), and regenerating renditions after a spec change."""

from __future__ import annotations

import io
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from db.models import Image, ImageStatus, Upload
from db.session import make_engine, make_session_factory
from db.unit import unit_of_work
from services.delivery.report import add_delivery
from services.images import process, renditions
from services.images.ingest import IncomingFile, accept, ingest_upload
from services.infra.settings import Settings
from services.infra.stores import make_store
from services.storage_admin import orphans, stats, sweeps
from tests.conftest import corpus, private_database
from tests.support.queues import RecordingQueue


@pytest.fixture(scope="module")
def world(pg, settings_env):
    url = private_database(pg, "admin")
    bucket = f"admin-{secrets.token_hex(4)}"
    env = {**settings_env, "DATABASE_URL": url, "AWS_S3_BUCKET": bucket}
    settings = Settings.from_env(env)
    store = make_store(settings)
    store.ensure_bucket()
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    yield {
        "settings": settings,
        "env": env,
        "store": store,
        "engine": engine,
        "units": lambda: unit_of_work(sessions),
        "url": url,
    }
    engine.dispose()


def _ready_image(world, entity_id: int, salt: int, name: str = "nikon-p6000_small_640x480.jpg") -> int:
    units, store, settings = world["units"], world["store"], world["settings"]
    data = corpus("photos", name).read_bytes() + bytes([salt]) * 4
    queue = RecordingQueue()
    with units() as session:
        result = ingest_upload(
            session,
            store,
            settings,
            entity_type="properties",
            entity_id=entity_id,
            user_id=5,
            files=[IncomingFile(io.BytesIO(data), "p.jpg", "image/jpeg")],
        )
        accept(session, queue, result)
        image_id = result.images[0].id
    assert process.run(units, store, settings, queue, image_id) == "ready"
    return image_id


def _image(world, image_id: int) -> Image:
    with world["units"]() as session:
        image = session.get(Image, image_id)
        _ = list(image.renditions)
        session.expunge_all()
        return image


# -- statistics --------------------------------------------------------------------------------
def test_stats_from_the_database_and_from_the_bucket_agree_and_show_their_difference(world):
    store, units = world["store"], world["units"]
    a, b = _ready_image(world, 101, 1), _ready_image(world, 101, 2)
    with units() as session:
        images = [session.get(Image, i) for i in (a, b)]
        originals = sum(i.file_size for i in images)
        rendition_bytes = sum(r.bytes for i in images for r in i.renditions)
        webp_medium = sum(r.bytes for i in images for r in i.renditions if (r.name, r.format) == ("medium", "webp"))
        session.add(Image(entity_type="projects", entity_id=5, status=ImageStatus.FAILED, error_code="corrupt_image"))

    db = _stats(world)
    with units() as session:
        _same(db, stats.recount(session))
    props = db["entities"]["properties"]
    assert props["originals"] == {"objects": 2, "bytes": originals}
    assert props["renditions"] == {"objects": 12, "bytes": rendition_bytes}
    assert db["renditions"]["medium"]["webp"] == {"objects": 2, "bytes": webp_medium}
    assert db["images_by_status"]["ready"] == 2 and db["images_by_status"]["failed"] == 1
    today = db["added_per_day"][-1]
    assert len(db["added_per_day"]) == 30 and today["date"] == datetime.now(UTC).date().isoformat()
    assert today == {"date": today["date"], "objects": 14, "bytes": originals + rendition_bytes}

    # the bucket: one orphan more, one rendition less than the database says
    store.put("originals/properties/101/999999.jpg", b"x" * 1234, content_type="image/jpeg")
    gone = next(r for r in _image(world, a).renditions if r.name == "thumbnail" and r.format == "webp")
    store.delete(gone.key)
    bucket = stats.bucket_stats(store)
    assert bucket["entities"]["properties"]["originals"] == {"objects": 3, "bytes": originals + 1234}
    assert bucket["entities"]["properties"]["renditions"]["objects"] == 11
    diff = stats.difference(bucket, db)["entities"]["properties"]
    assert diff == {"originals": {"objects": 1, "bytes": 1234}, "renditions": {"objects": -1, "bytes": -gone.bytes}}
    store.delete("originals/properties/101/999999.jpg")
    _image_restore(world, a)


def _stats(world) -> dict:
    with world["units"]() as session:
        return stats.database_stats(session)


def _image_restore(world, image_id: int) -> None:
    """Put back what a test removed (the regenerate path renders a missing rendition)."""
    assert renditions.regenerate(world["units"], world["store"], world["settings"], image_id) in ("regenerated", "current")


def _same(a: dict, b: dict) -> None:
    skip = {"duration_ms", "last_orphan_scan", "source"}
    assert {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}


def test_stats_on_100k_images_come_from_the_rollup_and_equal_a_full_recount(pg):
    """100 000 image rows and about 600 000 rendition rows, generated in the database (the
    triggers keep the rollup as they are written): the statistics equal a full recount of the
    tables and read a table of a few hundred rows. Times are printed, not asserted
    (docs/operations.md has the measurement)."""
    url = private_database(pg, "stats100k")
    engine = make_engine(url)
    # Each statement stays well inside the client-side round-trip deadline (db/session.py, 11 s),
    # which applies to every connection of the process, on a loaded CI machine too: the
    # renditions go in ten slices.
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO images (id, entity_type, entity_id, status, file_size, created_at, updated_at, position,
                                is_primary, requeues)
            SELECT g, (ARRAY['properties','projects','avatars'])[1 + g % 3], g % 5000,
                   CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'ready' END,
                   CASE WHEN g % 50 = 0 THEN NULL ELSE 1000 + g % 1000 END,
                   now() - ((g % 40) || ' days')::interval, now(), 0, false, 0
            FROM generate_series(1, 100000) g""")
        )
        conn.execute(
            text("""
            INSERT INTO renditions (image_id, entity_type, name, format, spec, key, width, height, bytes, content_type,
                                    created_at)
            SELECT i.id, i.entity_type, n.name, f.format, n.name, 'public/' || i.id || '/' || n.name || '.' || f.format,
                   300, 200, 100 + i.id % 7, 'image/jpeg', i.created_at
            FROM images i CROSS JOIN (VALUES ('thumbnail'), ('medium'), ('large')) n(name)
                          CROSS JOIN (VALUES ('jpeg'), ('webp')) f(format)
            WHERE i.status = 'ready' AND i.id > :lo AND i.id <= :hi"""),
            [{"lo": n, "hi": n + 10_000} for n in range(0, 100_000, 10_000)],
        )
        # what a day of work does to it: images deleted, failed ones retried, renditions replaced
        conn.execute(text("DELETE FROM images WHERE id % 97 = 0"))
        conn.execute(text("UPDATE images SET status = 'ready', file_size = 5000 WHERE id % 100 = 0"))
        conn.execute(text("UPDATE renditions SET bytes = bytes + 10 WHERE image_id % 89 = 0 AND format = 'webp'"))
    sessions = make_session_factory(engine)
    with sessions() as session:
        merged = stats.compact_usage(session)
        session.commit()
        rollup_rows = session.execute(text("SELECT count(*) FROM storage_usage")).scalar()
        started = time.perf_counter()
        fast = stats.database_stats(session)
        fast_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        slow = stats.recount(session)
        slow_ms = (time.perf_counter() - started) * 1000
    engine.dispose()
    print(
        f"\nstorage stats, 100 000 images: rollup {fast_ms:.1f} ms ({rollup_rows} rows, {merged} merged), "
        f"full recount {slow_ms:.0f} ms"
    )
    _same(fast, slow)
    failed_left = len([g for g in range(50, 100_001, 50) if g % 97 and g % 100])
    assert fast["images_by_status"]["failed"] == failed_left
    assert sum(fast["images_by_status"].values()) == 100_000 - 100_000 // 97
    assert rollup_rows < 1_000  # days x entity types x (statuses + renditions): a small table


def test_the_rollup_follows_every_kind_of_change_on_sqlite_too(tmp_path):
    from db.models import Rendition
    from db.schema import upgrade

    url = f"sqlite:///{tmp_path / 'usage.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        images = [Image(entity_type="avatars", entity_id=n, status=ImageStatus.READY, file_size=100 * n) for n in range(1, 6)]
        for image in images:
            image.renditions = [
                Rendition(
                    name="thumbnail",
                    format=f,
                    spec="t",
                    key=f"k/{image.entity_id}/{f}",
                    width=1,
                    height=1,
                    bytes=10,
                    content_type="image/jpeg",
                    entity_type="avatars",
                )
                for f in ("jpeg", "webp")
            ]
        session.add_all(images)
        session.commit()
        images[0].status = ImageStatus.MISSING
        images[1].file_size = 7
        images[2].renditions[0].bytes = 99
        session.delete(images[3])
        session.commit()
        _same(stats.database_stats(session), stats.recount(session))
        assert stats.database_stats(session)["images_by_status"] == {
            **{s.value: 0 for s in ImageStatus},
            "ready": 3,
            "missing": 1,
        }
        stats.compact_usage(session)
        session.commit()
        _same(stats.database_stats(session), stats.recount(session))
    engine.dispose()


# -- the orphan scan, both ways ---------------------------------------------------------------------
def test_orphan_scan_finds_both_ways_acts_only_when_asked_and_spares_young_objects(world):
    store, units, settings = world["store"], world["units"], world["settings"]
    entity = 202
    lost_rendition_image, lost_original_image = _ready_image(world, entity, 3), _ready_image(world, entity, 4)
    lost_rendition = next(r.key for r in _image(world, lost_rendition_image).renditions if r.name == "medium")
    lost_original = _image(world, lost_original_image).s3_key
    store.delete(lost_rendition)
    store.delete(lost_original)
    with units() as session:  # a live direct upload: its staged object is not an orphan
        session.add(
            Upload(
                entity_type="properties",
                entity_id=entity,
                content_type="image/jpeg",
                size=10,
                staging_key="staging/live-upload",
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
    planted = {
        "originals/properties/202/987654.jpg": 111,  # no row
        "public/properties/202/876543/medium_w800_q82.jpg": 222,  # a row that no longer exists
        "staging/abandoned-upload": 333,
    }  # never completed, no row
    for key, size in planted.items():
        store.put(key, b"o" * size, content_type="image/jpeg")
    store.put("staging/live-upload", b"l" * 10, content_type="image/jpeg")
    time.sleep(5)  # the planted objects age past the scan's 3 s grace period; the next one does not
    store.put("originals/properties/202/777777.jpg", b"y" * 50, content_type="image/jpeg")
    # Both scans judge ages from this moment, so the young object stays young however long the
    # first scan takes on a loaded machine.
    scan_now = datetime.now(UTC)

    def scan(dry_run: bool, now: datetime | None = None):
        queue = RecordingQueue()
        with units() as session:
            scan_id = orphans.create_scan(session, dry_run=dry_run, grace_s=3, requested_by="test").id
        done = orphans.run_scan(units, store, queue, scan_id, now=now or scan_now)
        return done, json.loads(done.counts), queue

    done, counts, queue = scan(dry_run=True)
    assert done.status == "succeeded"
    assert counts["orphans"] == {"objects": 3, "bytes": 666}
    assert counts["orphans_by_kind"] == {
        "original": {"objects": 1, "bytes": 111},
        "rendition": {"objects": 1, "bytes": 222},
        "staging": {"objects": 1, "bytes": 333},
    }
    assert counts["young_unreferenced"] == {"objects": 1, "bytes": 50}
    assert counts["missing"] == {"originals": 1, "renditions": 1}
    assert counts["deleted"]["objects"] == 0 and counts["marked_missing"] == 0 and queue.regenerations == []
    assert all(store.exists(k) for k in planted)
    assert _image(world, lost_original_image).status == ImageStatus.READY
    report = [json.loads(line) for line in store.get(done.report_key).splitlines()]
    assert {r["key"] for r in report if r["finding"] == "orphan"} == set(planted)
    assert {(r["finding"], r["image_id"]) for r in report if r["finding"] != "orphan"} == {
        ("missing_original", lost_original_image),
        ("missing_rendition", lost_rendition_image),
    }
    assert {s["key"] for s in json.loads(done.samples)["orphan"]} == set(planted)

    done, counts, queue = scan(dry_run=False)
    assert counts["deleted"] == {"objects": 3, "bytes": 666} and counts["delete_errors"] == 0
    assert not any(store.exists(k) for k in planted)
    assert store.exists("originals/properties/202/777777.jpg") and store.exists("staging/live-upload")
    lost = _image(world, lost_original_image)
    assert lost.status == ImageStatus.MISSING and lost.error_code == "original_missing"
    assert queue.regenerations == [lost_rendition_image] and counts["rerender_queued"] == 1
    # the task the scan queued renders the missing rendition from the original
    assert renditions.regenerate(units, store, settings, lost_rendition_image) == "regenerated"
    assert store.exists(lost_rendition)
    with units() as session:
        assert stats.last_scan(session)["id"] == done.id
        assert not session.execute(text("SELECT count(*) FROM storage_scan_objects")).scalar()
    # a third scan finds nothing left to do
    store.delete("originals/properties/202/777777.jpg")
    _, counts, _ = scan(dry_run=False, now=datetime.now(UTC))
    assert counts["orphans"]["objects"] == 0 and counts["missing"] == {"originals": 0, "renditions": 0}


# -- sweeps ------------------------------------------------------------------------------------------
def test_each_sweep_and_two_sweeps_at_once_claim_each_row_exactly_once(world):
    store, units = world["store"], world["units"]
    now = datetime.now(UTC)
    long_ago = now - timedelta(hours=3)
    with units() as session:
        stuck = [
            Image(entity_type="projects", entity_id=303, status=ImageStatus.PROCESSING, updated_at=long_ago) for _ in range(40)
        ]
        spent = Image(entity_type="projects", entity_id=303, status=ImageStatus.PROCESSING, updated_at=long_ago, requeues=3)
        running = Image(entity_type="projects", entity_id=303, status=ImageStatus.PROCESSING, updated_at=now)
        deleting = [
            Image(entity_type="projects", entity_id=303, status=ImageStatus.DELETING, updated_at=long_ago) for _ in range(20)
        ]
        expired = [
            Upload(
                entity_type="projects",
                entity_id=303,
                content_type="image/jpeg",
                size=1,
                staging_key=f"staging/expired-{n}",
                expires_at=long_ago,
            )
            for n in range(10)
        ]
        session.add_all([*stuck, spent, running, *deleting, *expired])
        session.flush()
        stuck_ids, deleting_ids = {i.id for i in stuck}, {i.id for i in deleting}
        spent_id, running_id = spent.id, running.id
    for n in range(10):
        store.put(f"staging/expired-{n}", b"e", content_type="image/jpeg")

    barrier = threading.Barrier(2)
    reports, queues, errors = [], [], []

    def one_sweep() -> None:
        queue = RecordingQueue()
        try:
            with units() as session:
                report = sweeps.SweepReport()
                barrier.wait()
                sweeps.requeue_stuck(
                    session, queue, grace_s=900, processing_limit_s=3600, max_requeues=3, now=datetime.now(UTC), report=report
                )
                sweeps.retry_deleting(session, queue, grace_s=900, now=datetime.now(UTC), report=report)
                sweeps.expire_uploads(session, store, grace_s=60, now=datetime.now(UTC), report=report)
                report.usage_rows_merged = stats.compact_usage(session)
            reports.append(report)
            queues.append(queue)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one_sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    requeued = [set(r.requeued) for r in reports]
    assert requeued[0] | requeued[1] == stuck_ids and not requeued[0] & requeued[1]
    assert sorted(queues[0].images + queues[1].images) == sorted(stuck_ids)  # each enqueued once
    purged = [set(r.purges) for r in reports]
    assert purged[0] | purged[1] == deleting_ids and not purged[0] & purged[1]
    assert sorted(queues[0].deletes + queues[1].deletes) == sorted(deleting_ids)
    expired_keys = [set(r.uploads_expired) for r in reports]
    assert expired_keys[0] | expired_keys[1] == {f"staging/expired-{n}" for n in range(10)}
    assert not expired_keys[0] & expired_keys[1]
    assert [r.failed for r in reports].count([spent_id]) == 1 and sum(len(r.failed) for r in reports) == 1
    assert not any(store.exists(f"staging/expired-{n}") for n in range(10))
    with units() as session:
        assert {i.requeues for i in session.scalars(select(Image).where(Image.id.in_(stuck_ids)))} == {1}
        assert session.get(Image, spent_id).status == ImageStatus.FAILED
        assert session.get(Image, spent_id).error_code == "processing_timeout"
        assert session.get(Image, running_id).status == ImageStatus.PROCESSING  # not stuck yet: untouched
        assert not session.scalars(select(Upload).where(Upload.entity_id == 303)).all()
        session.execute(text("DELETE FROM images WHERE entity_id = 303"))
        _same(stats.database_stats(session), stats.recount(session))  # two compactions at once: nothing lost


def test_the_rollup_still_equals_a_recount_after_everything_this_module_did(world):
    with world["units"]() as session:
        _same(stats.database_stats(session), stats.recount(session))


# -- regenerating renditions --------------------------------------------------------------------------
def test_a_spec_change_is_rolled_out_without_a_moment_without_renditions(world):
    store, units = world["store"], world["units"]
    image_id = _ready_image(world, 404, 9)
    before = {(r.name, r.format): r.key for r in _image(world, image_id).renditions}
    changed = Settings.from_env({**world["env"], "WEBP_QUALITY": "70", "AVIF_ENABLED": "true"})
    with units() as session:
        assert renditions.count_stale(session, world["settings"].encoder, ("properties", 404)) == 0
        assert renditions.count_stale(session, changed.encoder, ("properties", 404)) == 1
        assert renditions.stale_ids(session, changed.encoder, ("properties", 404)) == [image_id]
        assert image_id in renditions.stale_ids(session, changed.encoder, ("properties", None))
        assert image_id not in renditions.stale_ids(session, changed.encoder, ("projects", None))

    seen, stop = [], threading.Event()

    def reader() -> None:  # what an API reader sees while the rollout runs
        while not stop.is_set():
            with units() as session:
                rows = session.execute(text("SELECT name, format FROM renditions WHERE image_id = :i"), {"i": image_id}).all()
            seen.append({(n, f) for n, f in rows})

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert renditions.regenerate(units, store, changed, image_id) == "regenerated"
    finally:
        stop.set()
        thread.join()
    assert seen and all({(n, f) for n in ("thumbnail", "medium", "large") for f in ("jpeg", "webp")} <= s for s in seen)
    after = {(r.name, r.format): r.key for r in _image(world, image_id).renditions}
    assert after[("medium", "webp")].endswith("medium_w800_q70.webp") and ("large", "avif") in after
    assert after[("medium", "jpeg")] == before[("medium", "jpeg")]  # unchanged specs are not rendered again
    listed = {o.key for o in store.list(f"public/properties/404/{image_id}/")}
    assert listed == set(after.values())  # no superseded object left behind
    assert renditions.regenerate(units, store, changed, image_id) == "current"
    with units() as session:
        assert renditions.count_stale(session, changed.encoder, ("properties", 404)) == 0


def test_stats_command_agrees_with_the_api_figures_and_its_recount(world):
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "stats", "--json", "--recount"],
        cwd=ROOT,
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "the rollup agrees" in out.stderr
    body = json.loads(out.stdout)
    expected = _stats(world)
    with world["units"]() as session:
        add_delivery(session, world["settings"], expected)
    assert body["egress"]["known"] is False and "access log" in body["egress"]["why"]
    _same(body, expected)
    human = subprocess.run(
        [sys.executable, "-m", "cli.main", "stats", "--source", "bucket"],
        cwd=ROOT,
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert human.returncode == 0, human.stderr[-2000:]
    assert "source: bucket" in human.stdout and "egress" in human.stdout and "cost estimate (USD/month" in human.stdout
    assert "difference (bucket - database)" in human.stdout
