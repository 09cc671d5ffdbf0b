"""services.images.process without a broker: idempotency, deterministic keys, permanent failures."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from db.models import Image, Rendition
from db.session import make_session_factory
from db.unit import unit_of_work
from services.images import process
from services.images.ingest import IncomingFile, ingest_upload
from tests.conftest import corpus, new_entity_id
from tests.support.queues import RecordingQueue


@pytest.fixture
def run(engine, session, store, settings):
    """Process an image as the task does (its own units of work); then the test's session reads
    the database afresh."""
    sessions = make_session_factory(engine)

    def _run(image_id, *, settings=settings, store=store, queue=None):
        outcome = process.run(lambda: unit_of_work(sessions), store, settings, queue or RecordingQueue(), image_id)
        session.expire_all()
        return outcome

    return _run


def _ingest(session, store, settings, path, entity="properties", entity_id=None):
    result = ingest_upload(
        session,
        store,
        settings,
        entity_type=entity,
        entity_id=entity_id or new_entity_id(),
        user_id=7,
        files=[IncomingFile(io.BytesIO(path.read_bytes()), path.name, "image/jpeg")],
    )
    session.commit()
    return result


def _snapshot(session, store, image_id):
    image = session.get(Image, image_id)
    session.refresh(image)
    rows = sorted((r.id, r.key, r.width, r.height, r.bytes) for r in image.renditions)
    prefix = f"public/{image.entity_type}/{image.entity_id}/{image_id}/"
    objects = sorted((o.key, o.size) for o in store.list(prefix))
    return rows, objects, image.s3_key


def test_process_twice_changes_nothing(session, store, settings, run):
    res = _ingest(session, store, settings, corpus("photos", "tree_1024x772.webp"))
    image_id = res.images[0].id
    assert run(image_id) == "ready"
    first = _snapshot(session, store, image_id)
    assert len(first[0]) == 6 and len(first[1]) == 6

    assert run(image_id) == "skipped"
    assert _snapshot(session, store, image_id) == first


def test_rerun_after_a_crash_before_commit_reuses_keys_and_rows(session, store, settings, run):
    """A redelivered task (acks_late) after the worker died mid-way: same keys, no new rows."""
    res = _ingest(session, store, settings, corpus("photos", "nikon-p6000_small_640x480.jpg"))
    image_id = res.images[0].id
    assert run(image_id) == "ready"
    first = _snapshot(session, store, image_id)
    image = session.get(Image, image_id)
    image.status = "processing"  # as if the commit of the first run had been lost
    session.commit()
    assert run(image_id) == "ready"
    assert _snapshot(session, store, image_id) == first
    total = session.scalar(select(func.count()).select_from(Rendition).where(Rendition.image_id == image_id))
    assert total == 6


def test_unsupported_bytes_are_refused_at_ingest(session, store, settings):
    path = corpus("reject", "libvips-logo.svg")
    result = ingest_upload(
        session,
        store,
        settings,
        entity_type="avatars",
        entity_id=1,
        user_id=1,
        files=[IncomingFile(io.BytesIO(path.read_bytes()), "logo.jpg", "image/jpeg")],
    )
    assert result.job is None and result.images == []
    assert result.rejected[0].error.code == "unsupported_media_type"
    assert result.rejected[0].filename == "logo.jpg"


def test_image_too_small_fails_permanently_without_renditions(session, store, settings, run):
    res = _ingest(session, store, settings, corpus("accept", "pillow-hopper_orientation_6.jpg"))  # 128 px
    tiny = settings.with_overrides(min_side_px=200)
    image_id = res.images[0].id
    assert run(image_id, settings=tiny) == "failed"
    image = session.get(Image, image_id)
    assert (image.status, image.error_code) == ("failed", "image_too_small")
    assert image.renditions == []
    assert list(store.list(f"public/properties/{image.entity_id}/")) == []


def test_jpeg_scan_bomb_fails_permanently_without_being_decoded(session, store, settings, run):
    from tests.support.jpeg_bombs import scan_bomb

    bomb = scan_bomb(8000, 8000, 2000)  # ~30 s of libjpeg CPU in under half a megabyte
    res = ingest_upload(
        session,
        store,
        settings,
        entity_type="properties",
        entity_id=new_entity_id(),
        user_id=7,
        files=[IncomingFile(io.BytesIO(bomb), "listing.jpg", "image/jpeg")],
    )
    session.commit()
    image_id = res.images[0].id
    assert run(image_id) == "failed"
    image = session.get(Image, image_id)
    assert (image.status, image.error_code) == ("failed", "image_too_complex")
    assert "2000 scans" in image.error_message
    assert image.renditions == [] and list(store.list(f"public/properties/{image.entity_id}/")) == []


def _processed(session, store, settings, path, run) -> Image:
    """Ingest and process one file; the image as the database now has it."""
    image_id = _ingest(session, store, settings, path).images[0].id
    assert run(image_id, settings=settings) == "ready"
    image = session.get(Image, image_id)
    session.refresh(image)
    return image


def test_record_gets_placeholders_capture_metadata_and_the_sniffed_type(session, store, settings, run):
    image = _processed(session, store, settings, corpus("photos", "canon-sx60_orient6_2048x1536.jpg"), run)
    assert (image.width, image.height) == (1536, 2048)  # as displayed
    assert image.blurhash and len(image.blurhash) == 28  # 3 x 4 components for a portrait photo
    assert image.dominant_color.startswith("#") and len(image.dominant_color) == 7
    assert (image.camera, image.captured_at) == ("Canon PowerShot SX60 HS", "2015-02-09T22:47:44")
    assert image.frames == 1
    # The capture data stays in the database: the stored original is private, renditions carry none.
    assert image.s3_key.startswith("originals/")
    for r in image.renditions:
        assert b"Canon" not in store.get(r.key)


def test_heic_upload_is_processed_and_its_original_kept_as_heic(session, store, settings, run):
    image = _processed(session, store, settings, corpus("accept", "thumbor-image.heic"), run)
    assert image.mime_type == "image/heic" and image.s3_key.endswith(".heic")
    assert {(r.name, r.format) for r in image.renditions} == {
        (n, f) for n in ("thumbnail", "medium", "large") for f in ("jpeg", "webp")
    }


def test_avif_renditions_when_enabled(session, store, settings, run):
    avif = settings.with_overrides(avif_enabled=True, avif_effort=0)
    image = _processed(session, store, avif, corpus("photos", "waterfall_progressive_orient6_308x231.jpg"), run)
    avifs = [r for r in image.renditions if r.format == "avif"]
    assert len(image.renditions) == 9 and len(avifs) == 3
    assert all(r.key.endswith(".avif") and r.content_type == "image/avif" for r in avifs)
    assert store.get(avifs[0].key)[4:12] == b"ftypavif"
    assert image.thumbnail_url.endswith(".jpg")  # the universally decodable one stays in the url columns


def test_duplicate_bytes_for_the_same_entity_are_not_stored_twice(session, store, settings):
    entity_id = new_entity_id()
    path = corpus("photos", "tree_1024x772.webp")
    first = _ingest(session, store, settings, path, entity_id=entity_id)
    again = _ingest(session, store, settings, path, entity_id=entity_id)
    assert again.images == [] and [d.image.id for d in again.duplicates] == [first.images[0].id]
    assert again.job is not None and [i.id for i in again.job.images] == [first.images[0].id]
    # A failed image does not count: the same bytes may be tried again.
    first.images[0].status = "failed"
    session.commit()
    third = _ingest(session, store, settings, path, entity_id=entity_id)
    assert len(third.images) == 1 and third.duplicates == []


def test_a_double_submit_of_the_same_bytes_stores_one_image(engine, store, settings):
    """Two requests with identical bytes at once: the second waits for the first's commit and
    gets its image back (PostgreSQL advisory lock on entity + sha256)."""
    import threading

    from db.session import make_session_factory

    sessions = make_session_factory(engine)
    entity_id = new_entity_id()
    data = corpus("photos", "waterfall_progressive_orient6_308x231.jpg").read_bytes()

    def ingest(session):
        return ingest_upload(
            session,
            store,
            settings,
            entity_type="projects",
            entity_id=entity_id,
            user_id=3,
            files=[IncomingFile(io.BytesIO(data), "a.jpg", "image/jpeg")],
        )

    first_session, second_session = sessions(), sessions()
    first = ingest(first_session)  # not committed yet: holds the lock
    second_result, finished = {}, threading.Event()

    def second():
        second_result["r"] = ingest(second_session)
        finished.set()

    t = threading.Thread(target=second)
    t.start()
    assert not finished.wait(1.0), "the second request should wait for the first to commit"
    first_session.commit()
    t.join(10)
    second_session.commit()
    r = second_result["r"]
    assert r.images == [] and [d.image.id for d in r.duplicates] == [first.images[0].id]
    count = first_session.scalar(select(func.count()).select_from(Image).where(Image.entity_id == entity_id))
    assert count == 1
    first_session.close()
    second_session.close()


class _DeleteArrivesDuringUpload:
    """The real store, with a DELETE (another session) landing as the worker starts uploading."""

    def __init__(self, store, on_first_put):
        self._store, self._on_first_put, self.fired = store, on_first_put, False

    def __getattr__(self, name):
        return getattr(self._store, name)

    def put(self, key, *args, **kwargs):
        if not self.fired:
            self.fired = True
            self._on_first_put()
        return self._store.put(key, *args, **kwargs)


def test_a_delete_during_processing_wins_and_leaves_no_object(engine, session, store, settings, run):
    from db.session import make_session_factory
    from services.images.keys import rendition_prefix
    from services.images.manage import mark_deleting

    res = _ingest(session, store, settings, corpus("photos", "nikon-p6000_small_640x480.jpg"))
    image_id = res.images[0].id

    def delete_now():
        other = make_session_factory(engine)()
        mark_deleting(other, other.get(Image, image_id))
        other.commit()
        other.close()

    racing = _DeleteArrivesDuringUpload(store, delete_now)
    assert run(image_id, store=racing) == "deleted"
    assert racing.fired
    image = session.get(Image, image_id, populate_existing=True)
    assert image.status == "deleting" and image.renditions == []  # never came back as ready
    assert list(store.list(rendition_prefix(image.entity_type, image.entity_id, image_id))) == []
    assert list(store.list(f"originals/{image.entity_type}/{image.entity_id}/")) == []
    # ...and a failure arriving after the delete does not resurrect it either.
    from services.images.lifecycle import fail_unfinished, mark_failed

    assert not mark_failed(session, image_id, "processing_error", "late")
    assert not fail_unfinished(session, RecordingQueue(), image_id, "processing_error", "late")
    session.commit()
    assert session.get(Image, image_id, populate_existing=True).status == "deleting"


class _Watched:
    """The store, noting how many units of work had been opened when the source was read."""

    def __init__(self, store, opened):
        self._store, self._opened, self.reads = store, opened, []

    def get(self, key):
        self.reads.append((key, self._opened[0]))
        return self._store.get(key)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_the_source_is_read_while_the_claim_commits_and_each_stage_is_timed(engine, session, store, settings):
    """The staging read starts as soon as the claim names the key, before the second unit of work
    opens; the render reports its steps, which the worker exports as processing stages."""
    from services.infra.metrics import metrics

    res = _ingest(session, store, settings, corpus("photos", "canon-sx60_orient6_2048x1536.jpg"))
    image = res.images[0]
    sessions, opened = make_session_factory(engine), [0]

    def units():
        opened[0] += 1
        return unit_of_work(sessions)

    stages = metrics().stage_seconds
    before = {s: stages.labels(s)._sum.get() for s in ("decode", "resize", "encode_jpeg", "encode_webp", "fetch")}
    watched = _Watched(store, opened)
    assert process.run(units, watched, settings, RecordingQueue(), image.id) == "ready"
    assert watched.reads == [(image.staging_key, 1)]  # read during the claim's unit, not after it
    assert opened[0] == 2
    grew = {s: stages.labels(s)._sum.get() - v for s, v in before.items()}
    assert all(seconds > 0 for seconds in grew.values()), grew


def test_a_render_reports_the_time_of_each_step():
    from pipeline.probe import probe
    from pipeline.render import render

    data = corpus("photos", "paper_alpha_2048x1536.png").read_bytes()
    result = render(data, probe(data))
    assert set(result.timings) == {"decode", "hash", "resize", "encode_png", "encode_webp", "placeholders"}
    assert all(0 < s < 60 for s in result.timings.values())


def test_the_original_is_copied_from_staging_inside_the_store_with_its_own_headers(session, store, settings, run):
    """The worker sends the renditions, not the original again: that is copied from the staged
    object by the store, byte for byte, with the original's type, cache policy and metadata."""
    path = corpus("photos", "flickr-saw_2725x2225.jpg")
    res = _ingest(session, store, settings, path)
    image = res.images[0]
    sent = []

    class Counting:
        def put(self, key, body, **kw):
            sent.append(key)
            return store.put(key, body, **kw)

        def __getattr__(self, name):
            return getattr(store, name)

    assert run(image.id, store=Counting()) == "ready"
    session.refresh(image)
    assert image.s3_key not in sent and len(sent) == 6  # only the renditions travelled
    assert store.get(image.s3_key) == path.read_bytes()
    head = store.head(image.s3_key)
    assert head.content_type == "image/jpeg" and head.cache_control.startswith("private")
    assert head.metadata["image-id"] == str(image.id)


