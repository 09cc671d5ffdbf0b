"""Render every rendition from one decode.

The source is decoded once with shrink-on-load at the largest target width (JPEG and WebP
decode at a fraction of full size when they can), made upright and sRGB, then each smaller
width is resized from the previous one in memory. Encoders are told to keep no metadata, so
EXIF (GPS included), XMP, IPTC and ICC never reach a public file: pixels are converted to
sRGB first, which is what a browser assumes of an untagged image.

HEIC is the one input libvips cannot decode here (pyvips-binary has no HEVC decoder): pi-heif
(libheif + libde265) decodes it, with its container transforms applied, and hands the pixels
over. libvips has already read and checked its header in probe().
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy  # noqa: F401 - the perceptual hash's (pipeline/perceptual.py), loaded with the renderer: once, at start
import pyvips

from . import encoders
from .errors import CorruptImage
from .perceptual import PerceptualHash, pdq
from .placeholders import Placeholders, placeholders
from .probe import ProbeResult, apply_loader_policy, vips_reason
from .specs import DEFAULT_ENCODER, EncoderSettings, RenditionSpec, specs_for

# Widths drive every rendition; heights are bounded only by WebP, which cannot encode a side
# over 16 383 px: a taller picture (a long floor plan, an infographic) is fitted within that,
# narrower than its target width, the JPEG/PNG twin alike.
MAX_RENDITION_HEIGHT = 16_383
# Loaders must not paper over damage: a truncated JPEG would otherwise come out grey-bottomed
# and a PNG with a bad chunk CRC would decode whatever the bytes say.
LOAD_OPTIONS = "fail_on=error"


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
    placeholders: Placeholders
    pdq: PerceptualHash | None = None  # of the decoded, oriented image (pipeline/perceptual.py)
    # Seconds spent in each step (decode, resize, encode_<format>, placeholders): the worker
    # reports them as processing stages, the benchmark plots them.
    timings: dict[str, float] = field(default_factory=dict)


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


def _colour_options(probe: ProbeResult) -> dict:
    # An embedded profile that is not sRGB (Display P3, Adobe RGB, XYB, CMYK...) is applied
    # and the result exported as sRGB. Untagged and sRGB-tagged images skip the transform,
    # which would cost 3-6x the whole decode and change nothing.
    if probe.icc_profile is not None and "srgb" not in probe.icc_profile.lower():
        return {"export_profile": "srgb"}  # relative colorimetric, the default intent
    return {}


def _heic_image(data: bytes) -> pyvips.Image:
    import pi_heif  # imported on first HEIC only: it loads libheif

    heif = pi_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    bands = {"RGB": 3, "RGBA": 4}.get(heif.mode)
    if bands is None:
        raise CorruptImage(f"HEIC pixel mode {heif.mode} is not supported")
    width, height = heif.size
    rows = pyvips.Image.new_from_memory(heif.data, heif.stride, height, 1, "uchar")
    img = rows.crop(0, 0, width * bands, height).bandfold(factor=bands).copy_memory()
    img = img.copy(interpretation="srgb")
    profile = heif.info.get("icc_profile")
    if profile:
        img.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(profile))
    return img


def jpeg_shrink(display_width: int, target: int) -> int:
    """The largest DCT scale-down (1/2, 1/4, 1/8) that still decodes at least `target` wide.

    libvips' thumbnail keeps a factor of two for its own resize, so a 12 MP photo headed for
    1600 px is decoded at full size; decoding at 1/2 instead (what Pillow's draft mode does)
    saves a third of the decode-and-resize time for an SSIM loss of about 0.002 against a
    full-precision resize (docs/benchmarks.md), far below what the JPEG/WebP encode costs.
    """
    for shrink in (8, 4, 2):
        if display_width // shrink >= target:
            return shrink
    return 1


def fingerprint(data: bytes, probe: ProbeResult) -> PerceptualHash:
    """The perceptual hash of an encoded image, decoded as `render` decodes it (so the same file
    gets the same hash either way): for images processed before hashes were kept."""
    return pdq(decode_for_renditions(data, probe, max(s.width for s in specs_for(False, DEFAULT_ENCODER))))


def decode_for_renditions(data: bytes, probe: ProbeResult, max_width: int) -> pyvips.Image:
    apply_loader_policy()
    target = min(max_width, probe.width)
    options = _colour_options(probe)
    try:
        if probe.format == "heic":
            img = _heic_image(data).thumbnail_image(target, height=MAX_RENDITION_HEIGHT, size="down", **options)
        elif probe.format == "jpeg" and (shrink := jpeg_shrink(probe.width, target)) > 1:
            loaded = pyvips.Image.new_from_buffer(data, LOAD_OPTIONS, shrink=shrink, access="sequential")
            # thumbnail_image does the rest as thumbnail_buffer would: orientation, CMYK, profile.
            img = loaded.thumbnail_image(target, height=MAX_RENDITION_HEIGHT, size="down", **options)
        else:
            # Animated input: loaders read the first frame only (n=1 is the default).
            img = pyvips.Image.thumbnail_buffer(
                data, target, height=MAX_RENDITION_HEIGHT, size="down", option_string=LOAD_OPTIONS, **options
            )
        img = _to_display_space(img)
        # Materialise once: every rendition below reads this buffer, not the file again.
        return img.copy_memory()
    except pyvips.Error as exc:
        raise CorruptImage(f"image data cannot be decoded: {vips_reason(exc)}") from exc
    except (ValueError, RuntimeError, OSError) as exc:  # pi-heif reports damage this way
        raise CorruptImage(f"image data cannot be decoded: {exc}") from exc


def encode(img: pyvips.Image, spec: RenditionSpec, enc: EncoderSettings) -> bytes:
    """One rendition (kept for callers outside render(): the benchmarks)."""
    return encoders.encode(img, spec, enc)


def render(
    data: bytes,
    probe: ProbeResult,
    enc: EncoderSettings = DEFAULT_ENCODER,
    wanted: Callable[[RenditionSpec], bool] | None = None,
    on_rendition: Callable[[Rendition], None] | None = None,
    on_hash: Callable[[PerceptualHash], None] | None = None,
) -> RenderResult:
    """Every rendition of `specs_for` the image; `wanted`: only those it accepts (regenerating
    after a spec change renders what is missing, nothing else). `on_rendition` is handed each
    rendition as soon as it is encoded (the worker starts writing it while the next one is
    encoded); by then the image has decoded: only our own or an encoder's error can follow.
    `on_hash` is handed the image's perceptual hash once it has decoded, before any rendition is
    encoded: raising there (a blocked picture) stops the render with nothing written."""
    clock = _Clock()
    provisional = specs_for(False, enc)
    source = decode_for_renditions(data, probe, max(s.width for s in provisional))
    has_alpha = _has_real_alpha(source)
    if source.hasalpha() and not has_alpha:
        source = source.extract_band(0, n=source.bands - 1)  # opaque alpha: JPEG, smaller files
    clock.lap("decode")
    fingerprint = pdq(source)
    clock.lap("hash")
    if on_hash is not None:
        on_hash(fingerprint)
        clock.skip()
    specs = [spec for spec in specs_for(has_alpha, enc) if wanted is None or wanted(spec)]
    if not specs:
        return RenderResult(
            has_alpha=has_alpha, renditions=[], placeholders=placeholders(source), pdq=fingerprint, timings=clock.laps
        )

    # Every pixel is in memory now: an error from here on is ours or an encoder's, never the
    # upload's fault, so it is not reported as corrupt_image (the worker fails the image as a
    # processing_error and logs it).
    sized = cascade(source, [spec.width for spec in specs if not spec.box_height])
    boxed = {str(spec): boxed_rendition(source, spec) for spec in specs if spec.box_height}
    clock.lap("resize")
    pillow = encoders.PillowImages()  # each size handed to Pillow once, for its JPEG and its WebP
    out = []
    for spec in specs:
        img = boxed[str(spec)] if spec.box_height else sized[spec.width]
        out.append(Rendition(spec, encoders.encode(img, spec, enc, pillow), img.width, img.height))
        clock.lap(f"encode_{spec.format}")
        if on_rendition is not None:
            on_rendition(out[-1])
            clock.skip()  # the caller's time, not a step of the render
    marks = placeholders(sized[min(sized)] if sized else source)  # from the smallest size: cheap, whatever the upload
    clock.lap("placeholders")
    return RenderResult(has_alpha=has_alpha, renditions=out, placeholders=marks, pdq=fingerprint, timings=clock.laps)


class _Clock:
    """Seconds between successive laps, summed per name."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now

    def skip(self) -> None:
        self._last = time.perf_counter()


def boxed_rendition(source: pyvips.Image, spec: RenditionSpec) -> pyvips.Image:
    """Fitted into spec.width x spec.box_height (never upscaled, never cropped), flattened onto the
    pad colour, and padded, centred, to exactly the box's aspect."""
    assert spec.box_height is not None
    pad = list(spec.pad or (255, 255, 255))
    fitted = source.thumbnail_image(spec.width, height=spec.box_height, size="down")
    if fitted.hasalpha():
        fitted = fitted.flatten(background=pad)
    if fitted.bands == 1:
        fitted = fitted.colourspace("srgb")
    w, h = fitted.width, fitted.height
    if w * spec.box_height >= h * spec.width:  # wider than the box: pad above and below
        width, height = w, max(h, round(w * spec.box_height / spec.width))
    else:
        width, height = max(w, round(h * spec.width / spec.box_height)), h
    return fitted.embed((width - w) // 2, (height - h) // 2, width, height, extend="background", background=pad).copy_memory()


def cascade(source: pyvips.Image, widths: list[int]) -> dict[int, pyvips.Image]:
    """Each width (widest first) resized in memory from the one before it; never upscaled."""
    sized: dict[int, pyvips.Image] = {}
    current = source
    for width in widths:
        if width not in sized:
            if current.width > width:
                current = current.thumbnail_image(width, height=MAX_RENDITION_HEIGHT, size="down").copy_memory()
            sized[width] = current
    return sized
