"""Every file of tests/corpus through the processing core, as its README says it must go.

photos/ and accept/ render; reject/ and PngSuite's x*.png are refused with the right code;
the other PngSuite files decode to the same pixels as an independent decoder (Pillow).
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest
import pyvips
from PIL import Image as PILImage

from pipeline.errors import ImageError
from pipeline.limits import ImageLimits
from pipeline.probe import probe
from pipeline.render import decode_for_renditions, render
from pipeline.specs import RENDITION_WIDTHS
from tests.conftest import CORPUS, ROOT, corpus
from tests.support.containers import metadata_blocks

IMAGE_SUFFIXES = {".jpg", ".png", ".webp", ".avif", ".heic", ".gif", ".svg", ".pdf", ".psd", ".bmp", ".ico"}
LOADERS = {"jpeg": "jpegload_buffer", "png": "pngload_buffer", "webp": "webpload_buffer"}


def _files(folder: str, prefix: str = "") -> list[str]:
    return sorted(p.name for p in (CORPUS / folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.name.startswith(prefix))


def _renders_correctly(folder: str, name: str) -> None:
    data = corpus(folder, name).read_bytes()
    info = probe(data)
    result = render(data, info)
    assert len(result.renditions) == 6
    for r in result.renditions:
        img = pyvips.Image.new_from_buffer(r.data, "")
        assert img.get("vips-loader") == LOADERS[r.spec.format]
        assert (img.width, img.height) == (r.width, r.height)
        # Never upscaled, aspect kept (to the rounding of one pixel).
        assert r.width == min(r.spec.width, info.width), (r.spec, info)
        assert abs(r.height - info.height * r.width / info.width) <= 1, (r.spec, info)
        assert img.format == "uchar" and img.interpretation in ("srgb", "b-w"), (r.spec, img.interpretation)
        assert img.hasalpha() == result.has_alpha
        assert metadata_blocks(r.data) == [], r.spec  # no EXIF, XMP, IPTC nor ICC
    assert result.placeholders.blurhash and result.placeholders.dominant_color.startswith("#")


@pytest.mark.parametrize("name", _files("photos"))
def test_every_photo_renders(name):
    _renders_correctly("photos", name)


@pytest.mark.parametrize("name", _files("accept"))
def test_every_valid_oddity_renders(name):
    _renders_correctly("accept", name)


REJECT = {
    "libvips-17000x17000.avif": "image_too_large",
    "libvips-blankpage.pdf": "unsupported_media_type",
    "libvips-cogs.gif": "unsupported_media_type",
    "libvips-logo.svg": "unsupported_media_type",
    "libvips-truncated.gif": "unsupported_media_type",
    "libvips-truncated.jpg": "corrupt_image",
    "pillow-broken.png": "corrupt_image",
    "pillow-broken_data_stream.png": "corrupt_image",
    "pillow-decompression_bomb.gif": "unsupported_media_type",
    "pillow-decompression_bomb.ico": "unsupported_media_type",
    "pillow-reallybig.bmp": "unsupported_media_type",
    "pillow-truncated_jpeg.jpg": "corrupt_image",
    "thumbor-16384x16384.png": "image_too_large",
    "thumbor-1x1.psd": "unsupported_media_type",
    "thumbor-BlueSquare_truncated.jpg": "corrupt_image",
    "thumbor-image_invalid.jpg": "unsupported_media_type",  # one newline byte: text renamed .jpg
}
HTTP_STATUS = {"unsupported_media_type": 415, "image_too_large": 422, "corrupt_image": 422}


def test_every_reject_file_is_classified():
    assert sorted(REJECT) == _files("reject")


def _refusal(data: bytes, limits: ImageLimits | None = None) -> ImageError:
    with pytest.raises(ImageError) as caught:
        render(data, probe(data, limits or ImageLimits()))
    return caught.value


@pytest.mark.parametrize("name", sorted(REJECT))
def test_every_reject_file_is_refused_with_its_code(name):
    err = _refusal(corpus("reject", name).read_bytes())
    assert err.code == REJECT[name], err.message
    assert err.http_status == HTTP_STATUS[err.code]
    assert err.message


def test_pngsuite_has_its_fourteen_broken_files():
    assert len(_files("pngsuite", "x")) == 14


@pytest.mark.parametrize("name", _files("pngsuite", "x"))
def test_pngsuite_broken_files_are_corrupt(name):
    err = _refusal(corpus("pngsuite", name).read_bytes(), ImageLimits(min_side_px=1))
    assert err.code == "corrupt_image", err.message


def _pillow_rgba(data: bytes) -> PILImage.Image:
    im = PILImage.open(io.BytesIO(data))
    im.load()
    if im.mode in ("I;16", "I;16B", "I"):  # Pillow clips 16-bit grey when converting: scale first
        im = im.point(lambda v: v * (1 / 257)).convert("L")
    return im.convert("RGBA")


def _ours_rgba(img: pyvips.Image) -> bytes:
    if img.bands in (1, 2):
        img = img.colourspace("srgb")
    if not img.hasalpha():
        img = img.bandjoin(255)
    return bytes(img.write_to_memory())


@pytest.mark.parametrize("name", [n for n in _files("pngsuite") if not n.startswith("x")])
def test_pngsuite_decodes_to_the_same_pixels_as_pillow(name):
    data = corpus("pngsuite", name).read_bytes()
    info = probe(data, ImageLimits(min_side_px=1))
    source = decode_for_renditions(data, info, max(RENDITION_WIDTHS.values()))
    reference = _pillow_rgba(data)
    assert (source.width, source.height) == reference.size
    ours, theirs = _ours_rgba(source), bytearray(reference.tobytes())
    if name == "tbbn0g04.png":
        # Its tRNS marks grey 15 of 4 bits (white) transparent; Pillow compares the unscaled
        # value with 8-bit samples and keeps white opaque. libvips follows the PNG spec.
        for n in range(0, len(theirs), 4):
            if theirs[n : n + 3] == b"\xff\xff\xff":
                theirs[n + 3] = 0
    worst = 0
    for n in range(0, len(ours), 4):
        worst = max(worst, abs(ours[n + 3] - theirs[n + 3]))
        if ours[n + 3] and theirs[n + 3]:  # colour under full transparency is undefined
            worst = max(worst, *(abs(ours[n + k] - theirs[n + k]) for k in range(3)))
    assert worst <= 1, f"{name}: a pixel differs by {worst}"  # 16 -> 8 bit rounding at most
    # ...and the whole pipeline renders it, never upscaled.
    result = render(data, info)
    assert {r.width for r in result.renditions} == {info.width}


def test_bombs_are_refused_in_small_memory():
    """Decoding any of these would take 0.8-18 GB; refusing them from the header costs nothing.
    Run in a fresh interpreter so its peak RSS is about these files alone."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pipeline.errors import ImageError
        from pipeline.probe import probe
        from pipeline.render import render
        def hwm():  # peak RSS in KiB; ru_maxrss would carry the parent's peak across exec
            return int([l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1])
        before = hwm()
        codes = []
        for name in ("thumbor-16384x16384.png", "libvips-17000x17000.avif", "pillow-reallybig.bmp",
                     "pillow-decompression_bomb.gif"):
            data = open({str(CORPUS / "reject")!r} + "/" + name, "rb").read()
            try:
                render(data, probe(data))
            except ImageError as exc:
                codes.append(exc.code)
        grown = hwm() - before
        print(",".join(codes), grown)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    codes, grown_kib = out.stdout.split()
    assert codes.split(",") == ["image_too_large", "image_too_large", "unsupported_media_type", "unsupported_media_type"]
    assert int(grown_kib) < 32 * 1024, f"peak RSS grew by {int(grown_kib) // 1024} MiB"