def test_renditions_are_written_while_the_next_are_encoded(session, store, settings, run, monkeypatch):
    """The first rendition is in the store before the render has finished the others."""
    import services.images.process as proc

    res = _ingest(session, store, settings, corpus("photos", "iphone6_3264x2448.jpg"))
    events = []
    real_render = proc.render

    def watched_render(*args, **kwargs):
        result = real_render(*args, **kwargs)
        events.append("render returned")
        return result

    class Watched:
        def put(self, key, body, **kw):
            events.append("put")
            return store.put(key, body, **kw)

        def __getattr__(self, name):
            return getattr(store, name)

    monkeypatch.setattr(proc, "render", watched_render)
    assert run(res.images[0].id, store=Watched()) == "ready"
    assert events.count("put") == 6 and events.index("put") < events.index("render returned")


def test_a_render_that_fails_after_some_writes_takes_them_back(session, store, settings, run, monkeypatch):
    """An encoder failing on the third rendition (our error, not the upload's): the two written
    renditions and the copied original are removed, nothing is recorded, the error is raised for
    the task to retry or fail."""
    import pipeline.encoders

    res = _ingest(session, store, settings, corpus("photos", "canon-sx60_orient6_2048x1536.jpg"))
    image = res.images[0]
    real, calls = pipeline.encoders.encode, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("encoder crashed")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline.encoders, "encode", failing)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        run(image.id)
    assert list(store.list(f"public/{image.entity_type}/{image.entity_id}/{image.id}/")) == []
    assert list(store.list(f"originals/{image.entity_type}/{image.entity_id}/")) == []
    assert store.exists(image.staging_key)  # the source stays for the retry
    session.expire_all()
    assert session.get(Image, image.id).status == "processing"  # for the task's retry or on_failure


