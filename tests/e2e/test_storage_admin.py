"""Storage administration over its real paths: the admin API and the `imagepipe` commands, a real
worker on the Redis broker (the orphan scan, the repairs it queues, the sweeps), a worker started
with a changed rendition spec for the rollout, and the orphan scan's memory on 100 000 objects."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import text

from db.models import Image, Upload
from tests.conftest import ROOT, corpus, new_entity_id, private_database
from tests.e2e.test_worker_deaths import running_worker
from tests.support.http import wait_for_job

pytestmark = pytest.mark.e2e


def _cli(*args, env, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _upload_ready(live_server, auth, entity_id: int, salts: list[int]) -> list[int]:
    photo = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    files = [("file", (f"p{s}.jpg", io.BytesIO(photo + bytes([s]) * 5), "image/jpeg")) for s in salts]
    r = requests.post(f"{live_server}/api/v1/properties/{entity_id}/images", headers=auth, files=files, timeout=60)
    assert r.status_code == 202, r.text
    job = wait_for_job(live_server, auth, r.json()["job"]["status_url"])
    assert job["status"] == "succeeded", job
    return [i["id"] for i in job["images"]]


def _until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_orphan_scan_through_the_api_and_the_worker_repairs_and_spares_young_objects(
    live_server, celery_worker, auth, make_token, store, session
):
    admin = {"Authorization": f"Bearer {make_token(1, admin=True)}"}
    entity_id = new_entity_id()
    [image_id] = _upload_ready(live_server, auth, entity_id, [1])
    image = session.get(Image, image_id)
    lost = next(r.key for r in image.renditions if (r.name, r.format) == ("large", "webp"))
    store.delete(lost)
    young = f"originals/properties/{entity_id}/{image_id + 10_000_000}.jpg"
    store.put(young, b"an upload in flight", content_type="image/jpeg")

    bad = requests.post(f"{live_server}/api/v1/admin/storage/cleanup-orphaned", headers=admin, json={"dry_run": "no"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"
    r = requests.post(
        f"{live_server}/api/v1/admin/storage/cleanup-orphaned",
        headers=admin,
        json={"dry_run": False, "entity": "properties", "entity_id": entity_id},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    audited = requests.get(
        f"{live_server}/api/v1/admin/audit",
        params={"action": "orphans_delete", "entity": "properties", "entity_id": entity_id},
        headers=admin,
        timeout=10,
    ).json()["entries"]
    assert [(e["actor"], e["detail"]["scan"]) for e in audited] == [("user:1", r.json()["id"])]
    # The answer reads the scan after the enqueue: the worker may have started it already.
    assert r.json()["status"] in ("queued", "running") and r.json()["dry_run"] is False
    location = r.headers["Location"]
    scan = _until(
        lambda: (
            (b := requests.get(f"{live_server}{location}", headers=admin, timeout=10).json())["status"] in ("succeeded", "failed")
            and b
        ),
        120,
        "the scan",
    )
    assert scan["status"] == "succeeded", scan
    counts = scan["counts"]
    assert counts["orphans"]["objects"] == 0  # the young object is within the grace period
    assert counts["young_unreferenced"]["objects"] == 1 and store.exists(young)
    assert counts["missing"] == {"originals": 0, "renditions": 1} and counts["rerender_queued"] == 1
    assert scan["samples"]["missing_rendition"][0]["key"] == lost
    assert scan["progress"]["objects_listed"] == 7 + 1 - 1  # original, five renditions, the young object
    # the worker renders the missing rendition again, from the original
    _until(lambda: store.exists(lost), 60, "the missing rendition to be rendered again")

    report = requests.get(f"{live_server}{location}/report", headers=admin, timeout=10)
    assert report.status_code == 200 and report.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in report.text.splitlines()]
    assert lines == [{"finding": "missing_rendition", "image_id": image_id, "key": lost, "action": "rendered again (queued)"}]

    stats = requests.get(f"{live_server}/api/v1/admin/storage/stats", headers=admin, timeout=30).json()
    assert stats["source"] == "database" and stats["last_orphan_scan"]["id"] == scan["id"]
    assert stats["entities"]["properties"]["renditions"]["objects"] >= 6 and stats["cost"]["currency"] == "USD"
    from_bucket = requests.get(f"{live_server}/api/v1/admin/storage/stats?source=bucket", headers=admin, timeout=60).json()
    assert from_bucket["source"] == "bucket" and "difference" in from_bucket
    assert from_bucket["entities"]["properties"]["originals"]["objects"] >= 2  # the image's and the young one
    not_found = requests.get(f"{live_server}/api/v1/admin/storage/scans/{uuid.uuid4().hex}", headers=admin, timeout=10)
    assert not_found.status_code == 404 and not_found.json()["error"]["code"] == "scan_not_found"


def test_orphans_command_follows_the_worker_with_a_progress_bar(settings_env, celery_worker, live_server, auth, tmp_path):
    entity_id = new_entity_id()
    _upload_ready(live_server, auth, entity_id, [2])
    out = _cli("orphans", "--entity", f"properties:{entity_id}", "--report", str(tmp_path / "r.jsonl"), env=settings_env)
    assert out.returncode == 0, out.stderr[-2000:]
    body = json.loads(out.stdout)
    assert body["status"] == "succeeded" and body["dry_run"] is True
    assert body["counts"]["listed"]["objects"] == 7 and body["counts"]["orphans"]["objects"] == 0
    assert "[##############################] 7 objects listed" in out.stderr
    assert (tmp_path / "r.jsonl").read_text() == ""  # nothing found: an empty report
    refused = _cli("orphans", "--entity", "properties", env=settings_env)
    assert refused.returncode == 2 and "TYPE:ID" in refused.stderr


def test_sweeps_run_as_tasks_on_the_worker(settings, celery_worker, store, session):
    long_ago = datetime.now(UTC) - timedelta(days=2)
    upload = Upload(
        entity_type="projects",
        entity_id=new_entity_id(),
        content_type="image/jpeg",
        size=5,
        staging_key=f"staging/{uuid.uuid4().hex}",
        expires_at=long_ago,
    )
    deleting = Image(entity_type="projects", entity_id=upload.entity_id, status="deleting", updated_at=long_ago)
    session.add_all([upload, deleting])
    session.commit()
    store.put(upload.staging_key, b"never completed", content_type="image/jpeg")
    upload_id, staged, image_id = upload.id, upload.staging_key, deleting.id

    import celeryconfig
    from workers.schedule import QueuedMarks

    app = celery_worker.app
    marks = QueuedMarks.for_settings(settings)
    for name in celeryconfig.SWEEP_TASKS:
        assert marks.claim(name)  # as beat does when it sends
        app.send_task(name)  # routed as beat's are: the maintenance queue

    def gone() -> bool:
        session.expire_all()
        return session.get(Upload, upload_id) is None and session.get(Image, image_id) is None

    _until(gone, 60, "the expired upload and the deleting image to be swept")
    assert not store.exists(staged)
    import redis

    client = redis.Redis.from_url(settings.broker_url)
    _until(lambda: not any(client.exists(marks._key(n)) for n in celeryconfig.SWEEP_TASKS), 30, "the sweeps' marks to clear")
    schedule = celeryconfig.build(settings)["beat_schedule"]
    assert {entry["task"] for entry in schedule.values()} == {*celeryconfig.SWEEP_TASKS, celeryconfig.SCHEDULED_SCAN_TASK}
    assert all(entry["task"] in app.tasks for entry in schedule.values())  # each one the worker can run


def test_a_rendition_spec_rollout_with_a_worker_on_the_new_spec(
    settings_env, celery_worker, live_server, auth, store, engine, tmp_path
):
    entity_id = new_entity_id()
    ids = _upload_ready(live_server, auth, entity_id, [3, 4])
    scope = f"properties:{entity_id}"
    new_spec = {
        **settings_env,
        "WEBP_QUALITY": "72",
        "AVIF_ENABLED": "true",
        "MAINTENANCE_QUEUE": f"maintenance-rollout-{uuid.uuid4().hex[:8]}",
        "MIGRATION_QUEUE": f"migration-rollout-{uuid.uuid4().hex[:8]}",
    }
    assert json.loads(_cli("renditions", "stale", "--entity", scope, env=settings_env).stdout) == {"stale": 0}
    assert json.loads(_cli("renditions", "stale", "--entity", scope, env=new_spec).stdout) == {"stale": 2}
    before = {o.key for i in ids for o in store.list(f"public/properties/{entity_id}/{i}/")}

    seen, stop = [], threading.Event()

    def reader() -> None:  # the public gallery, as a visitor's browser polls it during the rollout
        while not stop.is_set():
            body = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images", timeout=10).json()
            seen.append({i["id"]: {n: sorted(f) for n, f in i["renditions"].items()} for i in body["images"]})
            time.sleep(0.05)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with running_worker(new_spec, tmp_path / "worker.log") as worker:
            queued = _cli("renditions", "regenerate", "--entity", scope, "--limit", "5", env=new_spec)
            assert json.loads(queued.stdout) == {"queued": 2, "queue": new_spec["MAINTENANCE_QUEUE"]}, queued.stderr
            with engine.connect() as conn:
                audited = conn.execute(
                    text("SELECT actor, detail FROM audit_log WHERE action = 'regenerate' AND entity_id = :e"), {"e": entity_id}
                ).all()
            assert [(a.startswith("cli:"), json.loads(d)) for a, d in audited] == [(True, {"queued": 2})]
            _until(
                lambda: json.loads(_cli("renditions", "stale", "--entity", scope, env=new_spec).stdout) == {"stale": 0},
                120,
                f"the rollout:\n{worker.tail()}",
            )
    finally:
        stop.set()
        thread.join()
    sizes = {"thumbnail", "medium", "large"}
    assert seen and all(
        set(view) == set(ids) and all(set(r) == sizes and len(f) >= 2 for r in view.values() for f in r.values()) for view in seen
    )
    final = requests.get(f"{live_server}/api/v1/properties/{entity_id}/images", timeout=10).json()["images"]
    for image in final:
        assert image["renditions"]["medium"]["webp"]["url"].endswith("medium_w800_q72.webp")
        assert set(image["renditions"]["large"]) == {"jpeg", "webp", "avif"}
        assert requests.get(image["renditions"]["large"]["avif"]["url"], timeout=10).status_code == 200
    after = {o.key for i in ids for o in store.list(f"public/properties/{entity_id}/{i}/")}
    with engine.connect() as conn:
        recorded = {k for (k,) in conn.execute(text("SELECT key FROM renditions WHERE image_id = ANY(:ids)"), {"ids": ids})}
    assert after == recorded and len(after) == 18  # nothing superseded left behind
    assert not {k for k in before if "_q80.webp" in k} & after


def test_orphan_scan_memory_is_flat_from_10k_to_100k_objects(pg, settings_env, tmp_path):
    """Keys seeded straight into moto's in-process backend (HTTP would take minutes), listed over
    real HTTP by `imagepipe orphans --here` in a process of its own, whose peak RSS is compared."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        peaks = {}
        for count in (10_000, 100_000):
            peaks[count] = _scan_peak_rss(pg, settings_env, f"http://{host}:{port}", count, tmp_path)
    finally:
        server.stop()
    print(f"\norphan scan peak RSS: 10k objects {peaks[10_000] / 1024:.1f} MiB, 100k objects {peaks[100_000] / 1024:.1f} MiB")
    assert peaks[100_000] < peaks[10_000] * 1.10, peaks  # ten times the objects, within 10 % of the memory


