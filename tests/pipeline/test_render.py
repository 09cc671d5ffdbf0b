"""pipeline/ on real corpus files: what a user checks in the rendition files themselves."""

from __future__ import annotations

import pytest
import pyvips

from pipeline.errors import (
    CorruptImage,
    FileTooLarge,
    ImageTooComplex,
    ImageTooLarge,
    ImageTooSmall,
    UnsupportedMediaType,
)
from pipeline.jpeg import jpeg_layout
from pipeline.limits import ImageLimits
from pipeline.probe import probe
from pipeline.render import render
from pipeline.sniff import sniff
from pipeline.specs import EncoderSettings, RenditionSpec, specs_for
from tests.conftest import corpus
from tests.support.containers import metadata_blocks
from tests.support.jpeg_bombs import scan_bomb


def _load(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def test_photo_renders_six_renditions_at_the_right_widths():
    data = corpus("photos", "olympus-ep3_4032x3024.jpg").read_bytes()
    info = probe(data)
    assert (info.format, info.width, info.height) == ("jpeg", 4032, 3024)
    result = render(data, info)
    got = {(r.spec.name, r.spec.format): (r.width, r.height) for r in result.renditions}
    assert got == {
        ("large", "jpeg"): (1600, 1200),
        ("large", "webp"): (1600, 1200),
        ("medium", "jpeg"): (800, 600),
        ("medium", "webp"): (800, 600),
        ("thumbnail", "jpeg"): (300, 225),
        ("thumbnail", "webp"): (300, 225),
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


@pytest.mark.parametrize("width,height", [(1000, 20_000), (300, 17_000)])
def test_very_tall_pictures_fit_webp_and_keep_their_aspect(width, height):
    # A long floor plan or an infographic: valid, within MAX_SIDE_PX, taller than WebP allows.
    img = (pyvips.Image.black(width, height) + [120, 60, 30]).cast("uchar").copy(interpretation="srgb")
    data = img.draw_rect([250, 250, 250], 0, 0, width, height // 2, fill=True).jpegsave_buffer()
    result = render(data, probe(data))
    assert len(result.renditions) == 6
    by_name: dict[str, set] = {}
    for r in result.renditions:
        out = _load(r.data)
        assert (out.width, out.height) == (r.width, r.height)
        assert r.height <= 16_383 and r.width <= r.spec.width
        assert abs(r.width / r.height - width / height) < 0.002  # aspect kept
        by_name.setdefault(r.spec.name, set()).add((r.width, r.height))
    assert all(len(sizes) == 1 for sizes in by_name.values())  # JPEG and WebP twins match
    assert max(h for sizes in by_name.values() for _, h in sizes) == 16_383


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


@pytest.mark.parametrize("name", ["nikon-p6000_small_640x480.jpg", "canon-sx60_orient6_2048x1536.jpg", "iphone6_3264x2448.jpg"])
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


@pytest.mark.parametrize(
    "name",
    ["libvips-truncated.jpg", "thumbor-BlueSquare_truncated.jpg", "pillow-truncated_jpeg.jpg", "pillow-broken_data_stream.png"],
)
def test_damaged_data_is_corrupt_not_papered_over(name):
    data = corpus("reject", name).read_bytes()
    with pytest.raises(CorruptImage):
        render(data, probe(data, ImageLimits(min_side_px=1)))


@pytest.mark.parametrize(
    "name",
    [
        "libvips-logo.svg",
        "libvips-blankpage.pdf",
        "libvips-cogs.gif",
        "thumbor-1x1.psd",
        "pillow-reallybig.bmp",
        "thumbor-image_invalid.jpg",
    ],
)
def test_formats_we_do_not_serve_are_refused_from_their_bytes(name):
    with pytest.raises(UnsupportedMediaType):
        probe(corpus("reject", name).read_bytes())


def test_pixel_bomb_is_refused_from_the_header():
    with pytest.raises(ImageTooLarge):
        probe(corpus("reject", "thumbor-16384x16384.png").read_bytes())


def test_limits_are_checked_before_decoding():
    data = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    with pytest.raises(FileTooLarge):
        probe(data, ImageLimits(max_upload_bytes=len(data) - 1))
    with pytest.raises(ImageTooSmall):
        probe(data, ImageLimits(min_side_px=481))
    with pytest.raises(ImageTooLarge):
        probe(data, ImageLimits(max_side_px=639))


def test_jpeg_layout_is_read_from_the_structure():
    photo = corpus("photos", "iphone6_3264x2448.jpg").read_bytes()  # carries an EXIF thumbnail
    assert jpeg_layout(photo).scans == 1  # the thumbnail's own scan inside APP1 is not counted
    img = pyvips.Image.new_from_buffer(photo, "")
    assert jpeg_layout(img.jpegsave_buffer(interlace=True)).scans == 10  # libjpeg's progression for YCbCr
    assert jpeg_layout(img.colourspace("b-w").jpegsave_buffer(interlace=True)).scans == 6
    assert jpeg_layout(img.jpegsave_buffer(restart_interval=2)).scans == 1  # RST markers are not segments
    assert jpeg_layout(corpus("photos", "waterfall_progressive_orient6_308x231.jpg").read_bytes()).scans == 10
    # Ultra HDR: the primary image and its gain map appended after the first EOI.
    assert jpeg_layout(corpus("accept", "libvips-ultra-hdr.jpg").read_bytes()).scans == 2
    assert jpeg_layout(scan_bomb(256, 256, 500)).scans == 500
    # What decoding will hold: progressive (or multi-scan) files buffer every coefficient.
    assert (jpeg_layout(photo).buffered, jpeg_layout(photo).samples_per_pixel) == (False, 1.5)  # 4:2:0
    progressive = jpeg_layout(img.jpegsave_buffer(interlace=True, Q=95))
    assert (progressive.buffered, progressive.samples_per_pixel) == (True, 3.0)  # 4:4:4 at Q >= 90
    assert jpeg_layout(corpus("photos", "canon-300d_cmyk_500x333.jpg").read_bytes()).samples_per_pixel == 4.0
    assert not jpeg_layout(corpus("accept", "libvips-ultra-hdr.jpg").read_bytes()).buffered  # two baseline images


def test_a_progressive_jpeg_scan_bomb_is_refused_before_decoding():
    # The bomb is a real JPEG: libvips decodes a small one without complaint.
    small = scan_bomb(64, 64, 150)
    assert pyvips.Image.new_from_buffer(small, "", fail_on="error").avg() == 128
    # 3 000 scans over 100 MP in 0.7 MB: about a minute of CPU for libjpeg. Never reaches it.
    bomb = scan_bomb(10_000, 10_000, 3000)
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ImageTooComplex) as err:
        probe(bomb)
    assert err.value.code == "image_too_complex" and err.value.http_status == 422
    assert "3000 scans" in err.value.message and "at most 100" in err.value.message
    # A hidden bomb appended after a real photo's EOI counts as well.
    photo = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    with pytest.raises(ImageTooComplex):
        probe(photo + scan_bomb(1024, 1024, 200))
    # The limit is a setting: a file within it is probed as usual.
    assert probe(small, ImageLimits(min_side_px=1, max_jpeg_scans=150)).format == "jpeg"
    with pytest.raises(ImageTooComplex):
        probe(small, ImageLimits(min_side_px=1, max_jpeg_scans=149))


def test_a_flood_of_empty_jpeg_segments_is_refused_without_walking_it_all():
    from pipeline.jpeg import MAX_JPEG_SEGMENTS

    photo = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    flood = photo[:2] + b"\xff\xfe\x00\x02" * 6_000_000 + photo[2:]  # 23 MB of empty comments
    assert len(flood) < ImageLimits().max_upload_bytes
    assert jpeg_layout(flood).segments == MAX_JPEG_SEGMENTS + 1  # the walk stopped there
    with pytest.raises(ImageTooComplex, match="segments"):
        probe(flood)
    # A photo with many (but a plausible number of) comment segments is fine.
    assert probe(photo[:2] + b"\xff\xfe\x00\x02" * 500 + photo[2:]).format == "jpeg"


def test_sniff_reads_magic_bytes_only():
    assert sniff(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff(b"\x89PNG\r\n\x1a\n") == "png"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf") == "avif"
    assert sniff(b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heicmiaf") == "heic"
    # A generic HEIF brand whose compatible brands say AVIF is an AVIF.
    assert sniff(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf") == "avif"
    assert sniff(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom") is None  # an MP4 video
    assert sniff(b"GIF89a") is None
    assert sniff(b"<svg") is None
    assert sniff(corpus("accept", "thumbor-image.heic").read_bytes()[:64]) == "heic"
    assert sniff(corpus("accept", "thumbor-image.avif").read_bytes()[:64]) == "avif"


def test_png_with_a_signature_damaged_in_transfer_is_corrupt_not_another_format():
    good = corpus("pngsuite", "basn0g01.png").read_bytes()
    text_mode = good[:4] + b"\r\r\x1a\r" + good[8:]  # CR/LF mangling, as a text-mode FTP does
    with pytest.raises(CorruptImage):
        probe(text_mode, ImageLimits(min_side_px=1))


def test_spec_string_is_part_of_the_key_and_changes_with_the_spec():
    a = RenditionSpec("medium", 800, "webp", 80)
    b = RenditionSpec("medium", 800, "webp", 75)
    assert a.filename == "medium_w800_q80.webp"
    assert a.filename != b.filename
    assert [s.format for s in specs_for(True)] == ["png", "webp"] * 3


# --- orientation ------------------------------------------------------------------------


def _quadrants(width: int = 120, height: int = 80) -> pyvips.Image:
    """A landscape image whose four quadrants have distinct colours: any flip or turn shows."""
    colours = [[220, 40, 40], [40, 200, 60], [40, 60, 220], [230, 220, 40]]  # TL, TR, BL, BR
    w2, h2 = width // 2, height // 2
    tiles = [(pyvips.Image.black(w2, h2) + c).cast("uchar") for c in colours]
    top = tiles[0].join(tiles[1], "horizontal")
    bottom = tiles[2].join(tiles[3], "horizontal")
    return top.join(bottom, "vertical").copy(interpretation="srgb")


# How each EXIF orientation is stored, given the upright picture: the inverse of what a
# viewer applies (2 mirror, 3 turn 180, 4 flip, 5 transpose, 6 turn 90 CW, 7 transverse, 8 turn 270 CW).
STORED = {
    1: lambda im: im,
    2: lambda im: im.fliphor(),
    3: lambda im: im.rot180(),
    4: lambda im: im.flipver(),
    5: lambda im: im.rot90().fliphor(),
    6: lambda im: im.rot270(),
    7: lambda im: im.rot270().fliphor(),
    8: lambda im: im.rot90(),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright_with_the_tag_removed(orientation):
    upright = _quadrants()
    stored = STORED[orientation](upright).copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    data = stored.jpegsave_buffer(Q=95, keep="exif")
    info = probe(data, ImageLimits(min_side_px=1))
    assert (info.orientation, info.width, info.height) == (orientation, 120, 80)
    for r in render(data, info).renditions:
        img = _load(r.data)
        assert (img.width, img.height) == (120, 80), r.spec
        for x, y in ((10, 10), (70, 10), (10, 50), (70, 50)):  # inside each quadrant, off the edges
            diff = (img.crop(x, y, 40, 20) - upright.crop(x, y, 40, 20)).abs().avg()
            assert diff < 12, f"orientation {orientation}: {r.spec} is not upright"
        assert not img.get_typeof("orientation") and metadata_blocks(r.data) == []


def test_corpus_orientations_in_jpeg_and_webp_all_render_the_same_upright_picture():
    rendered = {}
    for ext in ("jpg", "webp"):
        for n in range(2, 9):
            data = corpus("accept", f"pillow-hopper_orientation_{n}.{ext}").read_bytes()
            info = probe(data)
            assert info.orientation == n
            rendered[(ext, n)] = _load(render(data, info).renditions[0].data)
    first = rendered[("jpg", 2)]
    for key, img in rendered.items():
        # Same picture up to compression noise; a wrong turn or mirror differs by ~60 on average.
        assert (img - first).abs().avg() < 10, key


# --- colour -----------------------------------------------------------------------------

PATCHES = [[200, 60, 40], [40, 160, 90], [90, 110, 150], [128, 128, 128]]  # inside P3's and CMYK's gamut


def _patches() -> pyvips.Image:
    tiles = [(pyvips.Image.black(64, 64) + c).cast("uchar") for c in PATCHES]
    return (
        tiles[0]
        .join(tiles[1], "horizontal")
        .join(tiles[2], "horizontal")
        .join(tiles[3], "horizontal")
        .copy(interpretation="srgb")
    )


@pytest.mark.parametrize("profile,tolerance", [("p3", 4), ("cmyk", 10)])  # CMYK greys drift a little
def test_embedded_profile_is_converted_to_srgb(profile, tolerance):
    # Pixels in that space with its profile embedded, as a camera, phone or print shop writes them.
    tagged = _patches().icc_transform(profile, input_profile="srgb")
    data = tagged.jpegsave_buffer(Q=98, keep="icc")
    device = pyvips.Image.new_from_buffer(data, "")
    assert device.get_typeof("icc-profile-data")
    for r in render(data, probe(data)).renditions:
        img = _load(r.data)
        assert img.interpretation == "srgb" and img.bands == 3 and "icc" not in metadata_blocks(r.data)
        for n, want in enumerate(PATCHES):
            got = img.crop(n * img.width // 4 + 4, 4, img.width // 4 - 8, img.height - 8).stats()
            mean = [got(4, 1 + b)[0] for b in range(3)]
            assert max(abs(m - w) for m, w in zip(mean, want, strict=True)) <= tolerance, (profile, r.spec, mean, want)


def test_p3_pixels_without_conversion_would_be_visibly_wrong():
    # The check above can fail: P3 numbers read as sRGB are far off the original colours.
    device = pyvips.Image.new_from_buffer(_patches().icc_transform("p3", input_profile="srgb").jpegsave_buffer(Q=98), "")
    red = device.crop(4, 4, 56, 56).stats()
    assert abs(red(4, 1)[0] - PATCHES[0][0]) + abs(red(4, 2)[0] - PATCHES[0][1]) > 15


def test_xyb_jpeg_looks_like_its_plain_png_twin():
    # libvips' sample XYB JPEG and indexed PNG are the same picture; XYB pixels are only right
    # through their embedded profile.
    xyb = corpus("accept", "libvips-sample-xyb.jpg").read_bytes()
    png = corpus("accept", "libvips-indexed.png").read_bytes()
    a = _load(render(xyb, probe(xyb)).renditions[0].data)
    b = _load(render(png, probe(png)).renditions[0].data)
    assert (a.width, a.height) == (b.width, b.height)
    assert (a - b).abs().avg() < 12
    raw = pyvips.Image.new_from_buffer(xyb, "").colourspace("srgb")
    assert (raw - b).abs().avg() > 3 * (a - b).abs().avg()


def test_sixteen_bit_png_becomes_eight_bit():
    data = corpus("pngsuite", "basn2c16.png").read_bytes()
    assert pyvips.Image.new_from_buffer(data, "").format == "ushort"
    for r in render(data, probe(data, ImageLimits(min_side_px=1))).renditions:
        assert _load(r.data).format == "uchar"


# --- HEIC, AVIF and animation -------------------------------------------------------------


def test_heic_is_decoded_with_pi_heif_although_libvips_cannot():
    data = corpus("accept", "thumbor-image.heic").read_bytes()
    with pytest.raises(pyvips.Error, match="HEVC"):
        pyvips.Image.new_from_buffer(data, "").avg()  # the reason pi-heif is here
    info = probe(data)
    assert (info.format, info.mime_type, info.width, info.height) == ("heic", "image/heic", 256, 256)
    result = render(data, info)
    img = _load(result.renditions[0].data)
    assert (img.width, img.height, img.bands) == (256, 256, 3)
    assert img.deviate() > 20  # a picture, not a blank
    assert result.placeholders.dominant_color != "#000000"


def test_avif_loads_natively_and_looks_like_its_webp_twin():
    avif = corpus("accept", "thumbor-image.avif").read_bytes()
    webp = corpus("accept", "thumbor-image.webp").read_bytes()
    info = probe(avif)
    assert (info.format, info.mime_type, info.extension) == ("avif", "image/avif", "avif")
    a = _load(render(avif, info).renditions[0].data)
    b = _load(render(webp, probe(webp)).renditions[0].data)
    assert (a.width, a.height) == (b.width, b.height) == (300, 400)
    assert (a - b).abs().avg() < 8


def _animated_webp(colours: list[list[int]], width: int = 100, height: int = 80) -> bytes:
    frames = [(pyvips.Image.black(width, height) + c).cast("uchar") for c in colours]
    strip = pyvips.Image.arrayjoin(frames, across=1).copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [100] * len(colours))
    return strip.webpsave_buffer(Q=90)


def test_animated_webp_renders_its_first_frame():
    data = _animated_webp([[200, 30, 30], [30, 200, 30], [30, 30, 200]])
    info = probe(data)
    assert (info.pages, info.animated, info.width, info.height) == (3, True, 100, 80)
    for r in render(data, info).renditions:
        img = _load(r.data)
        assert (img.width, img.height) == (100, 80)
        assert img.get_typeof("n-pages") == 0 or img.get("n-pages") == 1  # a still image
        r_, g_, b_ = (img.stats()(4, 1 + band)[0] for band in range(3))
        assert r_ > 150 and g_ < 80 and b_ < 80, r.spec


def test_avif_output_is_available_behind_a_setting():
    data = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    result = render(data, probe(data), EncoderSettings(avif_enabled=True, avif_effort=0))
    avifs = [r for r in result.renditions if r.spec.format == "avif"]
    assert [(r.spec.name, r.width) for r in avifs] == [("large", 640), ("medium", 640), ("thumbnail", 300)]
    for r in avifs:
        img = _load(r.data)
        assert img.get("vips-loader") == "heifload_buffer" and img.get("heif-compression") == "av1"
        assert (img.width, img.height) == (r.width, r.height)
        assert not [f for f in img.get_fields() if f.startswith(("exif", "xmp"))]
        assert r.spec.filename.endswith(".avif") and r.content_type == "image/avif"
    assert len(render(data, probe(data)).renditions) == 6  # off by default


# --- encoder settings -------------------------------------------------------------------


def _jpeg_sof(data: bytes) -> int:
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xC2:
            return marker
        i += 2 + length
    raise AssertionError("no SOF marker")


def test_only_large_is_progressive_by_default_and_settings_change_it():
    data = corpus("photos", "olympus-ep3_4032x3024.jpg").read_bytes()
    info = probe(data)
    sof = {r.spec.name: _jpeg_sof(r.data) for r in render(data, info).renditions if r.spec.format == "jpeg"}
    assert sof == {"large": 0xC2, "medium": 0xC0, "thumbnail": 0xC0}  # progressive / baseline
    enc = EncoderSettings(jpeg_progressive=(), jpeg_subsample="off")
    jpegs = [r for r in render(data, info, enc).renditions if r.spec.format == "jpeg"]
    assert {_jpeg_sof(r.data) for r in jpegs} == {0xC0}
    assert {_load(r.data).get("jpeg-chroma-subsample") for r in jpegs} == {"4:4:4"}


# JPEG Annex K's standard luminance DC table: its 16 code-length counts. An encoder that does
# not optimise Huffman coding writes exactly these; an optimised one writes the image's own.
_ANNEX_K_LUMA_DC_BITS = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])


def _luma_dc_bits(data: bytes) -> bytes:
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xC4:  # DHT: one or more (class/id, 16 counts, symbols) tables
            j = i + 4
            while j < i + 2 + length:
                table, bits = data[j], data[j + 1 : j + 17]
                if table == 0x00:  # DC, table 0
                    return bytes(bits)
                j += 17 + sum(bits)
        i += 2 + length
    raise AssertionError("no luminance DC Huffman table")


def test_huffman_optimisation_is_a_setting():
    data = corpus("photos", "flickr-saw_2725x2225.jpg").read_bytes()
    info = probe(data)
    plain = EncoderSettings(jpeg_progressive=(), jpeg_optimize_coding=False)
    tuned = EncoderSettings(jpeg_progressive=())
    standard = {r.spec.name: r.data for r in render(data, info, plain).renditions if r.spec.format == "jpeg"}
    optimised = {r.spec.name: r.data for r in render(data, info, tuned).renditions if r.spec.format == "jpeg"}
    for name in ("large", "medium", "thumbnail"):
        assert _luma_dc_bits(standard[name]) == _ANNEX_K_LUMA_DC_BITS
        assert _luma_dc_bits(optimised[name]) != _ANNEX_K_LUMA_DC_BITS
        assert len(optimised[name]) < len(standard[name])
        # Lossless step: the same pixels either way.
        assert _load(standard[name]).avg() == _load(optimised[name]).avg()


def test_png_compression_is_a_setting_and_lossless():
    data = corpus("photos", "paper_alpha_2048x1536.png").read_bytes()
    info = probe(data)
    fast = {
        r.spec.name: r.data for r in render(data, info, EncoderSettings(png_compression=1)).renditions if r.spec.format == "png"
    }
    small = {
        r.spec.name: r.data for r in render(data, info, EncoderSettings(png_compression=9)).renditions if r.spec.format == "png"
    }
    assert set(fast) == {"large", "medium", "thumbnail"}
    for name in fast:
        assert len(small[name]) < len(fast[name])
        a, b = _load(fast[name]), _load(small[name])
        assert a.bands == 4 and (a - b).abs().max() == 0


def test_an_encoder_failure_is_not_blamed_on_the_upload():
    # Every pixel is decoded before the first encode; what fails after that is not the file's
    # fault and must not come back as corrupt_image (the worker reports processing_error).
    data = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    with pytest.raises(pyvips.Error) as err:  # libvips' jpegsave refuses it
        render(data, probe(data), EncoderSettings(jpeg_encoder="libvips", jpeg_subsample="bogus"))
    assert "bogus" in str(err.value)
    assert not isinstance(err.value, CorruptImage)
    with pytest.raises(ValueError) as err:  # Pillow's libwebp refuses an effort out of range
        render(data, probe(data), EncoderSettings(webp_encoder="pillow", webp_effort=99))
    assert not isinstance(err.value, CorruptImage)


# --- placeholders and capture metadata ----------------------------------------------------


@pytest.mark.parametrize("name", ["flickr-saw_2725x2225.jpg", "tree_1024x772.webp", "canon-300d_cmyk_500x333.jpg"])
def test_blurhash_matches_the_reference_encoder(name):
    import blurhash as reference

    from pipeline.placeholders import blurhash_encode

    img = pyvips.Image.thumbnail_buffer(corpus("photos", name).read_bytes(), 32, height=32).colourspace("srgb")
    rgb = bytes(img.write_to_memory())
    rows = [
        [list(rgb[(y * img.width + x) * 3 : (y * img.width + x) * 3 + 3]) for x in range(img.width)] for y in range(img.height)
    ]
    assert blurhash_encode(rgb, img.width, img.height, 4, 3) == reference.encode(rows, 4, 3)


def test_placeholders_describe_the_picture():
    from pipeline.placeholders import placeholders

    # Mostly teal with a red corner: teal dominates.
    base = (pyvips.Image.black(200, 100) + [20, 128, 128]).cast("uchar")
    img = base.insert((pyvips.Image.black(50, 50) + [220, 20, 20]).cast("uchar"), 0, 0).copy(interpretation="srgb")
    p = placeholders(img)
    assert p.dominant_color == "#148080"
    assert len(p.blurhash) == 28  # 4 x 3 components for a landscape picture
    # Transparent pixels do not count: a mostly transparent red image is red.
    alpha = (pyvips.Image.black(100, 100) + 0).cast("uchar").insert((pyvips.Image.black(20, 20) + 255).cast("uchar"), 0, 0)
    rgba = (
        (pyvips.Image.black(100, 100) + [0, 0, 255])
        .cast("uchar")
        .insert((pyvips.Image.black(20, 20) + [255, 0, 0]).cast("uchar"), 0, 0)
        .bandjoin(alpha)
        .copy(interpretation="srgb")
    )
    dominant = placeholders(rgba).dominant_color
    assert int(dominant[1:3], 16) > 240 and int(dominant[3:5], 16) < 16 and int(dominant[5:7], 16) < 16, dominant
    # A faint overlay (no pixel even half opaque) still has its colour, grey + alpha included.
    faint = (pyvips.Image.black(100, 100, bands=2) + [120, 60]).cast("uchar").copy(interpretation="b-w")
    grey = placeholders(faint).dominant_color
    assert all(abs(int(grey[i : i + 2], 16) - 120) <= 1 for i in (1, 3, 5)), grey  # resizing premultiplies: +-1
    clear = (pyvips.Image.black(100, 100, bands=4) + [200, 10, 10, 0]).cast("uchar").copy(interpretation="srgb")
    assert placeholders(clear).dominant_color == "#000000"  # fully transparent: no colour to speak of


def test_capture_metadata_is_read_for_the_database_only():
    info = probe(corpus("photos", "canon-sx60_orient6_2048x1536.jpg").read_bytes())
    assert info.capture.camera == "Canon PowerShot SX60 HS"
    assert info.capture.taken_at == "2015-02-09T22:47:44"
    assert info.capture.copyright is None  # the tag holds only "["


def test_exif_copyright_keeps_only_the_declared_parts():
    from pipeline.metadata import _copyright

    assert _copyright("Jane Doe (Photographer) - [None] (Editor)") == "Jane Doe"
    assert _copyright("[None] (Photographer) - Studio X (Editor)") == "Studio X"
    assert _copyright("[None] (Photographer) - [None] (Editor)") is None
    assert _copyright("(c) 2024 Acme Realty") == "(c) 2024 Acme Realty"


def test_only_the_loaders_we_serve_can_run_at_all():
    # Even called directly, bypassing the sniffer, libvips refuses GIF, SVG, PDF... and any
    # loader that reads a path (matrix, CSV, vips format).
    for name in ("libvips-cogs.gif", "libvips-logo.svg", "libvips-blankpage.pdf", "pillow-reallybig.bmp"):
        with pytest.raises(pyvips.Error):
            pyvips.Image.new_from_buffer(corpus("reject", name).read_bytes(), "")
    with pytest.raises(pyvips.Error):
        pyvips.Image.new_from_file(str(corpus("photos", "tree_1024x772.webp")))
    assert pyvips.Image.new_from_buffer(corpus("photos", "tree_1024x772.webp").read_bytes(), "").width == 1024


def test_tiff_html_text_and_polyglots_are_refused_whatever_they_are_called():
    jpeg = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    tiff = pyvips.Image.new_from_buffer(jpeg, "").tiffsave_buffer()
    samples = {
        "tiff": tiff,
        "html": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        "text renamed .jpg": b"just some notes\n",
        "GIF with a JPEG appended (GIFAR-style)": corpus("reject", "libvips-cogs.gif").read_bytes() + jpeg,
        "PDF wrapping a JPEG": b"%PDF-1.4\n" + jpeg,
        "MP4 video": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64,
    }
    for what, data in samples.items():
        with pytest.raises(UnsupportedMediaType):
            probe(data)
        assert sniff(data[:64]) is None, what
