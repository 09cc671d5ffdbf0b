"""Where each migrated legacy URL lives now: the map `imagepipe migrate redirects` prints and the
API's 301s for GET LEGACY_URL_PREFIX... (api/legacy.py)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus, Rendition
from pipeline.specs import rendition_sizes
from storage import ObjectStore


def _migrated_large():
    """(legacy URL, key of the largest declared size's JPEG/PNG rendition) of migrated images: the
    redirects' one query (a legacy URL showed the whole photo)."""
    largest = max(rendition_sizes(), key=lambda size: size.width).name
    return (
        select(Image.url, Rendition.key)
        .join(Rendition, Rendition.image_id == Image.id)
        .where(
            Image.status == ImageStatus.READY,
            Image.legacy_table.is_not(None),
            Image.url.is_not(None),
            Rendition.name == largest,
            Rendition.format.in_(("jpeg", "png")),
        )
    )


def redirects(session: Session, store: ObjectStore) -> Iterator[tuple[str, str]]:
    """(legacy URL, new URL) of every migrated image: its largest JPEG/PNG rendition."""
    query = _migrated_large().order_by(Image.id).execution_options(yield_per=1000)
    for url, key in session.execute(query):
        yield url, store.public_url(key)


def redirect_for(session: Session, store: ObjectStore, url: str) -> str | None:
    row = session.execute(_migrated_large().where(Image.url == url).limit(1)).first()
    return None if row is None else store.public_url(row.key)
