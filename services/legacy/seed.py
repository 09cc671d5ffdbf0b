"""A legacy data set anyone can rehearse a migration on: files in the legacy layout
(`DIR/properties/{id}/{name}`, `DIR/projects/...`, `DIR/avatars/...`) made from the repository's
corpus photos, and their legacy rows, with the oddities of a real set on purpose: missing files,
corrupt ones, a zero-byte file, duplicate names, upper-case extensions, names with spaces and
non-ASCII characters."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Image, ImageStatus
from services.entities import entity_kind

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "corpus" / "photos"


def _legacy_table(kind: str) -> str | None:
    declared = entity_kind(kind)
    return declared.legacy_table if declared else None


def _photos() -> list[bytes]:
    files = sorted(p for p in CORPUS.glob("*") if p.suffix.lower() in (".jpg", ".png", ".webp"))
    if files:
        return [p.read_bytes() for p in files]
    import pyvips  # no corpus beside this checkout: small generated pictures

    return [pyvips.Image.xyz(640, 480)[0].cast("uchar").jpegsave_buffer(Q=70 + n) for n in range(5)]


def seed(session: Session, folder: Path, count: int, url_prefix: str) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    photos = itertools.cycle(_photos())
    next_legacy = (session.scalar(select(func.max(Image.legacy_id))) or 0) + 1
    base_entity = (session.scalar(select(func.max(Image.entity_id)).where(Image.legacy_table.is_not(None))) or 0) + 1
    made: Counter = Counter()
    oddities: dict[str, list[str]] = {"missing": [], "corrupt": [], "empty": [], "odd_names": []}
    now = datetime.now(UTC)
    for n in range(count):
        kind = ("properties", "properties", "properties", "projects", "avatars")[n % 5]
        entity_id = base_entity + (n // 5 if kind != "avatars" else n)
        if kind == "avatars":
            name = f"{entity_id}.jpg"
        elif n % 5 == 0 and (n // 5) % 4 == 3:
            name = "front.jpg"  # the same name in many listings
        else:
            name = [f"photo_{n}.jpg", f"IMG_{n}.JPG", f"living room {n}.jpg", f"façade_{n}.jpg"][n % 4]
        relative = f"{kind}/{entity_id}/{name}" if kind != "avatars" else f"{kind}/{name}"
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = next(photos)
        if n % 23 == 7:
            oddities["missing"].append(relative)  # the row stays, the file was lost long ago
        elif n % 29 == 11:
            path.write_bytes(data[: len(data) // 3])
            oddities["corrupt"].append(relative)
        elif n == min(13, count - 1) and count >= 3:
            path.write_bytes(b"")
            oddities["empty"].append(relative)
        else:
            path.write_bytes(data)
        if not name.isascii() or " " in name or name.endswith(".JPG"):
            oddities["odd_names"].append(relative)
        session.add(
            Image(
                entity_type=kind,
                entity_id=entity_id,
                status=ImageStatus.LEGACY,
                url=url_prefix + relative,
                legacy_table=_legacy_table(kind),
                legacy_id=next_legacy + n,
                position=n // 5 if kind != "avatars" else 0,
                is_primary=kind == "properties" and n % 15 == 0,
                created_at=now - timedelta(days=count - n),
                updated_at=now - timedelta(days=count - n),
            )
        )
        made[kind] += 1
        if n % 1000 == 999:
            session.flush()
    session.flush()
    return {
        "folder": str(folder),
        "rows": count,
        "per_entity": dict(made),
        **{k: len(v) for k, v in oddities.items()},
        "examples": {k: v[:3] for k, v in oddities.items()},
    }
