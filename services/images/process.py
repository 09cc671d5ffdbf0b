from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import UNFINISHED, Image, ImageStatus, JobImage, Rendition
from db.unit import Units, after_commit
from pipeline.errors import ImageError
from pipeline.perceptual import PerceptualHash
from pipeline.probe import ProbeResult, probe
from pipeline.render import RenderResult, render
from pipeline.specs import rendition_sizes
from services.images.keys import object_metadata, original_key, rendition_key
from services.images.lifecycle import discard_staging, fail_unfinished
from services.infra.iothreads import Batch, submit
from services.infra.logs import bind
from services.infra.metrics import megapixel_bucket, metrics, timed
from services.infra.queue import TaskQueue
from services.infra.settings import Settings
from services.jobs.status import notify_when_ended
from services.moderation import blocklist, reuse
from services.moderation.hashes import set_hash
from storage import IMMUTABLE_CACHE_CONTROL, PRIVATE_CACHE_CONTROL, ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    READY = "ready"
    FAILED = "failed"
    SKIPPED = "skipped"  # already done, or being deleted
    DELETED = "deleted"  # a DELETE arrived while it was processed
    MISSING = "missing"  # no such row


def run(units: Units, store: ObjectStore, settings: Settings, queue: TaskQueue, image_id: int) -> Outcome:
    """Process one image in two units of work: claim it (committed, so a DELETE sees that it is
    being processed), then render, store and record it. The source is read from the store from
    the moment the claim names its key, while the claim commits and the image is loaded."""
    with units() as session:
        claimed = claim(session, image_id)
        if isinstance(claimed, Outcome):
            return claimed
        source = Prefetch(store, claimed.keys, settings)
    started = time.perf_counter()
    try:
        with units() as session:
            outcome = finish(session, store, settings, queue, claimed, source)
            committing = time.perf_counter()
    finally:
        source.discard()
    m = metrics()
    m.stage_seconds.labels("commit").observe(time.perf_counter() - committing)
    if outcome in (Outcome.READY, Outcome.FAILED):
        m.stage_seconds.labels("total").observe(time.perf_counter() - started)
    return outcome


@dataclass(frozen=True)
class Claim:
    """An image this attempt has claimed: the keys its source may be read from (staging first),
    and the claim's number. A message delivered twice runs two attempts at once; the latest claim
    owns the image, and an earlier one, once it sees that, neither records the image nor removes
    anything (the keys are the same: what it wrote is the owner's too)."""

    image_id: int
    number: int
    keys: list[str]


