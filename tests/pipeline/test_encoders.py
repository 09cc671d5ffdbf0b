"""Pillow's builds of libjpeg-turbo and libwebp write what libvips' would: WebP byte for byte,
JPEG pixel for pixel (only the JFIF header differs, a few bytes), for colour, grey, alpha,
progressive and 4:4:4 renditions alike. So choosing the faster build (pipeline/encoders.py)
changes nothing anyone can see."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline import encoders
from pipeline.specs import DEFAULT_ENCODER, RenditionSpec
from tests.conftest import corpus

pyvips = pytest.importorskip("pyvips")

PILLOW = dataclasses.replace(DEFAULT_ENCODER, jpeg_encoder="pillow", webp_encoder="pillow")
LIBVIPS = dataclasses.replace(DEFAULT_ENCODER, jpeg_encoder="libvips", webp_encoder="libvips")


def _images() -> dict[str, pyvips.Image]:
    photo = pyvips.Image.new_from_file(str(corpus("photos", "olympus-ep3_4032x3024.jpg")), shrink=2)
    colour = photo.thumbnail_image(1600).copy_memory()
    alpha = pyvips.Image.new_from_file(str(corpus("photos", "paper_alpha_2048x1536.png"))).thumbnail_image(800)
    grey = colour.thumbnail_image(300).colourspace("b-w").copy_memory()
    return {
        "colour": colour,
        "alpha": alpha.copy_memory(),
        "grey": grey,
        "grey+alpha": grey.bandjoin(grey.linear(0.5, 40).cast("uchar")).copy_memory(),
    }


IMAGES = _images()


def _pixels_equal(a: bytes, b: bytes) -> bool:
    da, db = pyvips.Image.new_from_buffer(a, ""), pyvips.Image.new_from_buffer(b, "")
    return (da.width, da.height, da.bands) == (db.width, db.height, db.bands) and (da - db).abs().max() == 0


@pytest.mark.parametrize("name", ["colour", "alpha", "grey", "grey+alpha"])
@pytest.mark.parametrize("quality,effort", [(80, 4), (60, 2)])
def test_webp_from_pillow_is_byte_identical(name, quality, effort):
    spec = RenditionSpec("medium", 800, "webp", quality)
    pillow = encoders.encode(IMAGES[name], spec, dataclasses.replace(PILLOW, webp_effort=effort))
    libvips = encoders.encode(IMAGES[name], spec, dataclasses.replace(LIBVIPS, webp_effort=effort))
    assert pillow == libvips


@pytest.mark.parametrize("name", ["colour", "grey"])
@pytest.mark.parametrize(
    "rendition,quality,subsample",
    [
        ("medium", 82, "auto"),  # 4:2:0, baseline
        ("large", 82, "auto"),  # progressive (JPEG_PROGRESSIVE=large)
        ("medium", 92, "auto"),  # q >= 90: 4:4:4, as libvips decides
        ("thumbnail", 75, "off"),
        ("thumbnail", 95, "on"),
    ],
)
def test_jpeg_from_pillow_has_the_same_pixels_and_size(name, rendition, quality, subsample):
    spec = RenditionSpec(rendition, 800, "jpeg", quality)
    pillow = encoders.encode(IMAGES[name], spec, dataclasses.replace(PILLOW, jpeg_subsample=subsample))
    libvips = encoders.encode(IMAGES[name], spec, dataclasses.replace(LIBVIPS, jpeg_subsample=subsample))
    assert _pixels_equal(pillow, libvips)
    assert abs(len(pillow) - len(libvips)) <= max(64, len(libvips) // 100)  # the JFIF header, no more
    assert (b"\xff\xc2" in pillow) == (b"\xff\xc2" in libvips) == (rendition == "large")  # progressive SOF2


def test_pillow_writes_no_metadata():
    spec = RenditionSpec("medium", 800, "jpeg", 82)
    out = encoders.encode(IMAGES["colour"], spec, PILLOW)
    img = pyvips.Image.new_from_buffer(out, "")
    assert not [f for f in img.get_fields() if f.startswith(("exif", "xmp", "iptc", "icc"))]
    webp = pyvips.Image.new_from_buffer(encoders.encode(IMAGES["colour"], RenditionSpec("medium", 800, "webp", 80), PILLOW), "")
    assert not [f for f in webp.get_fields() if f.startswith(("exif", "xmp", "iptc", "icc"))]


def test_a_whole_render_is_the_same_with_either_build():
    from pipeline.probe import probe
    from pipeline.render import render

    data = corpus("photos", "canon-sx60_orient6_2048x1536.jpg").read_bytes()
    info = probe(data)
    a, b = render(data, info, PILLOW), render(data, info, LIBVIPS)
    assert [r.spec for r in a.renditions] == [r.spec for r in b.renditions]
    for x, y in zip(a.renditions, b.renditions, strict=True):
        assert (x.width, x.height) == (y.width, y.height)
        if x.spec.format == "webp":
            assert x.data == y.data
        else:
            assert _pixels_equal(x.data, y.data)
    assert a.placeholders == b.placeholders
