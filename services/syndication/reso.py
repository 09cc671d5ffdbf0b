"""The RESO Media feed this platform serves (`GET /api/v1/reso/Media`): ready, public media of
the syndicated entity kinds in RESO Data Dictionary 2.0's JSON shape, with the small part of
OData a replicating portal uses: `$filter` on ModificationTimestamp (gt, ge, lt, le) and on
ResourceRecordKey, ResourceName or MediaKey (eq), joined by `and`; `$orderby=ModificationTimestamp
asc|desc`; `$top`; and `@odata.nextLink` paging by a stable (ModificationTimestamp, MediaKey) key."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from db.models import Image, ImageStatus
from pipeline.specs import rendition_sizes
from services.entities import entity_kind, entity_kinds
from services.images.queries import public_gallery
from services.images.serialisers import disclosure_json
from storage import ObjectStore

from . import media

MAX_TOP = 200
DEFAULT_TOP = 100
ORIGINATING_SYSTEM = "imagepipe"


class ODataError(ValueError):
    """A query this feed does not understand (400 invalid_parameter)."""


_CLAUSE = re.compile(r"^\s*(\w+)\s+(eq|gt|ge|lt|le)\s+(.+?)\s*$")
_TIME_OPS = {"gt", "ge", "lt", "le", "eq"}


@dataclass
class Query:
    since: list[tuple[str, datetime]] = field(default_factory=list)  # (op, time) on ModificationTimestamp
    record_key: str | None = None
    resource: str | None = None
    media_key: int | None = None
    descending: bool = False
    top: int = DEFAULT_TOP
    after: tuple[datetime, int] | None = None  # the skiptoken: the last entry of the previous page


def parse_stamp(text: str) -> datetime:
    """A RESO timestamp (RFC 3339; without an offset it is UTC); ValueError if it is none."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def stamp(value: datetime | None) -> str | None:
    """A timestamp as RESO writes it: UTC, with Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _literal_time(text: str) -> datetime:
    try:
        return parse_stamp(text)
    except ValueError:
        raise ODataError(f"not a timestamp: {text!r} (write 2026-01-31T00:00:00Z, no quotes)") from None


def _literal_string(text: str) -> str:
    text = text.strip()
    if len(text) < 2 or text[0] != "'" or text[-1] != "'":
        raise ODataError(f"not a string literal: {text!r} (write it in single quotes)")
    return text[1:-1].replace("''", "'")


def parse(filter_: str | None, orderby: str | None, top: int | None, skiptoken: str | None) -> Query:
    q = Query()
    for clause in re.split(r"\s+and\s+", filter_ or "", flags=re.IGNORECASE) if filter_ else []:
        m = _CLAUSE.match(clause)
        if not m:
            raise ODataError(f"cannot read {clause!r}: this feed takes `Field op value` clauses joined by `and`")
        name, op, value = m.groups()
        if name == "ModificationTimestamp" and op in _TIME_OPS:
            q.since.append((op, _literal_time(value)))
        elif name == "ResourceRecordKey" and op == "eq":
            q.record_key = _literal_string(value)
        elif name == "ResourceName" and op == "eq":
            q.resource = _literal_string(value)
        elif name == "MediaKey" and op == "eq":
            key = _literal_string(value)
            q.media_key = int(key) if key.isdigit() else -1
        else:
            raise ODataError(
                f"cannot filter on {name} {op}: this feed filters ModificationTimestamp (gt, ge, lt, le, eq) and"
                " ResourceRecordKey, ResourceName, MediaKey (eq)"
            )
    if orderby:
        m = re.fullmatch(r"\s*ModificationTimestamp(\s+(asc|desc))?\s*(,\s*MediaKey(\s+(asc|desc))?\s*)?", orderby)
        if not m:
            raise ODataError("$orderby takes ModificationTimestamp asc|desc (MediaKey breaks ties in the same direction)")
        q.descending = m.group(2) == "desc"
    if top is not None:
        if not 1 <= top <= MAX_TOP:
            raise ODataError(f"$top must be from 1 to {MAX_TOP}")
        q.top = top
    if skiptoken:
        stamp, _, key = skiptoken.rpartition("~")
        try:
            q.after = (_literal_time(stamp), int(key))
        except (ODataError, ValueError):
            raise ODataError("$skiptoken must be the value from an @odata.nextLink") from None
    return q


def skiptoken(image: Image) -> str:
    return f"{stamp(image.updated_at)}~{image.id}"


def syndicated() -> dict[str, str]:
    """Entity type -> RESO ResourceName, for the kinds in the feed."""
    return {k.name: k.reso_resource for k in entity_kinds() if k.reso_resource}


def page(session: Session, q: Query) -> tuple[list[Image], bool]:
    """One page of the feed and whether another follows."""
    kinds = syndicated()
    if q.resource is not None:
        kinds = {t: r for t, r in kinds.items() if r == q.resource}
    stmt = select(Image).where(
        Image.status == ImageStatus.READY, Image.permission == media.PUBLIC, Image.entity_type.in_(list(kinds) or [""])
    )
    column = Image.updated_at
    ops = {"gt": column.__gt__, "ge": column.__ge__, "lt": column.__lt__, "le": column.__le__, "eq": column.__eq__}
    for op, when in q.since:
        stmt = stmt.where(ops[op](when))
    if q.record_key is not None:
        if not q.record_key.isdigit():
            return [], False
        stmt = stmt.where(Image.entity_id == int(q.record_key))
    if q.media_key is not None:
        stmt = stmt.where(Image.id == q.media_key)
    if q.after is not None:
        when, last = q.after
        if q.descending:
            stmt = stmt.where(or_(column < when, and_(column == when, Image.id < last)))
        else:
            stmt = stmt.where(or_(column > when, and_(column == when, Image.id > last)))
    order = (column.desc(), Image.id.desc()) if q.descending else (column.asc(), Image.id.asc())
    rows = list(
        session.scalars(
            stmt.order_by(*order).limit(q.top + 1).options(selectinload(Image.renditions), selectinload(Image.original))
        )
    )
    return rows[: q.top], len(rows) > q.top


def gallery_orders(session: Session, images: list[Image]) -> dict[int, int]:
    """RESO Order of each image within its listing's public media (the cover is 0)."""
    orders: dict[int, int] = {}
    for entity_type, entity_id in {(i.entity_type, i.entity_id) for i in images}:
        orders.update({image.id: n for n, image in enumerate(public_gallery(session, entity_type, entity_id))})
    return orders


