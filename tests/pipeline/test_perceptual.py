"""PDQ in numpy against Meta's reference (the pdqhash package, its C++), on the corpus' photos."""

from __future__ import annotations

import numpy as np
import pdqhash
import pytest
import pyvips

from pipeline.perceptual import SIDE, hamming, pdq
from tests.conftest import corpus

PHOTOS = ["iphone6_3264x2448.jpg", "flickr-saw_2725x2225.jpg", "tree_1024x772.webp", "canon-sx60_orient6_2048x1536.jpg"]


def _load(*parts: str) -> pyvips.Image:
    # from memory: the worker's loader policy (applied by other tests in this process) blocks file loaders
    return pyvips.Image.new_from_buffer(corpus(*parts).read_bytes(), "").autorot()


def _reference(rgb: np.ndarray) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    # pdqhash gives bit 0 first; the reference's hex (ThreatExchange's hash lists) starts at bit 255
    return np.packbits(bits.astype(np.uint8)[::-1]).tobytes().hex(), int(quality)


@pytest.mark.parametrize("name", PHOTOS)
def test_our_pdq_is_the_reference_bit_for_bit(name):
    img = _load("photos", name)
    small = img.thumbnail_image(SIDE, height=SIDE, size="down").colourspace("srgb").cast("uchar")
    rgb = small.numpy()[:, :, :3]
    ours = pdq(small)
    assert (ours.hex, ours.quality) == _reference(rgb)
    assert ours.mirror == _reference(rgb[:, ::-1])[0]  # the mirror's hash is a mirrored upload's


def test_altered_copies_are_close_and_different_photos_far():
    a = _load("photos", "iphone6_3264x2448.jpg")
    b = _load("photos", "olympus-ep3_4032x3024.jpg")
    lifted = pyvips.Image.new_from_buffer(a.thumbnail_image(1024).jpegsave_buffer(Q=60), "")
    assert hamming(pdq(a).hex, pdq(lifted).hex) <= 8
    assert hamming(pdq(a).hex, pdq(b).hex) > 64
    mirrored = pdq(a.fliphor())
    assert hamming(pdq(a).mirror, mirrored.hex) <= 8 < hamming(pdq(a).hex, mirrored.hex)


def test_a_flat_picture_has_a_low_quality():
    grey = pyvips.Image.black(800, 600, bands=3).new_from_image([128, 128, 128]).cast("uchar")
    assert pdq(grey).quality < 50
    assert pdq(_load("photos", "tree_1024x772.webp")).quality >= 50
