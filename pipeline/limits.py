"""What an image may be: the limits enforced before a pixel is decoded."""

from __future__ import annotations

from dataclasses import dataclass

from .declare import setting
from .errors import FileTooLarge, ImageTooLarge, ImageTooSmall


@dataclass(frozen=True)
class ImageLimits:
    max_upload_bytes: int = setting(
        25 * 1024 * 1024, "bytes per file (25 MiB); the HTTP body cap is this x MAX_FILES_PER_REQUEST", lo=1024, hi=5 * 1024**3
    )
    max_pixels: int = setting(120_000_000, "width x height, checked from the header before decoding", lo=1, hi=10**10)
    max_side_px: int = setting(20_000, "longest side in px", lo=1, hi=10_000_000)
    min_side_px: int = setting(64, "shortest side in px (smaller is refused as image_too_small)", lo=1, hi=10_000)
    max_jpeg_scans: int = setting(
        100,
        "scans of a progressive JPEG, counted before decoding (cameras write 1, progressive encoders about 10);"
        " each scan is another pass over every block, so thousands of tiny scans are a denial of service"
        " -> image_too_complex",
        lo=1,
        hi=10_000,
    )
    max_decode_mb: int = setting(
        512,
        "memory one decoder may hold at once, estimated from the header (pipeline/memory.py): baseline JPEG,"
        " non-interlaced PNG and lossy WebP stream and need none; a progressive JPEG needs 2 bytes per sample,"
        " an interlaced PNG its whole frame, a lossless WebP 4 B/px, HEIC 8 B/px, AVIF 16 B/px. Over it ->"
        " image_too_large; a worker process peaks at about this plus 100 MB",
        lo=16,
        hi=1_048_576,
    )

    @property
    def max_decode_bytes(self) -> int:
        return self.max_decode_mb * 2**20


def check_size(size_bytes: int, limits: ImageLimits) -> None:
    if size_bytes > limits.max_upload_bytes:
        raise FileTooLarge(f"file is {size_bytes} bytes; the limit is {limits.max_upload_bytes} bytes")


def check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width > limits.max_side_px or height > limits.max_side_px:
        raise ImageTooLarge(f"image is {width}x{height} px; no side may exceed {limits.max_side_px} px")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} = {width * height} px; the limit is {limits.max_pixels} px")
    if width < limits.min_side_px or height < limits.min_side_px:
        raise ImageTooSmall(f"image is {width}x{height} px; each side must be at least {limits.min_side_px} px")