def claim(session: Session, image_id: int) -> Claim | Outcome:
    """Move a pending (or interrupted) image to processing under a new claim; otherwise why not.
    The image's job is bound to the task's log lines."""
    bind(job_id=session.scalar(select(JobImage.job_id).where(JobImage.image_id == image_id).limit(1)))
    claimed = session.execute(
        update(Image)
        .where(Image.id == image_id, Image.status.in_(UNFINISHED))
        .values(status=ImageStatus.PROCESSING, claims=Image.claims + 1, updated_at=datetime.now(UTC))
        .returning(Image.claims, Image.staging_key, Image.s3_key)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is not None:
        number, *keys = claimed
        return Claim(image_id, number, [key for key in keys if key])
    return Outcome.MISSING if session.get(Image, image_id) is None else Outcome.SKIPPED  # ready, failed, legacy, deleting


def holds(session: Session, claimed: Claim) -> str | None:
    """Lock the image's row (PostgreSQL; SQLite serialises writers anyway) and say whether
    `claimed` still owns it: None if so, otherwise the row's status ("gone" without a row). The
    lock is held to the end of the unit of work, so no newer claim starts meanwhile."""
    row = session.execute(select(Image.status, Image.claims).where(Image.id == claimed.image_id).with_for_update()).first()
    if row is None:
        return "gone"
    if row.status == ImageStatus.PROCESSING and row.claims == claimed.number:
        return None
    return row.status if row.status != ImageStatus.PROCESSING else "claimed again"


class Prefetch:
    """The source's bytes, read on the process's I/O threads from the first key that holds them."""

    def __init__(self, store: ObjectStore, keys: list[str], settings: Settings):
        self._keys = keys
        self.key: str | None = None  # the key that held them
        self._future: Future[bytes] | None = submit(settings, self._read, store)

    def _read(self, store: ObjectStore) -> bytes:
        for key in self._keys:
            try:
                data = store.get(key)
            except ObjectNotFound:
                continue
            self.key = key
            return data
        raise ObjectNotFound(self._keys[0] if self._keys else "no key")

    def result(self) -> bytes:
        assert self._future is not None, "read once"
        return self._future.result()

    def discard(self) -> None:
        """Wait for the read to end and drop its bytes (a 25 MiB source must not outlive its task)."""
        if self._future is not None:
            wait([self._future])
        self._future = None


def finish(
    session: Session, store: ObjectStore, settings: Settings, queue: TaskQueue, claimed: Claim, source: Prefetch
) -> Outcome:
    """Render and store a claimed image, then record it. Safe to run again after a crash, and
    beside another attempt on the same image (see Claim)."""
    image = session.get(Image, claimed.image_id, populate_existing=True)
    if image is None:
        return Outcome.MISSING
    if image.status != ImageStatus.PROCESSING or image.claims != claimed.number:
        return Outcome.SKIPPED
    try:
        with timed("fetch"):  # what is left of the read once the image is loaded
            data = source.result()
    except ObjectNotFound:
        return _failed(session, queue, claimed, "source_missing", owner=holds(session, claimed) is None)

    writes = Writes(store, settings, object_metadata(image))
    try:
        stored = render_and_store(
            store,
            settings,
            image,
            data,
            source_key=source.key,
            writes=writes,
            screen=partial(blocklist.screen, session, settings),
        )
    except BaseException as exc:
        # The render step's one ownership check: what it wrote is removed only if it is still ours
        # (another attempt writes the same keys), and only the owner fails the image.
        owner = _owns(session, claimed)
        writes.abandon(remove=owner)
        if not isinstance(exc, ImageError):
            raise
        outcome = _failed(session, queue, claimed, exc.code, exc.message, owner=owner)
        if outcome == Outcome.FAILED:
            after_commit(session, partial(discard_staging, store, image.staging_key))
        return outcome

    # The record step's one ownership check: a DELETE, or another attempt, may have come while we
    # rendered; record only what we still own.
    taken = holds(session, claimed)
    if taken in ("gone", ImageStatus.DELETING):
        after_commit(session, lambda: store.delete_many(stored.keys))
        log.info("image %s was deleted while processing; its objects are removed", image.id)
        return Outcome.DELETED
    if taken is not None:  # the same keys are another attempt's now: leave them to it
        log.info("image %s was taken over by another attempt (%s); this one stops", image.id, taken)
        return Outcome.SKIPPED

    record(image, store, stored)
    found = reuse.find(session, settings, image, stored.result.pdq)
    if found:
        log.warning("image %s matches %d image(s) of other listings: reuse finding(s) recorded", image.id, len(found))
        after_commit(session, lambda: metrics().reuse_findings.inc(len(found)))
    log.info("image ready: %d renditions, %d bytes written", len(stored.result.renditions), stored.bytes_written)
    after_commit(session, lambda: metrics().images_finished.labels(Outcome.READY.value, "").inc())
    after_commit(session, partial(discard_staging, store, image.staging_key))
    notify_when_ended(session, queue, image_id=image.id)
    return Outcome.READY


@dataclass(frozen=True)
class Stored:
    """An image rendered and written to the store, not yet recorded."""

    info: ProbeResult
    result: RenderResult
    keys: list[str]  # the original first, then each rendition in result.renditions' order
    sha256: str
    bytes_written: int


def render_and_store(
    store: ObjectStore,
    settings: Settings,
    image: Image,
    data: bytes,
    source_key: str | None = None,
    writes: Writes | None = None,
    screen: Callable[[PerceptualHash], None] | None = None,
) -> Stored:
    """Probe, render, and write the original and every rendition under their deterministic keys
    (ImageError for a file that is refused). Shared by uploads and the legacy migration.

    Each rendition is written on the I/O threads as soon as it is encoded, while the next one is
    encoded; the original goes with the first (the image has decoded by then, so a refused file
    never leaves one). `source_key`: the object `data` was read from; the original is then copied
    from it inside the store (S3 CopyObject) instead of being sent again. A retry writes the same
    keys again. A render that fails after some writes removes them, unless the caller passed its own
    `writes`: then removing them is the caller's decision (`Writes.abandon`), taken with the
    database, which this function never touches. `screen` is handed the picture's perceptual hash
    once it has decoded, before anything is written (the blocklist raises there)."""
    with timed("probe"):
        info = probe(data, settings.limits)
    orig_key = original_key(image.entity_type, image.entity_id, image.id, info.extension)
    own_writes = writes is None
    writes = writes if writes is not None else Writes(store, settings, object_metadata(image))

    def written(rendition) -> None:
        if not writes.started and source_key != orig_key:  # processing an original again: it is in place
            writes.add(orig_key, CopyFrom(source_key) if source_key else data, info.mime_type, PRIVATE_CACHE_CONTROL)
        writes.add(*rendition_writes(image, [rendition])[0])

    started = time.perf_counter()
    try:
        with timed("render"):
            result = render(data, info, settings.encoder, on_rendition=written, on_hash=screen)
    except BaseException:
        if own_writes:
            writes.abandon(remove=True)
        raise
    m = metrics()
    for step, seconds in result.timings.items():  # decode, resize, encode_<format>, placeholders
        m.stage_seconds.labels(step).observe(seconds)
    m.render_seconds.labels(megapixel_bucket(info.width, info.height)).observe(time.perf_counter() - started)
    for r in result.renditions:
        m.rendition_bytes.labels(r.spec.format).inc(len(r.data))
    with timed("store"):  # what is left of the writes once the last rendition is encoded
        writes.finish()
    return Stored(
        info,
        result,
        [orig_key] + [w[0] for w in rendition_writes(image, result.renditions)],
        hashlib.sha256(data).hexdigest(),
        len(data) + sum(len(r.data) for r in result.renditions),
    )


@dataclass(frozen=True)
class CopyFrom:
    """A write whose bytes are another object's, copied inside the store."""

    key: str


class Writes:
    """Objects written on the process's I/O threads as they become ready (iothreads.Batch)."""

    def __init__(self, store: ObjectStore, settings: Settings, meta: dict[str, object]):
        self.store, self.meta = store, meta
        self._batch = Batch(settings)
        self._keys: list[str] = []

    @property
    def started(self) -> bool:
        return bool(self._keys)

    def _write(self, key: str, body: bytes | CopyFrom, content_type: str, cache_control: str) -> None:
        if isinstance(body, CopyFrom):
            self.store.copy(body.key, key, content_type=content_type, cache_control=cache_control, metadata=self.meta)
        else:
            self.store.put(key, body, content_type=content_type, cache_control=cache_control, metadata=self.meta)

    def add(self, key: str, body: bytes | CopyFrom, content_type: str, cache_control: str) -> None:
        self._keys.append(key)
        self._batch.add(self._write, key, body, content_type, cache_control)

    def finish(self) -> None:
        """Every write has ended, written or failed, before the first failure is raised."""
        self._batch.finish()

    def abandon(self, *, remove: bool) -> None:
        """The render failed: wait for what was started, then, if `remove` (the objects are still
        this attempt's), remove what it wrote (best effort: what stays is found by the orphan scan)."""
        wait(self._batch.futures)
        keys = [key for key, f in zip(self._keys, self._batch.futures, strict=True) if f.exception() is None]
        if keys:
            if not remove:
                log.info("a failed render leaves %d objects to the attempt that owns them", len(keys))
                return
            try:
                self.store.delete_many(keys)
            except Exception as exc:  # noqa: BLE001 - the render's own error is the one to raise
                log.warning("could not remove %d objects of a failed render: %s", len(keys), exc)


def put_all(
    store: ObjectStore, settings: Settings, writes: Sequence[tuple[str, bytes | CopyFrom, str, str]], meta: dict[str, object]
) -> None:
    """Write (key, body, content type, cache control) objects, overlapped; a failure of any is
    raised once the others have ended, and a retry writes the same keys again."""
    batch = Writes(store, settings, meta)
    for write in writes:
        batch.add(*write)
    batch.finish()


def rendition_writes(image: Image, renditions) -> list[tuple[str, bytes, str, str]]:
    return [
        (
            rendition_key(image.entity_type, image.entity_id, image.id, r.spec),
            r.data,
            r.spec.content_type,
            IMMUTABLE_CACHE_CONTROL,
        )
        for r in renditions
    ]


def set_rendition(image: Image, row: Rendition, rendition, key: str) -> None:
    """A rendition row as `rendition` (written at `key`) says."""
    spec = rendition.spec
    row.spec, row.key, row.entity_type = str(spec), key, image.entity_type
    row.width, row.height = rendition.width, rendition.height
    row.bytes, row.content_type = len(rendition.data), spec.content_type


def sync_legacy_urls(image: Image, store: ObjectStore) -> None:
    """The seed's per-size URL columns (RenditionSize.legacy_url_column), for readers of the old
    schema: the URL of each size's JPEG or PNG rendition (the universally decodable one), from its
    row's key as the API serves it, or None. Called wherever an image's renditions change."""
    rows = {(r.name, r.format): r for r in image.renditions}
    for size in rendition_sizes():
        if size.legacy_url_column:
            row = rows.get((size.name, "jpeg")) or rows.get((size.name, "png"))
            setattr(image, size.legacy_url_column, store.public_url(row.key) if row is not None else None)


def record(image: Image, store: ObjectStore, stored: Stored) -> None:
    """The image row and its rendition rows as `stored` says; the image is ready."""
    info, result = stored.info, stored.result
    existing = {(r.name, r.format): r for r in image.renditions}
    for rendition, key in zip(result.renditions, stored.keys[1:], strict=True):
        spec = rendition.spec
        row = existing.get((spec.name, spec.format))
        if row is None:
            row = Rendition(name=spec.name, format=spec.format)
            image.renditions.append(row)
        set_rendition(image, row, rendition, key)
    sync_legacy_urls(image, store)
    set_hash(image, result.pdq)

    image.s3_key = stored.keys[0]
    image.s3_bucket = store.bucket
    image.width, image.height = info.width, info.height
    image.file_size = info.file_size
    image.mime_type = info.mime_type
    image.has_alpha = result.has_alpha
    image.sha256 = stored.sha256
    image.blurhash = result.placeholders.blurhash
    image.dominant_color = result.placeholders.dominant_color
    image.frames = info.pages
    image.captured_at = info.capture.taken_at
    image.camera = info.capture.camera
    image.copyright = info.capture.copyright
    image.error_code = image.error_message = None
    image.status = ImageStatus.READY
    image.processed_at = datetime.now(UTC)


def _owns(session: Session, claimed: Claim) -> bool:
    """Whether `claimed` still owns the image, on a failure path: a database that cannot say is
    taken as no (nothing is removed; the orphan scan finds what stays)."""
    try:
        return holds(session, claimed) is None
    except Exception:  # noqa: BLE001 - the render's own error is the one that matters
        log.warning("could not check the claim of image %s after a failed render", claimed.image_id)
        return False


def _failed(session: Session, queue: TaskQueue, claimed: Claim, code: str, message: str | None = None, *, owner: bool) -> Outcome:
    """Fail the image, if this attempt still owns it (`owner`: the step's ownership check)."""
    if not owner:
        return Outcome.SKIPPED
    fail_unfinished(session, queue, claimed.image_id, code, message)
    return Outcome.FAILED