def _second_delivery_during_render(monkeypatch, run, image_id, *, fail_on=None):
    """Run the image's task; while its render encodes (the first rendition written, the others not),
    the same message delivered again runs a whole second attempt. `fail_on`: the first attempt's
    encoder fails on that call of its own. Returns both outcomes (first, second)."""
    import pipeline.encoders

    real, calls, second = pipeline.encoders.encode, [], []

    def encode(*args, **kwargs):
        if second == [None]:  # inside the second attempt: its own encoder is fine
            return real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            second[:] = [None]
            second[:] = [run(image_id)]
        if len(calls) == fail_on:
            raise RuntimeError("encoder crashed")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline.encoders, "encode", encode)
    try:
        first = run(image_id)
    except RuntimeError as exc:
        first = str(exc)
    return first, second[0]


def _objects(store, image):
    return sorted(o.key for o in store.list(f"public/{image.entity_type}/{image.entity_id}/{image.id}/")) + sorted(
        o.key for o in store.list(f"originals/{image.entity_type}/{image.entity_id}/")
    )


def test_a_message_delivered_twice_runs_two_attempts_and_the_later_claim_wins(session, store, settings, run, monkeypatch):
    """Redis puts a running task's message back when the worker's connection drops, so the same
    image runs twice at once. The attempt claimed later records it; the earlier one, finishing
    after it, must not take the image's objects away (they are under the same keys)."""
    res = _ingest(session, store, settings, corpus("photos", "nikon-p6000_small_640x480.jpg"))
    image_id = res.images[0].id
    assert _second_delivery_during_render(monkeypatch, run, image_id) == ("skipped", "ready")
    image = session.get(Image, image_id)
    assert image.status == "ready" and len(image.renditions) == 6
    keys = _objects(store, image)
    assert len(keys) == 7 and image.s3_key in keys
    assert all(store.exists(r.key) for r in image.renditions)
    assert not store.exists(res.images[0].staging_key)


def test_a_failed_render_leaves_the_objects_of_the_attempt_that_owns_the_image(session, store, settings, run, monkeypatch):
    """The earlier attempt's encoder fails after the later attempt has claimed and recorded the
    image: the later one's objects (same keys) stay."""
    res = _ingest(session, store, settings, corpus("photos", "canon-sx60_orient6_2048x1536.jpg"))
    image_id = res.images[0].id
    assert _second_delivery_during_render(monkeypatch, run, image_id, fail_on=3) == ("encoder crashed", "ready")
    image = session.get(Image, image_id)
    assert image.status == "ready" and len(_objects(store, image)) == 7
    assert all(store.exists(r.key) for r in image.renditions)
