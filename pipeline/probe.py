"""Know what a file is before decoding a pixel: sniff magic bytes, read the header, check limits."""
from __future__ import annotations

from dataclasses import dataclass

import pyvips

from .errors import CorruptImage, FileTooLarge, ImageTooLarge, ImageTooSmall, UnsupportedMediaType
from .specs import FORMAT_EXT as EXTENSION
from .specs import FORMAT_MIME as MIME

# libvips runs loaders it deems unsafe on untrusted input (e.g. via ImageMagick, PDFium) only
# when asked; we never are, so block them process-wide as defence in depth.
pyvips.block_untrusted_set(True)

# The sniffed format must be loaded by exactly this loader: a file that fools the sniffer
# still cannot reach another decoder.
ALLOWED_LOADERS = {
    "jpeg": {"jpegload_buffer", "uhdrload_buffer"},  # Ultra HDR is a JPEG with a gain map
    "png": {"pngload_buffer"},
    "webp": {"webpload_buffer"},
}
SNIFF_BYTES = 16


def sniff(head: bytes) -> str | None:
    """The format from the first bytes of a file, or None when it is not one we serve."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 120_000_000
    max_side_px: int = 20_000
    min_side_px: int = 64


@dataclass(frozen=True)
class ProbeResult:
    format: str
    width: int  # as displayed, i.e. after EXIF orientation
    height: int
    orientation: int
    bands: int
    file_size: int

    @property
    def mime_type(self) -> str:
        return MIME[self.format]

    @property
    def extension(self) -> str:
        return EXTENSION[self.format]


def check_size(size_bytes: int, limits: ImageLimits) -> None:
    if size_bytes > limits.max_bytes:
        raise FileTooLarge(f"file is {size_bytes} bytes; the limit is {limits.max_bytes} bytes")


def require_supported(head: bytes) -> str:
    fmt = sniff(head)
    if fmt is None:
        raise UnsupportedMediaType("not a JPEG, PNG or WebP image (the format is read from the file's bytes)")
    return fmt


def probe(data: bytes, limits: ImageLimits = ImageLimits()) -> ProbeResult:
    """Read the header only and enforce every limit; no pixel is decoded here."""
    check_size(len(data), limits)
    fmt = require_supported(data[:SNIFF_BYTES])
    try:
        header = pyvips.Image.new_from_buffer(data, "", access="sequential")
        loader = header.get("vips-loader")
    except pyvips.Error as exc:
        raise CorruptImage(f"the {fmt.upper()} header cannot be read: {vips_reason(exc)}") from exc
    if loader not in ALLOWED_LOADERS[fmt]:
        raise UnsupportedMediaType(f"file starts like {fmt.upper()} but libvips reads it as {loader}")
    width, height = header.width, header.height
    orientation = header.get("orientation") if header.get_typeof("orientation") else 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if width > limits.max_side_px or height > limits.max_side_px:
        raise ImageTooLarge(f"image is {width}x{height} px; no side may exceed {limits.max_side_px} px")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} = {width * height} px; the limit is {limits.max_pixels} px")
    if width < limits.min_side_px or height < limits.min_side_px:
        raise ImageTooSmall(f"image is {width}x{height} px; each side must be at least {limits.min_side_px} px")
    return ProbeResult(fmt, width, height, int(orientation or 1), header.bands, len(data))


def vips_reason(exc: Exception) -> str:
    """The most specific line of a libvips error (its last), without the indentation."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else exc.__class__.__name__