def sizes(image: Image, store: ObjectStore) -> list[dict[str, Any]]:
    """Each declared size's universally decodable rendition (JPEG, or PNG) as RESO describes a
    media URL; the widest is also "Largest"."""
    rows = {r.name: r for r in image.renditions if r.format in ("jpeg", "png")}
    out = []
    for size in sorted(rendition_sizes(), key=lambda s: s.width):
        row = rows.get(size.name)
        if row is not None and size.reso_size:
            out.append(
                {
                    "ImageSizeDescription": size.reso_size,
                    "MediaURL": store.public_url(row.key),
                    "ImageWidth": row.width,
                    "ImageHeight": row.height,
                }
            )
    if out:
        out.append({**out[-1], "ImageSizeDescription": "Largest"})
    return out


MEDIA_TYPES = {"jpeg": "Jpeg", "png": "Png"}


def entry(image: Image, store: ObjectStore, order: int, disclosure_text: str) -> dict[str, Any]:
    """One image as a RESO Media record."""
    kind = entity_kind(image.entity_type)
    urls = sizes(image, store)
    largest = urls[-1] if urls else {}
    disclosure = disclosure_json(image, store, disclosure_text)
    fmt = "png" if image.has_alpha else "jpeg"
    return {
        "MediaKey": str(image.id),
        "OriginatingSystemName": ORIGINATING_SYSTEM,
        "ResourceName": kind.reso_resource if kind else None,
        "ResourceRecordKey": str(image.entity_id),
        "MediaCategory": image.category or "Photo",
        "MediaType": MEDIA_TYPES[fmt],
        "MediaStatus": "Active",
        "Order": order,
        "PreferredPhotoYN": bool(image.is_primary),
        "ImageOf": image.image_of,
        "ShortDescription": image.caption,
        "LongDescription": image.description,
        "Permission": [image.permission or media.PUBLIC],
        "MediaAlteration": media.read_alteration(image.alteration) or [media.NO_ALTERATION],
        "MediaURL": largest.get("MediaURL"),
        "ImageWidth": largest.get("ImageWidth"),
        "ImageHeight": largest.get("ImageHeight"),
        "ImageSizeDescription": "Largest" if largest else None,
        "MediaModificationTimestamp": stamp(image.processed_at),
        "ModificationTimestamp": stamp(image.updated_at),
        # Local fields (RESO allows them beside the standard ones): every size, and the disclosure.
        "Imagepipe_MediaURLs": urls,
        "Imagepipe_DisclosureText": disclosure["text"] if disclosure else None,
        "Imagepipe_OriginalMediaKey": str(disclosure["original_id"]) if disclosure and disclosure["original_id"] else None,
        "Imagepipe_OriginalMediaURL": disclosure["original_url"] if disclosure else None,
    }


def feed(session: Session, store: ObjectStore, q: Query, disclosure_text: str) -> tuple[list[dict[str, Any]], Image | None]:
    """The page's records, and the last image when another page follows."""
    images, more = page(session, q)
    orders = gallery_orders(session, images)
    records = []
    for image in images:
        records.append(entry(image, store, orders.get(image.id, 0), disclosure_text))
    return records, (images[-1] if more and images else None)
