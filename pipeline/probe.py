"""Know what a file is before decoding a pixel: sniff, check the structure and limits, read the
header with the one loader its format allows. The concerns live in their own modules: sniff.py
(magic bytes), limits.py, jpeg.py (segment walk), memory.py (decode-memory model),
metadata.py (EXIF and ICC)."""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from .errors import CorruptImage, UnsupportedMediaType
from .jpeg import check_jpeg_layout, jpeg_layout
from .limits import ImageLimits, check_dimensions, check_size
from .memory import PngHeader, check_decode_memory, decode_memory
from .metadata import CaptureInfo, capture_info, embedded_profile
from .sniff import FORMAT_EXT, FORMAT_MIME, SNIFF_BYTES, require_supported

# libvips runs loaders it deems unsafe on untrusted input (e.g. via ImageMagick, PDFium) only
# when asked; we never are, so block them process-wide as defence in depth. Then block every
# loader and re-enable only the buffer loaders we serve: a file that fools the sniffer cannot
# reach GIF, TIFF, SVG, PDF, matrix or CSV code at all, not even to read a header.
SERVED_LOADER_CLASSES = (
    "VipsForeignLoadJpegBuffer",
    "VipsForeignLoadPngBuffer",
    "VipsForeignLoadWebpBuffer",
    "VipsForeignLoadHeifBuffer",
    "VipsForeignLoadUhdrBuffer",
)
_policy_applied = False


def apply_loader_policy() -> None:
    """Block every libvips loader but ours, once per process (called before the first probe,
    never at import)."""
    global _policy_applied
    if _policy_applied:
        return
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoad", True)
    for name in SERVED_LOADER_CLASSES:
        pyvips.operation_block_set(name, False)
    _policy_applied = True


# The sniffed format must be loaded by exactly this loader: a file that fools the sniffer
# still cannot reach another decoder.
ALLOWED_LOADERS = {
    "jpeg": {"jpegload_buffer", "uhdrload_buffer"},  # Ultra HDR is a JPEG with a gain map
    "png": {"pngload_buffer"},
    "webp": {"webpload_buffer"},
    "avif": {"heifload_buffer"},
    "heic": {"heifload_buffer"},  # header only: pixels are decoded by pi-heif (see render.py)
}
# The codec inside a HEIF container decides what it is; a HEIF holding JPEG or an
# uncompressed image is not a format we serve.
HEIF_CODECS = {"av1": "avif", "hevc": "heic"}


@dataclass(frozen=True)
class ProbeResult:
    format: str
    width: int  # as displayed, i.e. after EXIF orientation
    height: int
    orientation: int
    bands: int
    file_size: int
    pages: int = 1  # frames of an animation; only the first is rendered
    capture: CaptureInfo = CaptureInfo()
    icc_profile: str | None = None  # description of an embedded ICC profile ("" if unnamed)

    @property
    def mime_type(self) -> str:
        return FORMAT_MIME[self.format]

    @property
    def extension(self) -> str:
        return FORMAT_EXT[self.format]

    @property
    def animated(self) -> bool:
        return self.pages > 1


DEFAULT_LIMITS = ImageLimits()


def probe(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> ProbeResult:
    """Read the header only and enforce every limit; no pixel is decoded here."""
    check_size(len(data), limits)
    fmt = require_supported(data[:SNIFF_BYTES])
    jpeg = jpeg_layout(data) if fmt == "jpeg" else None
    if jpeg is not None:
        check_jpeg_layout(jpeg, limits)
    apply_loader_policy()
    try:
        header = pyvips.Image.new_from_buffer(data, "", access="sequential")
        loader = header.get("vips-loader")
    except pyvips.Error as exc:
        raise CorruptImage(f"the {fmt.upper()} header cannot be read: {vips_reason(exc)}") from exc
    if loader not in ALLOWED_LOADERS[fmt]:
        raise UnsupportedMediaType(f"file starts like {fmt.upper()} but libvips reads it as {loader}")
    if loader == "heifload_buffer":
        codec = header.get("heif-compression") if header.get_typeof("heif-compression") else None
        if codec not in HEIF_CODECS:
            raise UnsupportedMediaType(f"a HEIF container holding {codec or 'an unknown codec'} is not served")
        fmt = HEIF_CODECS[codec]
    width, height = header.width, header.height
    pages = _int_field(header, "n-pages", 1)
    if pages > 1 and header.get_typeof("page-height"):
        height = header.get("page-height")  # one frame; loaders report the first only, be sure
    orientation = _int_field(header, "orientation", 1)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    check_dimensions(width, height, limits)
    png = (
        PngHeader(interlaced=bool(_int_field(header, "interlaced", 0)), bands=header.bands, sample_format=header.format)
        if fmt == "png"
        else None
    )
    check_decode_memory(*decode_memory(fmt, data, width * height, jpeg=jpeg, png=png), fmt, limits)
    return ProbeResult(
        format=fmt,
        width=width,
        height=height,
        orientation=orientation if 1 <= orientation <= 8 else 1,
        bands=header.bands,
        file_size=len(data),
        pages=max(pages, 1),
        capture=capture_info(header),
        icc_profile=embedded_profile(header),
    )


def _int_field(header: pyvips.Image, name: str, default: int) -> int:
    try:
        return int(header.get(name)) if header.get_typeof(name) else default
    except (pyvips.Error, TypeError, ValueError):
        return default


def vips_reason(exc: Exception) -> str:
    """The most specific line of a libvips error (its last), without the indentation and
    without libvips' generic "unable to call <operation>" lines."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("unable to call")]
    return (useful or lines or [exc.__class__.__name__])[-1]
