"""Renditions as data. A spec's string form is part of its storage key, so changing a spec
(width, quality, format) writes a new key and the old renditions can be found as stale."""
from __future__ import annotations

from dataclasses import dataclass

# Every format imagepipe reads or writes. HEIC is input only; AVIF is both (output behind a setting).
FORMAT_EXT = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif", "heic": "heic"}
FORMAT_MIME = {
    "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif", "heic": "image/heic",
}


@dataclass(frozen=True)
class RenditionSpec:
    name: str  # thumbnail | medium | large
    width: int  # target width in px; never upscaled
    format: str  # jpeg | png | webp | avif
    quality: int  # encoder quality (PNG: ignored, lossless)

    @property
    def ext(self) -> str:
        return FORMAT_EXT[self.format]

    @property
    def content_type(self) -> str:
        return FORMAT_MIME[self.format]

    def __str__(self) -> str:
        q = "" if self.format == "png" else f"_q{self.quality}"
        return f"{self.name}_w{self.width}{q}"

    @property
    def filename(self) -> str:
        return f"{self}.{self.ext}"


RENDITION_WIDTHS = {"thumbnail": 300, "medium": 800, "large": 1600}


@dataclass(frozen=True)
class EncoderSettings:
    """Encoder choices; docs/benchmarks.md has the measurements behind the defaults."""

    jpeg_quality: int = 82
    jpeg_progressive: tuple[str, ...] = ("large",)  # rendition names saved as progressive JPEG
    jpeg_subsample: str = "auto"  # libvips: "auto" = 4:2:0 below Q90, "on", "off" (4:4:4)
    jpeg_optimize_coding: bool = True  # optimised Huffman tables: ~2 % smaller, a second pass
    webp_quality: int = 80
    webp_effort: int = 4  # 0 (fastest) .. 6 (smallest)
    png_compression: int = 6  # zlib level 0 .. 9; lossless either way
    avif: bool = False  # also write an AVIF of each width
    avif_quality: int = 60
    avif_effort: int = 0  # 0 (fastest) .. 9 (smallest)


DEFAULT_ENCODER = EncoderSettings()


def specs_for(has_alpha: bool, enc: EncoderSettings = DEFAULT_ENCODER) -> list[RenditionSpec]:
    """Each width as JPEG (PNG when the source has real alpha) and WebP, plus AVIF when enabled,
    widest first so rendering can cascade from the largest."""
    fallback = "png" if has_alpha else "jpeg"
    fallback_q = 100 if has_alpha else enc.jpeg_quality
    out: list[RenditionSpec] = []
    for name, width in sorted(RENDITION_WIDTHS.items(), key=lambda kv: -kv[1]):
        out.append(RenditionSpec(name, width, fallback, fallback_q))
        out.append(RenditionSpec(name, width, "webp", enc.webp_quality))
        if enc.avif:
            out.append(RenditionSpec(name, width, "avif", enc.avif_quality))
    return out
