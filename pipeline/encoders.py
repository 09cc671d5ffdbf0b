"""Which build of each encoder writes a rendition, chosen by measurement (docs/benchmarks.md,
bench/encoder_libs.py prints both builds side by side).

pyvips-binary and Pillow's wheels carry the same encoders — libjpeg-turbo, libwebp — built
differently, and Pillow's ran faster here for the same output: WebP is byte-identical, JPEG is
pixel-identical (the bytes differ only in the JFIF header, a few bytes). So JPEG and WebP go
through Pillow by default (`JPEG_ENCODER`, `WEBP_ENCODER` switch back to libvips), PNG and AVIF
stay with libvips (the only AVIF encoder here; PNG measured no faster in Pillow). Either way the
encoder is told to keep no metadata: Pillow writes none unless given it, libvips gets
`keep="none"`. The tests hold both builds to the same pixels and sizes (tests/pipeline).
"""

from __future__ import annotations

import io

import pyvips

from .specs import EncoderSettings, RenditionSpec


class PillowImages:
    """Each sized image handed to Pillow once, whatever the number of formats encoded from it
    (about 1.5 ms for 1600 px: one copy of the pixels)."""

    def __init__(self):
        self._images: dict[int, tuple[pyvips.Image, object]] = {}

    def get(self, img: pyvips.Image):
        held = self._images.get(id(img))
        if held is None or held[0] is not img:
            from PIL import Image

            mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(img.bands)
            if mode is None or img.format != "uchar":
                raise ValueError(f"cannot hand a {img.bands}-band {img.format} image to Pillow")
            held = (img, Image.frombuffer(mode, (img.width, img.height), img.write_to_memory(), "raw", mode, 0, 1))
            self._images[id(img)] = held
        return held[1]


def _jpeg_subsampling(enc: EncoderSettings, quality: int) -> int:
    """libvips' subsample_mode in Pillow's terms (2: 4:2:0, 0: 4:4:4)."""
    if enc.jpeg_subsample == "on":
        return 2
    if enc.jpeg_subsample == "off":
        return 0
    return 2 if quality < 90 else 0  # "auto", as libvips decides it


def _pillow_bytes(image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def encode(img: pyvips.Image, spec: RenditionSpec, enc: EncoderSettings, pillow: PillowImages | None = None) -> bytes:
    """One rendition's bytes, by the build its format is set to."""
    progressive = spec.name in enc.jpeg_progressive
    if spec.format == "jpeg" and enc.jpeg_encoder == "pillow":
        return _pillow_bytes(
            (pillow or PillowImages()).get(img),
            "JPEG",
            quality=spec.quality,
            optimize=enc.jpeg_optimize_coding,
            progressive=progressive,
            subsampling=_jpeg_subsampling(enc, spec.quality),
        )
    if spec.format == "webp" and enc.webp_encoder == "pillow":
        return _pillow_bytes((pillow or PillowImages()).get(img), "WEBP", quality=spec.quality, method=enc.webp_effort)
    if spec.format == "jpeg":
        return img.jpegsave_buffer(
            Q=spec.quality,
            optimize_coding=enc.jpeg_optimize_coding,
            interlace=progressive,
            subsample_mode=enc.jpeg_subsample,
            keep="none",
        )
    if spec.format == "webp":
        return img.webpsave_buffer(Q=spec.quality, effort=enc.webp_effort, keep="none")
    if spec.format == "png":
        return img.pngsave_buffer(compression=enc.png_compression, keep="none")
    if spec.format == "avif":
        return img.heifsave_buffer(compression="av1", Q=spec.quality, effort=enc.avif_effort, keep="none")
    raise ValueError(f"unknown format {spec.format}")