def _scan_peak_rss(pg, settings_env, endpoint: str, count: int, tmp_path) -> int:
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    bucket = f"scan-{count}-{uuid.uuid4().hex[:6]}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).create_bucket(Bucket=bucket)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    old = (datetime.now(UTC) - timedelta(days=3)).replace(tzinfo=None)  # moto keeps naive UTC
    for n in range(count):
        # a tenth have no row (orphans, old enough to count), the rest are recorded originals
        key = backend.put_object(bucket, f"originals/properties/{n % 997}/{n}.jpg", b"x" * 10)
        key.last_modified = old
    url = private_database(pg, f"scan{count // 1000}k")
    from sqlalchemy import create_engine

    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(
            text("""INSERT INTO images (id, entity_type, entity_id, status, s3_key, file_size, created_at,
                                                 updated_at, position, is_primary, requeues)
                             SELECT g, 'properties', g % 997, 'ready', 'originals/properties/' || (g % 997) || '/' || g
                                    || '.jpg', 10, now(), now() - interval '1 day', 0, false, 0
                             FROM generate_series(0, :n - 1) g WHERE g % 10 <> 0"""),
            {"n": count},
        )
    eng.dispose()
    env = {
        **settings_env,
        "DATABASE_URL": url,
        "AWS_S3_BUCKET": bucket,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across exec, and
    # the parent here is the test process holding moto's 100 000 keys.
    probe = (
        "import re, sys\n"
        "from cli.main import main\n"
        "try:\n    main(['orphans', '--here'], standalone_mode=False)\n"
        "finally:\n    hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "    print('PEAK_RSS_KB', hwm, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    body = json.loads(out.stdout)
    assert body["status"] == "succeeded"
    assert body["counts"]["listed"]["objects"] == count
    assert body["counts"]["orphans"]["objects"] == count // 10  # found, listed, not deleted (a dry run)
    assert body["counts"]["missing"] == {"originals": 0, "renditions": 0}
    return int(out.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
