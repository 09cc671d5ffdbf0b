"""What an image's header says beyond its size: EXIF capture details (for the database only,
never for a public file) and the name of its embedded ICC profile."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyvips


@dataclass(frozen=True)
class CaptureInfo:
    """What the camera said, for the database only; never written to a public file."""

    taken_at: str | None = None  # EXIF DateTimeOriginal as ISO 8601, local camera time
    camera: str | None = None  # make and model
    copyright: str | None = None


# libvips renders an EXIF string tag as "value (value, ASCII, 24 components, 24 bytes)".
_EXIF_STRING = re.compile(r"^(?P<value>.*) \((?P=value), \w+, \d+ components?, \d+ bytes?\)$", re.S)


def _exif_text(header: pyvips.Image, field: str, limit: int = 200) -> str | None:
    if not header.get_typeof(field):
        return None
    try:
        raw = header.get(field)
    except pyvips.Error:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    match = _EXIF_STRING.match(str(raw))
    value = (match.group("value") if match else str(raw)).strip().strip("\x00").strip()
    value = "".join(ch for ch in value if ch.isprintable())
    if not any(ch.isalnum() for ch in value):
        return None
    return value[:limit]


def capture_info(header: pyvips.Image) -> CaptureInfo:
    taken = _exif_text(header, "exif-ifd2-DateTimeOriginal") or _exif_text(header, "exif-ifd0-DateTime")
    taken_at = None
    if taken and re.fullmatch(r"\d{4}:\d\d:\d\d \d\d:\d\d:\d\d", taken) and not taken.startswith("0000"):
        taken_at = taken[:10].replace(":", "-") + "T" + taken[11:]
        offset = _exif_text(header, "exif-ifd2-OffsetTimeOriginal")
        if offset and re.fullmatch(r"[+-]\d\d:\d\d", offset):
            taken_at += offset
    make = _exif_text(header, "exif-ifd0-Make", 100)
    model = _exif_text(header, "exif-ifd0-Model", 100)
    camera = (
        model if make and model and model.lower().startswith(make.lower()) else " ".join(p for p in (make, model) if p) or None
    )
    return CaptureInfo(taken_at, camera, _copyright(_exif_text(header, "exif-ifd0-Copyright")))


def _copyright(value: str | None) -> str | None:
    # EXIF Copyright holds "photographer\0editor"; libvips shows it as
    # "<photographer> (Photographer) - <editor> (Editor)" with "[None]" for an empty part.
    if not value:
        return None
    parts = []
    for part in value.split(" - "):
        part = re.sub(r"\s*\((Photographer|Editor)\)$", "", part.strip()).strip()
        if part and part != "[None]":
            parts.append(part)
    text = " - ".join(parts)
    return text if any(ch.isalnum() for ch in text) else None


def icc_description(profile: bytes) -> str | None:
    """The `desc` tag of an ICC profile (v2 `desc` or v4 `mluc`), or None if unreadable."""
    try:
        count = int.from_bytes(profile[128:132], "big")
        for n in range(min(count, 100)):
            entry = 132 + 12 * n
            if profile[entry : entry + 4] != b"desc":
                continue
            offset = int.from_bytes(profile[entry + 4 : entry + 8], "big")
            size = int.from_bytes(profile[entry + 8 : entry + 12], "big")
            tag = profile[offset : offset + size]
            if tag[:4] == b"desc":
                length = int.from_bytes(tag[8:12], "big")
                return tag[12 : 12 + length].split(b"\x00", 1)[0].decode("latin-1").strip() or None
            if tag[:4] == b"mluc" and int.from_bytes(tag[8:12], "big") > 0:
                rec_len = int.from_bytes(tag[20:24], "big")
                rec_off = int.from_bytes(tag[24:28], "big")
                return tag[rec_off : rec_off + rec_len].decode("utf-16-be", "replace").strip("\x00 ") or None
    except (IndexError, ValueError):
        return None
    return None


def embedded_profile(header: pyvips.Image) -> str | None:
    """The description of an embedded ICC profile ("" when it has none we can read), or None."""
    if not header.get_typeof("icc-profile-data"):
        return None
    try:
        return icc_description(bytes(header.get("icc-profile-data"))) or ""
    except pyvips.Error:
        return ""
