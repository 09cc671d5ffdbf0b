"""Render every rendition from one decode.

The source is decoded once with shrink-on-load at the largest target width (JPEG and WebP
decode at a fraction of full size when they can), made upright and sRGB, then each smaller
width is resized from the previous one in memory. Encoders are told to keep no metadata, so
EXIF (GPS included), XMP and IPTC never reach a public file.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyvips

from .errors import CorruptImage
from .probe import ProbeResult, vips_reason
from .specs import DEFAULT_ENCODER, EncoderSettings, RenditionSpec, specs_for

VIPS_MAX_COORD = 10_000_000  # "unbounded" height: widths drive every rendition


@dataclass(frozen=True)
class Rendition:
    spec: RenditionSpec
    data: bytes
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return self.spec.content_type


@dataclass(frozen=True)
class RenderResult:
    has_alpha: bool
    renditions: list[Rendition]


def _to_display_space(img: pyvips.Image) -> pyvips.Image:
    """sRGB (or 8-bit greyscale), 8 bits per band."""
    interp = img.interpretation
    if interp in ("b-w", "grey16"):
        if img.format != "uchar":
            img = img.colourspace("b-w")
    elif interp != "srgb" or img.format != "uchar":
        img = img.colourspace("srgb")
    if img.format != "uchar":
        img = img.cast("uchar")
    return img


def _has_real_alpha(img: pyvips.Image) -> bool:
    return bool(img.hasalpha()) and img[img.bands - 1].min() < 255


def decode_for_renditions(data: bytes, probe: ProbeResult, max_width: int) -> pyvips.Image:
    target = min(max_width, probe.width)
    try:
        img = pyvips.Image.thumbnail_buffer(
            data, target, height=VIPS_MAX_COORD, size="down",
            option_string="fail_on=truncated",  # the loader must not paper over damage
        )
        img = _to_display_space(img)
        # Materialise once: every rendition below reads this buffer, not the file again.
        return img.copy_memory()
    except pyvips.Error as exc:
        raise CorruptImage(f"image data cannot be decoded: {vips_reason(exc)}") from exc


def _encode(img: pyvips.Image, spec: RenditionSpec, enc: EncoderSettings) -> bytes:
    if spec.format == "jpeg":
        return img.jpegsave_buffer(
            Q=spec.quality, optimize_coding=True, interlace=spec.name == "large", keep="none"
        )
    if spec.format == "webp":
        return img.webpsave_buffer(Q=spec.quality, effort=enc.webp_effort, keep="none")
    if spec.format == "png":
        return img.pngsave_buffer(compression=6, keep="none")
    raise ValueError(f"unknown format {spec.format}")


def render(data: bytes, probe: ProbeResult, enc: EncoderSettings = DEFAULT_ENCODER) -> RenderResult:
    provisional = specs_for(False, enc)
    source = decode_for_renditions(data, probe, max(s.width for s in provisional))
    has_alpha = _has_real_alpha(source)
    if source.hasalpha() and not has_alpha:
        source = source.extract_band(0, n=source.bands - 1)  # opaque alpha: JPEG, smaller files
    specs = specs_for(has_alpha, enc)

    out: list[Rendition] = []
    current = source
    sized: dict[int, pyvips.Image] = {}
    try:
        for spec in specs:  # widest first
            if spec.width not in sized:
                if current.width > spec.width:
                    current = current.thumbnail_image(spec.width, height=VIPS_MAX_COORD, size="down").copy_memory()
                sized[spec.width] = current
            img = sized[spec.width]
            out.append(Rendition(spec, _encode(img, spec, enc), img.width, img.height))
    except pyvips.Error as exc:
        raise CorruptImage(f"image data cannot be decoded: {vips_reason(exc)}") from exc
    return RenderResult(has_alpha=has_alpha, renditions=out)
