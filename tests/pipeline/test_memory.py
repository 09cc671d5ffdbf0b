"""Decoders that cannot stream hold the whole frame: the probe's estimate of that memory is
checked against what rendering really takes (peak RSS in a fresh interpreter), and an image
whose estimate is over the limit is refused from its header, in small memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pyvips

from pipeline.errors import ImageTooLarge
from pipeline.limits import ImageLimits
from pipeline.probe import probe

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MIB = 2**20
UNLIMITED = ImageLimits(max_upload_bytes=2**31, max_decode_mb=2**20)


def _gradient(width: int, height: int, bands: int = 3) -> pyvips.Image:
    """Smooth colour: compresses to almost nothing, as a decompression bomb would."""
    xy = pyvips.Image.xyz(width, height)
    img = (xy[0] * 255 / width).bandjoin([xy[1] * 255 / height, (xy[0] + xy[1]) * 127 / width])
    if bands == 4:
        img = img.bandjoin(xy[0] * 255 / width)
    return img.cast("uchar").copy(interpretation="srgb")


def _measure(path: Path, limits: str = "ImageLimits(max_upload_bytes=2**31, max_decode_mb=2**20)") -> tuple[str, int]:
    """Probe and render `path` in a fresh interpreter: (error code or "ok", peak RSS growth in bytes)."""
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["VIPS_CONCURRENCY"] = "1"
        sys.path.insert(0, {str(ROOT)!r})
        import pyvips
        pyvips.cache_set_max(0)
        from pipeline.errors import ImageError
        from pipeline.limits import ImageLimits
        from pipeline.probe import probe
        from pipeline.render import render
        def hwm():
            return int([l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]) * 1024
        data = open({str(path)!r}, "rb").read()
        before = hwm()
        try:
            render(data, probe(data, {limits}))
            outcome = "ok"
        except ImageError as exc:
            outcome = exc.code
        print(outcome, hwm() - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    outcome, grown = out.stdout.split()
    return outcome, int(grown)


def _estimate(data: bytes) -> int:
    from pipeline.jpeg import jpeg_layout
    from pipeline.memory import PngHeader, decode_memory

    info = probe(data, UNLIMITED)
    header = pyvips.Image.new_from_buffer(data, "")
    png = (
        PngHeader(bool(header.get("interlaced")) if header.get_typeof("interlaced") else False, header.bands, header.format)
        if info.format == "png"
        else None
    )
    return decode_memory(
        info.format, data, info.width * info.height, jpeg=jpeg_layout(data) if info.format == "jpeg" else None, png=png
    )[0]


# 12 MP each, the size of a phone photo.
CASES = {
    "baseline.jpg": lambda: _gradient(4000, 3000).jpegsave_buffer(Q=90),  # streams: estimate 0
    "progressive-444.jpg": lambda: _gradient(4000, 3000).jpegsave_buffer(Q=95, interlace=True),
    "interlaced-rgba.png": lambda: _gradient(4000, 3000, 4).pngsave_buffer(interlace=True, compression=1),
    "lossless.webp": lambda: _gradient(4000, 3000).webpsave_buffer(lossless=True, effort=0),
    "photo.avif": lambda: _gradient(4000, 3000).heifsave_buffer(compression="av1", Q=40, effort=0),
    "photo.heic": lambda: (FIXTURES / "gradient_4000x3000.heic").read_bytes(),  # made with pillow-heif
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_decode_memory_estimate_bounds_what_rendering_takes(name, tmp_path):
    data = CASES[name]()
    path = tmp_path / name
    path.write_bytes(data)
    estimate = _estimate(data)
    outcome, grown = _measure(path)
    assert outcome == "ok"
    # The estimate is of the full-frame buffer; the pipeline around it (1600 px copies,
    # encoders, libvips' own buffers) adds a few tens of MB whatever the input.
    assert grown <= estimate + 64 * MIB, f"{name}: grew {grown // MIB} MB, estimated {estimate // MIB} MB"
    if name == "baseline.jpg":
        assert estimate == 0
    else:
        assert estimate >= 24 * MIB and grown >= estimate // 2, (
            f"{name}: grew {grown // MIB} MB, estimated {estimate // MIB} MB: the estimate is far too high"
        )


def test_an_avif_memory_bomb_is_refused_from_its_header_in_small_memory(tmp_path):
    # 16 KB of AVIF, 36 MP: within MAX_PIXELS, but about 550 MB to decode (libheif + dav1d).
    data = _gradient(6000, 6000).heifsave_buffer(compression="av1", Q=30, effort=0)
    assert len(data) < 64 * 1024
    path = tmp_path / "bomb.avif"
    path.write_bytes(data)
    with pytest.raises(ImageTooLarge) as err:
        probe(data)
    assert "MB of memory" in err.value.message and "the limit is 512 MB" in err.value.message
    outcome, grown = _measure(path, limits="ImageLimits()")
    assert outcome == "image_too_large"
    assert grown < 32 * MIB, f"refusing it grew the process by {grown // MIB} MB"
    # The limit is a setting: an operator with bigger workers lets it through.
    assert probe(data, ImageLimits(max_decode_mb=1024)).format == "avif"


def test_the_decode_memory_limit_applies_to_every_whole_frame_decoder():
    progressive = CASES["progressive-444.jpg"]()  # 12 MP x 3 samples x 2 bytes = 69 MB
    with pytest.raises(ImageTooLarge, match="progressive JPEG keeps every DCT coefficient"):
        probe(progressive, ImageLimits(max_decode_mb=64))
    assert probe(progressive, ImageLimits(max_decode_mb=128)).format == "jpeg"
    interlaced = CASES["interlaced-rgba.png"]()
    with pytest.raises(ImageTooLarge, match="interlaced"):
        probe(interlaced, ImageLimits(max_decode_mb=32))
    with pytest.raises(ImageTooLarge, match="lossless WebP"):
        probe(CASES["lossless.webp"](), ImageLimits(max_decode_mb=32))
    with pytest.raises(ImageTooLarge, match="HEIC"):
        probe(CASES["photo.heic"](), ImageLimits(max_decode_mb=32))
    # Streaming decoders need no whole frame: a 12 MP baseline JPEG passes a 1 MB limit.
    assert probe(CASES["baseline.jpg"](), ImageLimits(max_decode_mb=1)).format == "jpeg"


def test_webp_bitstream_kind_is_read_from_its_chunks():
    from pipeline.memory import _webp_lossless

    still = _gradient(400, 300)
    frames = still.join(still.flip("horizontal"), "vertical").copy()
    frames.set_type(pyvips.GValue.gint_type, "page-height", 300)
    frames.set_type(pyvips.GValue.array_int_type, "delay", [100, 100])
    assert not _webp_lossless(still.webpsave_buffer(Q=80))
    assert _webp_lossless(still.webpsave_buffer(lossless=True))
    assert _webp_lossless(_gradient(400, 300, 4).webpsave_buffer(lossless=True))  # VP8X + VP8L
    assert not _webp_lossless(frames.webpsave_buffer(Q=80))  # ANMF frames holding VP8
    assert _webp_lossless(frames.webpsave_buffer(lossless=True))  # ANMF frames holding VP8L
