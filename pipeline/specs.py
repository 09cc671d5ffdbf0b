"""Renditions as data. A spec's string form is part of its storage key, so changing a spec
(width, quality, format) writes a new key and the old renditions can be found as stale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .declare import setting
from .sniff import FORMAT_EXT, FORMAT_MIME


@dataclass(frozen=True)
class RenditionSize:
    """One rendition size, declared once (Zulip's THUMBNAIL_OUTPUT_FORMATS is the model): its name
    (in keys, URLs, the API and the client), its width, the formats it is written in, and the
    images column older readers still take its URL from. Everything else derives from RENDITIONS."""

    name: str
    width: int  # target width in px; never upscaled
    # "fallback": JPEG, or PNG for a source with real alpha; "avif" only when AVIF_ENABLED
    formats: tuple[str, ...] = ("fallback", "webp", "avif")
    legacy_url_column: str | None = None  # images.<column>: the fallback rendition's URL
    reso_size: str | None = None  # RESO ImageSizeDescription in the RESO Media feed (the widest is also "Largest")
    # Fitted into width x box_height instead of scaled to the width, and padded (`pad`: the colour)
    # to exactly that aspect, never cropped: what an MLS's photo rules ask for.
    box_height: int | None = None
    pad: tuple[int, int, int] | None = None
    enabled_by: str | None = None  # an EncoderSettings flag that must be on for it to be written


# The renditions, smallest first. A new size is one line here.
RENDITIONS: tuple[RenditionSize, ...] = (
    RenditionSize("thumbnail", 300, legacy_url_column="thumbnail_url", reso_size="Thumbnail"),
    RenditionSize("medium", 800, legacy_url_column="medium_url", reso_size="Medium"),
    RenditionSize("large", 1600, legacy_url_column="large_url", reso_size="Large"),
    # For MLS syndication: 4:3, 2048x1536 at most, on white, JPEG (MLS_RENDITION or a compliance profile).
    RenditionSize("mls", 2048, formats=("jpeg",), box_height=1536, pad=(255, 255, 255), enabled_by="mls_rendition"),
)


def rendition_sizes() -> tuple[RenditionSize, ...]:
    """The declared sizes (read at call time, so a test may declare more)."""
    return RENDITIONS


def display_sizes() -> tuple[RenditionSize, ...]:
    """The sizes a page shows: scaled to a width (the boxed, padded ones are for syndication)."""
    return tuple(r for r in rendition_sizes() if r.box_height is None)


def rendition_size(name: str) -> RenditionSize | None:
    return next((r for r in rendition_sizes() if r.name == name), None)


if TYPE_CHECKING:
    RenditionName = str
else:  # the settings check rendition names against the declared ones (JPEG_PROGRESSIVE)
    RenditionName = Literal[tuple(r.name for r in RENDITIONS)]


@dataclass(frozen=True)
class RenditionSpec:
    name: str  # a RenditionSize's name
    width: int  # target width in px; never upscaled
    format: str  # jpeg | png | webp | avif
    quality: int  # encoder quality (PNG: ignored, lossless)
    box_height: int | None = None  # fitted into width x box_height, padded to that aspect (RenditionSize)
    pad: tuple[int, int, int] | None = None

    @property
    def ext(self) -> str:
        return FORMAT_EXT[self.format]

    @property
    def content_type(self) -> str:
        return FORMAT_MIME[self.format]

    def __str__(self) -> str:
        q = "" if self.format == "png" else f"_q{self.quality}"
        box = f"x{self.box_height}" if self.box_height else ""
        return f"{self.name}_w{self.width}{box}{q}"

    @property
    def filename(self) -> str:
        return f"{self}.{self.ext}"


RENDITION_WIDTHS = {r.name: r.width for r in RENDITIONS}  # for readers that want a mapping


@dataclass(frozen=True)
class EncoderSettings:
    """Encoder choices; docs/benchmarks.md has the measurements behind the defaults."""

    jpeg_quality: int = setting(82, "JPEG quality; part of each rendition's key (medium_w800_q82.jpg)", lo=1, hi=100)
    jpeg_progressive: tuple[RenditionName, ...] = setting(
        ("large",), "comma-separated rendition names saved as progressive JPEG (none for none)"
    )
    jpeg_subsample: Literal["auto", "on", "off"] = setting("auto", "chroma subsampling: auto (4:2:0 below q90), on, off (4:4:4)")
    jpeg_optimize_coding: bool = setting(
        True, "optimised Huffman tables: about 2 % smaller JPEGs for a second pass over the coefficients"
    )
    jpeg_encoder: Literal["pillow", "libvips"] = setting(
        "pillow",
        "which build of libjpeg-turbo writes JPEG renditions: Pillow's (faster here, the same pixels) or"
        " libvips' (pipeline/encoders.py, docs/benchmarks.md)",
    )
    webp_encoder: Literal["pillow", "libvips"] = setting(
        "pillow", "which build of libwebp writes WebP renditions: Pillow's (faster here, the same bytes) or libvips'"
    )
    webp_quality: int = setting(80, "WebP quality; part of each rendition's key (medium_w800_q80.webp)", lo=1, hi=100)
    webp_effort: int = setting(4, "0 (fastest) ... 6 (smallest); the biggest single CPU cost of a photo", lo=0, hi=6)
    png_compression: int = setting(
        6,
        "zlib level of PNG renditions (sources with real alpha); lossless at every level, higher is smaller and slower",
        lo=0,
        hi=9,
    )
    avif_enabled: bool = setting(
        False,
        "also write an AVIF of each width (three more renditions; at effort 0 about 0.7x the CPU of WebP"
        " effort 4, at effort 2 about 5x)",
    )
    avif_quality: int = setting(60, "AVIF quality", lo=1, hi=100)
    avif_effort: int = setting(0, "AVIF effort, 0 (fastest) ... 9 (smallest)", lo=0, hi=9)
    mls_rendition: bool = setting(
        False,
        "also write the `mls` rendition: fitted into 2048x1536 (4:3) on white without cropping, JPEG"
        " (on as well when COMPLIANCE_PROFILE asks for it; docs/syndication.md)",
    )


DEFAULT_ENCODER = EncoderSettings()


def specs_for(has_alpha: bool, enc: EncoderSettings = DEFAULT_ENCODER) -> list[RenditionSpec]:
    """Each declared size in its formats (JPEG, or PNG when the source has real alpha; WebP; AVIF
    when enabled), widest first so rendering can cascade from the largest."""
    fallback = "png" if has_alpha else "jpeg"
    quality = {"jpeg": enc.jpeg_quality, "png": 100, "webp": enc.webp_quality, "avif": enc.avif_quality}
    out: list[RenditionSpec] = []
    for size in sorted(rendition_sizes(), key=lambda r: -r.width):
        if size.enabled_by and not getattr(enc, size.enabled_by):
            continue
        for fmt in size.formats:
            fmt = fallback if fmt == "fallback" else fmt
            if fmt == "avif" and not enc.avif_enabled:
                continue
            out.append(RenditionSpec(size.name, size.width, fmt, quality[fmt], size.box_height, size.pad))
    return out
