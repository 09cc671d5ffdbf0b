"""The optional `mls` rendition (pipeline/specs.py): fitted into 2048x1536 without cropping or
upscaling, padded on white to exactly 4:3, JPEG in sRGB, alpha flattened; declared like the
other sizes (its key names the box), and switched on by MLS_RENDITION or a compliance profile."""

from __future__ import annotations

import pytest
import pyvips

from pipeline.probe import probe
from pipeline.render import render
from pipeline.specs import EncoderSettings, specs_for
from services.infra.settings import Settings
from tests.conftest import corpus

ON = EncoderSettings(mls_rendition=True)


def mls(name: str):
    data = corpus("photos", name).read_bytes()
    result = render(data, probe(data), ON)
    (out,) = [r for r in result.renditions if r.spec.name == "mls"]
    return out, pyvips.Image.new_from_buffer(out.data, "")


def white(img, x, y) -> bool:
    return all(v > 245 for v in img.getpoint(x, y)[:3])


@pytest.mark.parametrize(
    ("photo", "size", "bars"),
    [
        ("flickr-saw_2725x2225.jpg", (2048, 1536), "sides"),  # fitted to 1881x1536, padded left and right
        ("olympus-ep3_4032x3024.jpg", (2048, 1536), None),  # 4:3 already: no padding
        ("nikon-p6000_small_640x480.jpg", (640, 480), None),  # never upscaled
        ("waterfall_progressive_orient6_308x231.jpg", (411, 308), "sides"),  # portrait once rotated
    ],
)
def test_fitted_into_4_3_on_white_never_cropped_or_upscaled(photo, size, bars):
    out, img = mls(photo)
    assert (out.width, out.height) == (img.width, img.height) == size
    assert out.spec.format == "jpeg" and img.get("vips-loader").startswith("jpegload") and img.interpretation == "srgb"
    assert abs(img.width / img.height - 4 / 3) < 0.01
    if bars == "sides":
        assert white(img, 2, img.height // 2) and white(img, img.width - 3, img.height // 2)
        assert not white(img, img.width // 2, img.height // 2) or photo.startswith("waterfall")


def test_alpha_is_flattened_onto_white():
    out, img = mls("paper_alpha_2048x1536.png")
    assert out.spec.format == "jpeg" and img.bands == 3 and (img.width, img.height) == (2048, 1536)


def test_declared_like_the_other_sizes_and_off_unless_asked():
    assert "mls" not in {s.name for s in specs_for(False, EncoderSettings())}
    (spec,) = [s for s in specs_for(True, ON) if s.name == "mls"]  # JPEG even for a source with alpha
    assert spec.format == "jpeg" and spec.filename == "mls_w2048x1536_q82.jpg"
    assert Settings().encoder.mls_rendition is False
    assert Settings().with_overrides(compliance_profile="mls-strict").encoder.mls_rendition is True
    assert Settings().with_overrides(mls_rendition=True).encoder.mls_rendition is True
