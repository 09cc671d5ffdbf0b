"""Read container structure (not pixels) to see which metadata blocks a file carries."""

from __future__ import annotations

import struct


def metadata_blocks(data: bytes) -> list[str]:
    """Names of the metadata-bearing segments/chunks in a JPEG, PNG or WebP file."""
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    raise ValueError("not JPEG, PNG or WebP")


def _jpeg(data: bytes) -> list[str]:
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: metadata segments all come before it
            break
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        payload = data[i + 4 : i + 2 + length]
        if marker == 0xE1:
            out.append("exif" if payload.startswith(b"Exif\x00") else "xmp" if b"xmp" in payload[:40].lower() else "app1")
        elif marker == 0xED:
            out.append("iptc")
        elif marker == 0xE2 and payload.startswith(b"ICC_PROFILE"):
            out.append("icc")
        i += 2 + length
    return out


def _png(data: bytes) -> list[str]:
    out, i = [], 8
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i : i + 8])
        if kind in (b"eXIf", b"iTXt", b"tEXt", b"zTXt", b"iCCP"):
            out.append(kind.decode())
        i += 12 + length
    return out


def _webp(data: bytes) -> list[str]:
    out, i = [], 12
    while i + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[i : i + 8])
        if kind in (b"EXIF", b"XMP ", b"ICCP"):
            out.append(kind.decode().strip())
        i += 8 + length + (length & 1)
    return out
