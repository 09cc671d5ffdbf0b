"""Which format a file is, from its first bytes. No libvips here: the API imports this to
refuse a non-image at once without loading an image library (docs/architecture.md)."""

from __future__ import annotations

from .errors import CorruptImage, UnsupportedMediaType

# Every format imagepipe reads or writes. HEIC is input only; AVIF is both (output behind a setting).
FORMAT_EXT = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif", "heic": "heic"}
FORMAT_MIME = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "heic": "image/heic",
}
SNIFF_BYTES = 64  # enough for an ISO-BMFF `ftyp` box with its compatible brands

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2", b"miaf"}


def _ftyp_brands(head: bytes) -> set[bytes]:
    size = int.from_bytes(head[:4], "big")
    end = min(max(size, 16), len(head))
    brands = {head[8:12]}
    brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
    return brands


def sniff(head: bytes) -> str | None:
    """The format from the first bytes of a file, or None when it is not one we serve."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brands = _ftyp_brands(head)
        if brands & _AVIF_BRANDS:
            return "avif"
        if brands & (_HEIC_BRANDS | _HEIF_BRANDS):
            return "heic"  # a generic HEIF; the probe reads its codec and settles avif vs heic
    return None


def _damaged_png_signature(head: bytes) -> bool:
    # A PNG whose 8-byte signature was mangled in transfer (text-mode CR/LF conversion, a
    # 7-bit channel) still has its IHDR chunk where it belongs: a corrupt PNG, not another format.
    return head[12:16] == b"IHDR" and head[1:4].upper() in (b"PNG", b"QNG") and head[:8] != b"\x89PNG\r\n\x1a\n"


def require_supported(head: bytes) -> str:
    fmt = sniff(head)
    if fmt is None and _damaged_png_signature(head):
        raise CorruptImage("the PNG signature is damaged (the file was altered in transfer)")
    if fmt is None:
        raise UnsupportedMediaType("not a JPEG, PNG, WebP, AVIF or HEIC image (the format is read from the file's bytes)")
    return fmt
