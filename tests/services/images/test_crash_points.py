"""A process that dies at each step boundary of ingest, processing and delete: a retry of the
task, or the sweep, always brings the database and the bucket back into agreement.

The crash is an exception that nothing of ours catches (a BaseException, as SystemExit is),
raised by the real store or queue at the chosen step; what was committed before it stays, what
was not is rolled back, exactly as when the process is killed there."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from db.models import Image, ImageStatus
from db.session import make_session_factory
from db.unit import unit_of_work
from services.images import manage, process
from services.images.ingest import IncomingFile, accept, ingest_upload
from services.images.keys import rendition_prefix
from services.storage_admin.sweeps import sweep
from tests.conftest import corpus, new_entity_id
from tests.support.queues import RecordingQueue


class Crash(BaseException):
    """The process died here."""


class CrashingStore:
    """The real store; `method`'s call number `at` (1-based) crashes, before or after doing its work."""

    def __init__(self, store, method: str, at: int = 1, after: bool = True, partial: bool = False):
        self._store, self.method, self.at, self.after, self.partial = store, method, at, after, partial
        self.calls = 0
        self.crashed_args: tuple = ()

    def __getattr__(self, name):
        real = getattr(self._store, name)
        if name != self.method:
            return real

        def call(*args, **kwargs):
            self.calls += 1
            if self.calls != self.at:
                return real(*args, **kwargs)
            self.crashed_args = args
            if self.partial:  # delete_many: half of the keys go, then the crash
                keys = args[0]
                real(keys[: len(keys) // 2])
                raise Crash(name)
            if not self.after:
                raise Crash(name)
            real(*args, **kwargs)
            raise Crash(name)

        return call


class CrashingQueue(RecordingQueue):
    def process_images(self, image_ids):
        raise Crash("enqueue")


@pytest.fixture
def units(engine):
    sessions = make_session_factory(engine)
    return lambda: unit_of_work(sessions)


def _upload(units, store, settings, queue, data: bytes, entity_id: int) -> list[int]:
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
        return [i.id for i in result.images]


def _sweep(units, store, queue, later_s: float = 3600, hard_limit_s: float = 180):
    with units() as session:
        return sweep(
            session,
            store,
            queue,
            grace_s=60,
            processing_limit_s=2 * hard_limit_s + 60,
            now=datetime.now(UTC) + timedelta(seconds=later_s),
        )


def _consistent(units, store, entity_id: int) -> dict[int, str]:
    """The bucket agrees with the database for this listing: a ready image has its original and every
    rendition its rows name; no object lies under the listing without a live image. Returns statuses."""
    with units() as session:
        images = {i.id: i for i in session.query(Image).filter(Image.entity_id == entity_id)}
        statuses = {i.id: i.status for i in images.values()}
        expected = set()
        for image in images.values():
            if image.status == ImageStatus.READY:
                expected |= {image.s3_key, *(r.key for r in image.renditions)}
                assert len(image.renditions) == 6
    present = {o.key for o in store.list(f"public/properties/{entity_id}/")}
    present |= {o.key for o in store.list(f"originals/properties/{entity_id}/")}
    assert present == expected, present ^ expected
    return statuses


def _photo(n: int) -> bytes:
    return corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes() + bytes([n]) * 3  # distinct bytes


def test_crash_after_the_staging_put_leaves_only_a_staging_object_that_the_sweep_removes(units, store, settings):
    entity_id = new_entity_id()
    crashing = CrashingStore(store, "put")
    with pytest.raises(Crash):
        _upload(units, crashing, settings, RecordingQueue(), _photo(1), entity_id)
    assert _consistent(units, store, entity_id) == {}  # no row: the commit never happened
    staged = crashing.crashed_args[0]
    assert staged.startswith("staging/") and store.exists(staged)
    assert staged not in _sweep(units, store, RecordingQueue(), later_s=0).staging_deleted  # may be a live upload
    assert staged in _sweep(units, store, RecordingQueue()).staging_deleted
    assert not store.exists(staged)


def test_crash_after_the_commit_before_the_enqueue_is_requeued_by_the_sweep(units, store, settings):
    entity_id = new_entity_id()
    with pytest.raises(Crash):
        _upload(units, store, settings, CrashingQueue(), _photo(2), entity_id)
    assert list(_consistent(units, store, entity_id).values()) == [ImageStatus.PENDING]  # committed, never queued
    queue = RecordingQueue()
    report = _sweep(units, store, queue)
    [image_id] = [i for i in report.requeued if i in _consistent(units, store, entity_id)]
    assert image_id in queue.images
    assert process.run(units, store, settings, queue, image_id) == "ready"
    assert _consistent(units, store, entity_id) == {image_id: ImageStatus.READY}


# After the original (copied from staging inside the store); between renditions; after the last one.
@pytest.mark.parametrize(("method", "at"), [("copy", 1), ("put", 3), ("put", 6)])
def test_crash_between_uploads_of_a_render_is_finished_by_the_retry(units, store, settings, method, at):
    entity_id = new_entity_id()
    [image_id] = _upload(units, store, settings, RecordingQueue(), _photo(10 + at + len(method)), entity_id)
    with pytest.raises(Crash):
        process.run(units, CrashingStore(store, method, at=at), settings, RecordingQueue(), image_id)
    assert _status(units, image_id) == ImageStatus.PROCESSING  # the claim was committed, nothing else
    assert process.run(units, store, settings, RecordingQueue(), image_id) == "ready"  # the task's retry
    assert _consistent(units, store, entity_id) == {image_id: ImageStatus.READY}


def test_crash_after_the_claim_is_requeued_once_the_worker_is_surely_gone(units, store, settings):
    entity_id = new_entity_id()
    [image_id] = _upload(units, store, settings, RecordingQueue(), _photo(20), entity_id)
    with pytest.raises(Crash):
        process.run(units, CrashingStore(store, "get", after=False), settings, RecordingQueue(), image_id)
    assert _status(units, image_id) == ImageStatus.PROCESSING
    assert image_id not in _sweep(units, store, RecordingQueue(), later_s=60).requeued  # may still be running
    queue = RecordingQueue()
    assert image_id in _sweep(units, store, queue, later_s=2 * 180 + 3600).requeued
    assert process.run(units, store, settings, queue, image_id) == "ready"
    assert _consistent(units, store, entity_id) == {image_id: ImageStatus.READY}


def test_crash_after_the_ready_commit_leaves_a_staging_object_the_sweep_removes(units, store, settings):
    entity_id = new_entity_id()
    [image_id] = _upload(units, store, settings, RecordingQueue(), _photo(21), entity_id)
    with units() as session:
        staged = session.get(Image, image_id).staging_key
    with pytest.raises(Crash):
        process.run(units, CrashingStore(store, "delete", after=False), settings, RecordingQueue(), image_id)
    assert _consistent(units, store, entity_id) == {image_id: ImageStatus.READY}  # committed before the crash
    assert store.exists(staged)
    assert staged in _sweep(units, store, RecordingQueue()).staging_deleted
    assert not store.exists(staged)


def test_crash_mid_delete_is_finished_by_the_retry_or_the_sweep(units, store, settings):
    entity_id = new_entity_id()
    [image_id] = _upload(units, store, settings, RecordingQueue(), _photo(22), entity_id)
    assert process.run(units, store, settings, RecordingQueue(), image_id) == "ready"
    with pytest.raises(Crash):
        with units() as session:
            manage.delete_image(
                session,
                CrashingStore(store, "delete_many", partial=True),
                RecordingQueue(),
                session.get(Image, image_id),
                settings=settings,
                actor=None,
            )
    assert _status(units, image_id) == ImageStatus.DELETING  # hidden, half its objects gone
    left = list(store.list(rendition_prefix("properties", entity_id, image_id)))
    assert 0 < len(left) < 6
    queue = RecordingQueue()
    assert image_id in _sweep(units, store, queue).purges and image_id in queue.deletes
    with units() as session:  # the delete task the sweep queued
        assert manage.purge_image(session, store, image_id) == "purged"
    assert _consistent(units, store, entity_id) == {}


def _status(units, image_id: int) -> str:
    with units() as session:
        return session.get(Image, image_id).status


def test_the_sweep_command_runs_against_the_configured_services(settings_env):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "sweep"], cwd=ROOT, env=settings_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(report) == {"requeued", "failed", "purges", "uploads_expired", "staging_deleted", "usage_rows_merged"} and all(
        v >= 0 for v in report.values()
    )
