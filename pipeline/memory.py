"""The decode-memory model: bytes a decoder must hold at once beyond the streaming pipeline,
estimated from the header before decoding (measured; tests/pipeline/test_memory.py)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ImageTooLarge
from .jpeg import JpegLayout
from .limits import ImageLimits

# Most decoders stream: a baseline JPEG, a non-interlaced PNG or a lossy WebP is read a strip
# at a time into the shrinking pipeline, whatever its size. These hold the whole frame first;
# bytes per pixel of peak RSS growth, measured (VmHWM) on 9 and 36 MP images with pyvips-binary
# 8.18 and pi-heif 1.4, rounded up (tests/pipeline/test_memory.py keeps them honest):
AVIF_BYTES_PER_PIXEL = 16  # libheif + dav1d inside libvips: 14.4 (RGB), 15.7 (RGBA)
HEIC_BYTES_PER_PIXEL = 8  # libheif + libde265 in pi-heif, then handed to libvips: 6 (RGB)
LOSSLESS_WEBP_BYTES_PER_PIXEL = 4  # VP8L decodes the whole ARGB frame: 3.9
JPEG_COEFFICIENT_BYTES = 2  # per sample: a progressive JPEG keeps every DCT coefficient: 2.9 at 4:2:0
INTERLACED_PNG_OVERHEAD = 1.25  # Adam7 decodes whole; x bands x bytes per sample: 3.5 for RGB8


def _webp_lossless(data: bytes) -> bool:
    """Whether the first image bitstream of a WebP file is VP8L (lossless). Past 1 000 chunks
    before any bitstream (a real file has a handful), assume the worst."""
    pos = 12
    for _ in range(1000):
        if pos + 8 > len(data):
            return False
        fourcc, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if fourcc in (b"VP8 ", b"VP8L"):
            return fourcc == b"VP8L"
        if fourcc == b"ANMF":  # a frame: 16 bytes of frame header, then its own chunks
            pos += 8 + 16
            continue
        pos += 8 + size + (size & 1)
    return True


_SAMPLE_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "float": 4, "double": 8}


@dataclass(frozen=True)
class PngHeader:
    """What the PNG header says that decides its decode memory."""

    interlaced: bool
    bands: int
    sample_format: str  # libvips band format: uchar, ushort ...


def decode_memory(
    fmt: str, data: bytes, pixels: int, *, jpeg: JpegLayout | None = None, png: PngHeader | None = None
) -> tuple[int, str]:
    """Bytes a decoder must hold at once for this image beyond the streaming pipeline, and why."""
    if fmt == "jpeg" and jpeg is not None and jpeg.buffered:
        return (
            int(pixels * jpeg.samples_per_pixel * JPEG_COEFFICIENT_BYTES),
            "a progressive JPEG keeps every DCT coefficient until its last scan",
        )
    if fmt == "png" and png is not None and png.interlaced:
        per_pixel = png.bands * _SAMPLE_BYTES.get(png.sample_format, 1) * INTERLACED_PNG_OVERHEAD
        return int(pixels * per_pixel), "an interlaced (Adam7) PNG is decoded whole"
    if fmt == "webp" and _webp_lossless(data):
        return pixels * LOSSLESS_WEBP_BYTES_PER_PIXEL, "a lossless WebP is decoded whole"
    if fmt == "avif":
        return pixels * AVIF_BYTES_PER_PIXEL, "an AVIF is decoded whole"
    if fmt == "heic":
        return pixels * HEIC_BYTES_PER_PIXEL, "a HEIC is decoded whole"
    return 0, "streamed"


def check_decode_memory(need: int, why: str, fmt: str, limits: ImageLimits) -> None:
    if need > limits.max_decode_bytes:
        mib, limit = -(-need // 2**20), limits.max_decode_bytes // 2**20
        raise ImageTooLarge(
            f"decoding this {fmt.upper()} needs about {mib} MB of memory at once ({why}); "
            f"the limit is {limit} MB: downscale it, or save it as a baseline JPEG"
        )
