"""Where each migrated legacy URL lives now: the map `imagepipe migrate redirects` prints and the
API's 301s for GET LEGACY_URL_PREFIX... (api/legacy.py)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus, Rendition
from pipeline.specs import display_sizes
from storage import ObjectStore


def _migrated_large():
    """(legacy URL, key of the largest displayed size's JPEG/PNG rendition) of migrated images: the
    redirects' one query (a legacy URL showed the whole photo)."""
    largest = max(display_sizes(), key=lambda size: size.width).name
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


# nginx expands $variables inside quoted strings too, and a quote, backslash or control character
# would end or bend the string: such a path is refused and reported, never written.
_NGINX_REFUSED = re.compile(r'[\x00-\x1f\x7f"\\$]')


@dataclass
class RedirectMap:
    text: str  # the configuration (nginx) or the table (csv)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (legacy URL, why)


def as_csv(pairs: Iterable[tuple[str, str]]) -> RedirectMap:
    """legacy_url,new_url rows through the csv module (a comma or quote in a name is quoted)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["legacy_url", "new_url"])
    writer.writerows(pairs)
    return RedirectMap(out.getvalue())


def as_nginx(pairs: Iterable[tuple[str, str]]) -> RedirectMap:
    """One exact-match location per legacy URL, every path and URL in double quotes; a URL nginx
    could not take literally (quotes, backslashes, `$`, control characters) is refused."""
    lines, refused = [], []
    for old, new in pairs:
        bad = next((value for value in (old, new) if _NGINX_REFUSED.search(value)), None)
        if bad is not None:
            refused.append((old, f"contains a character nginx would not take literally: {bad!r}"))
            continue
        lines.append(f'location = "{old}" {{ return 301 "{new}"; }}')
    return RedirectMap("".join(line + "\n" for line in lines), refused)
