"""Renditions as data. A spec's string form is part of its storage key, so changing a spec
(width, quality, format) writes a new key and the old renditions can be found as stale."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .declare import setting
from .sniff import FORMAT_EXT, FORMAT_MIME

RenditionName = Literal["thumbnail", "medium", "large"]


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

    jpeg_quality: int = setting(82, "JPEG quality; part of each rendition's key (medium_w800_q82.jpg)", lo=1, hi=100)
    jpeg_progressive: tuple[RenditionName, ...] = setting(
        ("large",), "comma-separated rendition names saved as progressive JPEG (none for none)")
    jpeg_subsample: Literal["auto", "on", "off"] = setting(
        "auto", "chroma subsampling: auto (4:2:0 below q90), on, off (4:4:4)")
    jpeg_optimize_coding: bool = setting(
        True, "optimised Huffman tables: about 2 % smaller JPEGs for a second pass over the coefficients")
    jpeg_encoder: Literal["pillow", "libvips"] = setting(
        "pillow", "which build of libjpeg-turbo writes JPEG renditions: Pillow's (faster here, the same pixels) or"
        " libvips' (pipeline/encoders.py, docs/benchmarks.md)")
    webp_encoder: Literal["pillow", "libvips"] = setting(
        "pillow", "which build of libwebp writes WebP renditions: Pillow's (faster here, the same bytes) or libvips'")
    webp_quality: int = setting(80, "WebP quality; part of each rendition's key (medium_w800_q80.webp)", lo=1, hi=100)
    webp_effort: int = setting(4, "0 (fastest) ... 6 (smallest); the biggest single CPU cost of a photo", lo=0, hi=6)
    png_compression: int = setting(
        6, "zlib level of PNG renditions (sources with real alpha); lossless at every level, higher is smaller"
        " and slower", lo=0, hi=9)
    avif_enabled: bool = setting(
        False, "also write an AVIF of each width (three more renditions; at effort 0 about 0.7x the CPU of WebP"
        " effort 4, at effort 2 about 5x)")
    avif_quality: int = setting(60, "AVIF quality", lo=1, hi=100)
    avif_effort: int = setting(0, "AVIF effort, 0 (fastest) ... 9 (smallest)", lo=0, hi=9)


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
        if enc.avif_enabled:
            out.append(RenditionSpec(name, width, "avif", enc.avif_quality))
    return out
