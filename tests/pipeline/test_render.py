"""pipeline/ on real corpus files: what a user checks in the rendition files themselves."""
from __future__ import annotations

import pytest
import pyvips

from pipeline.errors import CorruptImage, FileTooLarge, ImageTooLarge, ImageTooSmall, UnsupportedMediaType
from pipeline.probe import ImageLimits, probe, sniff
from pipeline.render import render
from pipeline.specs import RenditionSpec, specs_for
from tests.conftest import corpus
from tests.support.containers import metadata_blocks


def _load(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def test_photo_renders_six_renditions_at_the_right_widths():
    data = corpus("photos", "olympus-ep3_4032x3024.jpg").read_bytes()
    info = probe(data)
    assert (info.format, info.width, info.height) == ("jpeg", 4032, 3024)
    result = render(data, info)
    got = {(r.spec.name, r.spec.format): (r.width, r.height) for r in result.renditions}
    assert got == {
        ("large", "jpeg"): (1600, 1200), ("large", "webp"): (1600, 1200),
        ("medium", "jpeg"): (800, 600), ("medium", "webp"): (800, 600),
        ("thumbnail", "jpeg"): (300, 225), ("thumbnail", "webp"): (300, 225),
    }
    for r in result.renditions:
        img = _load(r.data)
        assert (img.width, img.height) == (r.width, r.height)
        assert img.get("vips-loader") == {"jpeg": "jpegload_buffer", "webp": "webpload_buffer"}[r.spec.format]


def test_small_image_is_never_upscaled():
    data = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    result = render(data, probe(data))
    widths = {r.spec.name: r.width for r in result.renditions}
    assert widths == {"large": 640, "medium": 640, "thumbnail": 300}


@pytest.mark.parametrize("name", ["canon-sx60_orient6_2048x1536.jpg", "waterfall_progressive_orient6_308x231.jpg"])
def test_exif_orientation_6_comes_out_upright(name):
    data = corpus("photos", name).read_bytes()
    info = probe(data)
    assert info.orientation == 6
    assert info.height > info.width  # stored landscape, displayed portrait
    for r in render(data, info).renditions:
        img = _load(r.data)
        assert img.height > img.width, r.spec
        assert not img.get_typeof("orientation") or img.get("orientation") == 1


@pytest.mark.parametrize("name", ["nikon-p6000_small_640x480.jpg", "canon-sx60_orient6_2048x1536.jpg",
                                  "iphone6_3264x2448.jpg"])
def test_no_rendition_keeps_exif_xmp_or_gps(name):
    data = corpus("photos", name).read_bytes()
    source_fields = pyvips.Image.new_from_buffer(data, "").get_fields()
    assert any("GPS" in f for f in source_fields), "fixture should carry GPS"
    assert "exif" in metadata_blocks(data)
    for r in render(data, probe(data)).renditions:
        fields = _load(r.data).get_fields()
        assert not [f for f in fields if f.startswith(("exif", "xmp", "iptc"))], (r.spec, fields)
        assert metadata_blocks(r.data) == [], r.spec


def test_real_alpha_gives_png_and_webp_with_alpha():
    data = corpus("photos", "paper_alpha_2048x1536.png").read_bytes()
    result = render(data, probe(data))
    assert result.has_alpha
    assert {r.spec.format for r in result.renditions} == {"png", "webp"}
    for r in result.renditions:
        assert _load(r.data).hasalpha()


def test_opaque_alpha_channel_gives_jpeg():
    data = corpus("photos", "bird_rgba-opaque_576x384.png").read_bytes()
    result = render(data, probe(data))
    assert not result.has_alpha
    assert {r.spec.format for r in result.renditions} == {"jpeg", "webp"}


def test_cmyk_jpeg_is_rendered_in_srgb():
    data = corpus("photos", "canon-300d_cmyk_500x333.jpg").read_bytes()
    for r in render(data, probe(data)).renditions:
        img = _load(r.data)
        assert img.interpretation == "srgb" and img.bands == 3


@pytest.mark.parametrize("name", ["libvips-truncated.jpg", "thumbor-BlueSquare_truncated.jpg",
                                  "pillow-truncated_jpeg.jpg", "pillow-broken_data_stream.png"])
def test_damaged_data_is_corrupt_not_papered_over(name):
    data = corpus("reject", name).read_bytes()
    with pytest.raises(CorruptImage):
        render(data, probe(data, ImageLimits(min_side_px=1)))


@pytest.mark.parametrize("name", ["libvips-logo.svg", "libvips-blankpage.pdf", "libvips-cogs.gif",
                                  "thumbor-1x1.psd", "pillow-reallybig.bmp", "thumbor-image_invalid.jpg"])
def test_formats_we_do_not_serve_are_refused_from_their_bytes(name):
    with pytest.raises(UnsupportedMediaType):
        probe(corpus("reject", name).read_bytes())


def test_pixel_bomb_is_refused_from_the_header():
    with pytest.raises(ImageTooLarge):
        probe(corpus("reject", "thumbor-16384x16384.png").read_bytes())


def test_limits_are_checked_before_decoding():
    data = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    with pytest.raises(FileTooLarge):
        probe(data, ImageLimits(max_bytes=len(data) - 1))
    with pytest.raises(ImageTooSmall):
        probe(data, ImageLimits(min_side_px=481))
    with pytest.raises(ImageTooLarge):
        probe(data, ImageLimits(max_side_px=639))


def test_sniff_reads_magic_bytes_only():
    assert sniff(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff(b"\x89PNG\r\n\x1a\n") == "png"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff(b"GIF89a") is None
    assert sniff(b"<svg") is None


def test_spec_string_is_part_of_the_key_and_changes_with_the_spec():
    a = RenditionSpec("medium", 800, "webp", 80)
    b = RenditionSpec("medium", 800, "webp", 75)
    assert a.filename == "medium_w800_q80.webp"
    assert a.filename != b.filename
    assert [s.format for s in specs_for(True)] == ["png", "webp"] * 3
