"""Replicating a RESO Web API Media feed (an MLS's, as MLS Grid serves it): `imagepipe feed sync
--url`, and Celery beat for each of FEED_URLS.

A run pages through `ModificationTimestamp gt <watermark>` in (ModificationTimestamp, MediaKey)
order, following @odata.nextLink. Records are keyed by (originating system, MediaKey):
- a new key is imported: its MediaURL is downloaded (hot-linking is not allowed: every photo is
  re-hosted) through the SSRF-safe fetcher by the worker, like POST .../imports;
- a changed MediaModificationTimestamp (or MediaURL) downloads the photo again as a new image,
  which replaces the old one (deleted, its CDN paths invalidated: the renditions' keys are per
  image, so nothing stale is ever served from a cache);
- when only ModificationTimestamp moved, the fields (caption, order, cover ...) are updated;
- MediaStatus Deleted deletes our image; so does a key that vanished from the feed, found by
  the periodic full key comparison (FEED_FULL_COMPARE_HOURS, or --full).

The watermark is saved after every page (a run that fails part-way resumes there): it only
moves past a timestamp once every record carrying it has been applied, so `gt` skips nothing
when a page boundary falls between records with the same timestamp."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Feed, FeedMedia, Image, ImageStatus
from db.unit import Units, after_commit
from pipeline.errors import ImageError
from services.entities import entity_kind
from services.images import manage
from services.images.access import MAX_ENTITY_ID
from services.infra import fetch
from services.infra.audit import Actor
from services.infra.queue import TaskQueue
from services.infra.settings import Settings
from storage import ObjectStore

from . import fields, media
from .imports import new_import
from .reso import parse_stamp, stamp

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGE_BYTES = 32 * 1024 * 1024
MAX_PAGES = 100_000  # a feed that never stops linking to a next page
NOT_IMAGES = {"Video", "Document", "BrandedVirtualTour", "UnbrandedVirtualTour", "Disclosure", "Addendum", "RentalDocuments"}


@dataclass
class Report:
    url: str
    system: str
    entity_type: str
    pages: int = 0
    records: int = 0
    created: int = 0
    refetched: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    vanished: int = 0  # deleted by the full key comparison
    skipped: list[dict[str, str]] = field(default_factory=list)
    full_compare: bool = False
    complete: bool = False
    error: dict[str, str] | None = None
    watermark: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_stamp(value)
    except ValueError:
        return None


def _list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        return [v.strip() for v in value.split(",") if v.strip()]
    return []


def media_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Our media fields from a RESO record; values outside RESO's vocabularies are dropped."""
    out: dict[str, Any] = {}
    category = record.get("MediaCategory")
    out["category"] = category if category in media.CATEGORIES else None
    image_of = record.get("ImageOf")
    out["image_of"] = image_of if image_of in media.IMAGE_OF else None
    out["caption"] = record.get("ShortDescription") if isinstance(record.get("ShortDescription"), str) else None
    out["description"] = record.get("LongDescription") if isinstance(record.get("LongDescription"), str) else None
    permissions = [p for p in _list(record.get("Permission")) if p in media.PERMISSIONS]
    out["permission"] = media.PUBLIC if not permissions or media.PUBLIC in permissions else permissions[0]
    out["alteration"] = [a for a in _list(record.get("MediaAlteration")) if a in media.ALTERATIONS]
    return out


def _place(session: Session, image: Image, record: dict[str, Any]) -> None:
    """Gallery position from Order; the cover from PreferredPhotoYN (or Order 0)."""
    order = record.get("Order")
    position = order if isinstance(order, int) and 0 <= order <= manage.MAX_POSITION else image.position or 0
    primary = record.get("PreferredPhotoYN") is True or order == 0
    manage.update_image(session, image, position=position, is_primary=primary)


class FeedFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Syncer:
    def __init__(self, units: Units, store: ObjectStore, settings: Settings, queue: TaskQueue, report: Report, feed_id: int):
        self.units, self.store, self.settings, self.queue = units, store, settings, queue
        self.report, self.feed_id = report, feed_id
        self.allowed = fetch.networks(settings.fetch_allowed_networks)
        self.actor = Actor(f"feed:{report.system}"[:100])

    # -- reading the feed ------------------------------------------------------------------------
    def page(self, url: str) -> dict[str, Any]:
        try:
            got = fetch.fetch(url, fetch.Limits(max_bytes=MAX_PAGE_BYTES), allowed=self.allowed, accept="application/json")
        except ImageError as exc:
            raise FeedFailed(exc.code, exc.message) from None
        try:
            body = json.loads(got.data)
        except ValueError:
            raise FeedFailed("feed_invalid", f"the page at {urlsplit(url).path} is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise FeedFailed("feed_invalid", "a page must be a JSON object with a `value` array (RESO Web API)")
        self.report.pages += 1
        return body

    def pages(self, first: str):
        url: str | None = first
        for _ in range(MAX_PAGES):
            if url is None:
                return
            body = self.page(url)
            yield body["value"]
            url = body.get("@odata.nextLink")
            if url is not None and not isinstance(url, str):
                raise FeedFailed("feed_invalid", "@odata.nextLink must be a URL")
        raise FeedFailed("feed_invalid", f"more than {MAX_PAGES} pages")

    # -- applying records --------------------------------------------------------------------------
    def apply_page(self, records: list[Any]) -> None:
        """Apply one page in one unit of work; its new images are queued once it has committed."""
        new: list[Image] = []
        with self.units() as session:
            for record in records:
                if isinstance(record, dict):
                    self.apply(session, record, new)
            ids = [i.id for i in new]  # new_import flushed each: the ids are known
            after_commit(session, lambda: self.queue.process_images(ids) if ids else None)

    def skip(self, key: str, reason: str) -> None:
        self.report.skipped.append({"MediaKey": key, "reason": reason})

    def apply(self, session: Session, record: dict[str, Any], new: list[Image]) -> None:
        report = self.report
        report.records += 1
        key = str(record.get("MediaKey") or "")[:255]
        if not key:
            return self.skip("", "no MediaKey")
        system = str(record.get("OriginatingSystemName") or report.system)[:100]
        row = session.scalars(select(FeedMedia).where(FeedMedia.system == system, FeedMedia.media_key == key)).first()
        current = session.get(Image, row.image_id) if row is not None and row.image_id else None
        if current is not None and current.status == ImageStatus.DELETING:
            current = None
        if record.get("MediaStatus") == "Deleted":
            if current is not None:
                self.delete(session, current)
                report.deleted += 1
            if row is not None:
                row.image_id = None
                row.modified_at = _time(record.get("ModificationTimestamp"))
            return None
        listing = str(record.get("ResourceRecordKey") or "")
        if not listing.isdigit() or not 1 <= int(listing) <= MAX_ENTITY_ID:
            return self.skip(key, f"ResourceRecordKey {listing!r} is not a listing id of ours")
        if record.get("MediaCategory") in NOT_IMAGES:
            return self.skip(key, f"MediaCategory {record.get('MediaCategory')} is not a photo")
        url = record.get("MediaURL")
        if not isinstance(url, str) or not url:
            return self.skip(key, "no MediaURL")
        try:
            fetch.check_url(url, self.allowed, names_on_any_port=True)
        except fetch.FetchError as exc:
            return self.skip(key, exc.message)
        media_at, modified_at = _time(record.get("MediaModificationTimestamp")), _time(record.get("ModificationTimestamp"))
        values = media_fields(record)
        if row is None:
            row = FeedMedia(feed_id=self.feed_id, system=system, media_key=key)
            session.add(row)
        if current is None or row.media_modified_at != media_at or row.media_url != url:  # a photo to download
            image = new_import(
                session, entity_type=report.entity_type, entity_id=int(listing), user_id=None, url=url, media=values
            )
            if current is not None:
                self.delete(session, current)
                report.refetched += 1
            else:
                report.created += 1
            _place(session, image, record)
            new.append(image)
            row.image_id = image.id
        elif row.modified_at != modified_at:
            fields.apply(session, current, values)
            _place(session, current, record)
            report.updated += 1
        else:
            report.unchanged += 1
        row.resource_record_key, row.media_url = listing, url[:2048]
        row.media_modified_at, row.modified_at = media_at, modified_at
        return None

    def delete(self, session: Session, image: Image) -> None:
        manage.delete_image(session, self.store, self.queue, image, settings=self.settings, actor=self.actor)

    # -- the full key comparison -----------------------------------------------------------------
    def compare_keys(self, url: str) -> None:
        """Every key still in the feed; ours that are not are deleted."""
        keys: set[tuple[str, str]] = set()
        first = url + "?" + urlencode({"$select": "MediaKey,OriginatingSystemName,MediaStatus", "$top": PAGE_SIZE})
        for records in self.pages(first):
            for r in records:
                if isinstance(r, dict) and r.get("MediaKey") and r.get("MediaStatus") != "Deleted":
                    keys.add((str(r.get("OriginatingSystemName") or self.report.system), str(r["MediaKey"])))
        with self.units() as session:
            rows = session.scalars(
                select(FeedMedia).where(FeedMedia.feed_id == self.feed_id, FeedMedia.image_id.is_not(None))
            ).all()
            for row in rows:
                if (row.system, row.media_key) in keys:
                    continue
                image = session.get(Image, row.image_id)
                if image is not None and image.status != ImageStatus.DELETING:
                    self.delete(session, image)
                    self.report.vanished += 1
                row.image_id = None
            feed = session.get(Feed, self.feed_id)
            assert feed is not None
            feed.full_compare_at = datetime.now(UTC)


def feed_row(session: Session, url: str, system: str | None, entity_type: str) -> Feed:
    feed = session.scalars(select(Feed).where(Feed.url == url)).first()
    if feed is None:
        feed = Feed(url=url, system=(system or urlsplit(url).hostname or "feed")[:100], entity_type=entity_type)
        session.add(feed)
        session.flush()
    elif system:
        feed.system = system[:100]
    return feed


def sync(
    units: Units,
    store: ObjectStore,
    settings: Settings,
    queue: TaskQueue,
    url: str,
    *,
    entity_type: str = "properties",
    system: str | None = None,
    full: bool | None = None,
    page_size: int = PAGE_SIZE,
) -> Report:
    """One run over a feed (see the module's text). `full`: compare every key (None: when the
    last comparison is older than FEED_FULL_COMPARE_HOURS)."""
    if entity_kind(entity_type) is None:
        raise ValueError(f"unknown entity type {entity_type!r}")
    url = url.split("?", 1)[0]
    with units() as session:
        feed = feed_row(session, url, system, entity_type)
        report = Report(url, feed.system, feed.entity_type)
        feed_id, watermark = feed.id, feed.watermark
        due = feed.full_compare_at is None or feed.full_compare_at < datetime.now(UTC) - timedelta(
            hours=settings.feed_full_compare_hours
        )
    syncer = Syncer(units, store, settings, queue, report, feed_id)
    params = {"$orderby": "ModificationTimestamp asc,MediaKey asc", "$top": page_size}
    if watermark is not None:
        params["$filter"] = f"ModificationTimestamp gt {stamp(watermark)}"
    last: datetime | None = None  # the latest timestamp read so far
    try:
        for records in syncer.pages(url + "?" + urlencode(params)):
            syncer.apply_page(records)
            stamps = sorted(t for r in records if isinstance(r, dict) and (t := _time(r.get("ModificationTimestamp"))))
            if not stamps:
                continue
            last = max(last, stamps[-1]) if last else stamps[-1]
            # Past a timestamp only once every record with it has been applied: the page's last
            # timestamp may continue on the next page.
            done = [t for t in stamps if t < stamps[-1]]
            if done and (watermark is None or done[-1] > watermark):
                watermark = done[-1]
                _save_watermark(units, feed_id, watermark)
        if last is not None and (watermark is None or last > watermark):
            watermark = last  # the feed has ended: its last timestamp is done too
            _save_watermark(units, feed_id, watermark)
        if full or (full is None and due):
            report.full_compare = True
            syncer.compare_keys(url)
        report.complete = True
    except FeedFailed as exc:
        report.error = {"code": exc.code, "message": exc.message}
        log.warning("feed %s: sync stopped: %s (resumes from its watermark)", url, exc)
    report.watermark = stamp(watermark)
    with units() as session:
        ran = session.get(Feed, feed_id)
        assert ran is not None
        ran.last_run_at = datetime.now(UTC)
        ran.last_report = json.dumps(report.as_dict())
    return report


def _save_watermark(units: Units, feed_id: int, watermark: datetime) -> None:
    with units() as session:
        feed = session.get(Feed, feed_id)
        assert feed is not None
        feed.watermark = watermark


def configured(settings: Settings) -> list[str]:
    return (settings.feed_urls or "").split()
