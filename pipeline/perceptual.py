"""Perceptual hashes: PDQ (Meta's 256-bit DCT hash with a quality score) of the decoded,
oriented image, reduced by libvips to a long side of 512 in 8-bit sRGB. Computed in numpy, bit
for bit as the reference C++ (the `pdqhash` package, which ships as source only: the image has
no compiler; the suite checks ours against it).

Two photos of the same picture (resized, recompressed, lightly cropped) are a few bits apart;
two different photos about 128. services/moderation/ compares them; the thresholds are
measured (bench/pdq_eval.py, docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the API compares hashes without loading libvips
    import pyvips

SIDE = 512  # PDQ's reference downsamples to 512 first; a Lanczos resize does it in libvips


@dataclass(frozen=True)
class PerceptualHash:
    hex: str  # 64 hex digits as the reference prints them (bit 255 first): hash lists exchange this form
    quality: int  # 0..100: below ~50 the picture is too flat to say anything (blank, a logo)
    mirror: str = ""  # the hash of the picture flipped left to right (looked up too: a mirrored copy)


def hamming(a_hex: str, b_hex: str) -> int:
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


def pdq(img: pyvips.Image) -> PerceptualHash:
    """The PDQ hash of an image already decoded and oriented (any size, any band layout)."""
    import numpy as np

    # The picture is decoded and oriented already: a plain Lanczos resize to 512 (half the time of
    # thumbnail_image, which would look for a shrink-on-load and colour profiles again).
    longest = max(img.width, img.height)
    small = img.resize(SIDE / longest) if longest > SIDE else img
    if small.hasalpha():
        small = small.flatten(background=[255] * (small.bands - 1))
    if small.bands >= 3 and small.interpretation != "srgb":
        small = small.colourspace("srgb")
    if small.format != "uchar":
        small = small.cast("uchar")
    pixels = small.numpy()
    if pixels.ndim == 2 or pixels.shape[2] < 3:  # grey: the luma is the grey value
        luma = (pixels if pixels.ndim == 2 else pixels[:, :, 0]).astype(np.float32)
    else:
        rgb = pixels[:, :, :3].astype(np.float32)
        luma = rgb[:, :, 0] * np.float32(0.299) + rgb[:, :, 1] * np.float32(0.587) + rgb[:, :, 2] * np.float32(0.114)
    return pdq_from_luma(luma, mirror=True)


def pdq_from_luma(luma, *, mirror: bool = False) -> PerceptualHash:
    """PDQ as Meta's reference computes it (ThreatExchange pdq/cpp: pdqhashing.cpp and
    downscaling.cpp), in numpy: two passes of Jarosz box filters, decimation to 64 x 64, the
    image-domain quality metric, the 16 x 16 corner of the 64 x 64 DCT, one bit per coefficient
    above the median. Checked against the `pdqhash` wheel (its C++) in the suite."""
    import numpy as np

    rows, cols = luma.shape
    if rows < 5 or cols < 5:
        return PerceptualHash("0" * 64, 0)
    buf = np.asarray(luma, dtype=np.float64)
    wr, wc = _window(cols), _window(rows)
    # The reference filters rows, columns, rows, columns, then keeps 64 x 64 samples. Every pass
    # is linear and the passes along different axes commute, so the whole of it is two matrix
    # products with the (cached) matrices of the two passes and the decimation along each axis:
    # a tenth of the time of the passes themselves. The suite checks the bits still equal the
    # reference's.
    a = _passes(rows, wc) @ buf @ _passes(cols, wr).T
    quality = min(100, int(_gradient_sum(a) // 90))
    # The mirror's hash from the flipped picture itself: flipping the 64 x 64 buffer instead (as
    # the reference's dihedral hashes do) lands 16 bits away from a mirrored upload's hash, since
    # the box filters and the decimation are not symmetric (bench/pdq_eval.py measured both).
    flipped = pdq_from_luma(luma[:, ::-1]).hex if mirror else ""
    return PerceptualHash(_bits(a), quality, mirror=flipped)


def _bits(a) -> str:
    import numpy as np

    values = (_DCT() @ a @ _DCT().T).reshape(256)
    median = np.sort(values)[127]  # Torben's median of 256: the 128th smallest
    bits = (values > median).astype(np.uint8)  # bit i*16+j for coefficient (i, j)
    return np.packbits(bits).tobytes().hex()


def _window(old: int, new: int = 64) -> int:
    return (old + 2 * new - 1) // (2 * new)


@lru_cache(maxsize=64)
def _passes(n: int, window: int):
    """The two box-filter passes along a vector of `n`, sampled at the 64 kept positions, as one
    64 x n matrix (each pass is linear): a picture's filtering and decimation is then two matrix
    products, Mr @ X @ Mc.T, instead of eight passes over it."""
    import numpy as np

    kept = ((np.arange(64) + 0.5) * n / 64).astype(int)
    return _box(_box(np.eye(n), window), window, at=kept).T


def _box(a, window: int, at=None):
    """The reference's box1DFloat along each row: the mean over [o - (w - h), o + h - 1],
    h = (w + 2) // 2, clipped to the row (a shorter window at the edges); `at`: only at these
    positions."""
    import numpy as np

    n = a.shape[1]
    half = (window + 2) // 2
    index = np.arange(n) if at is None else np.asarray(at)
    lo = np.clip(index - (window - half), 0, n - 1)
    hi = np.clip(index + half - 1, 0, n - 1) + 1
    sums = np.zeros((a.shape[0], n + 1))
    np.cumsum(a, axis=1, out=sums[:, 1:])
    return (sums[:, hi] - sums[:, lo]) / (hi - lo)


def _gradient_sum(a) -> int:
    import numpy as np

    down = np.trunc((a[:-1, :] - a[1:, :]) * 100 / 255)
    across = np.trunc((a[:, :-1] - a[:, 1:]) * 100 / 255)
    return int(np.abs(down).sum() + np.abs(across).sum())


@lru_cache(maxsize=1)
def _DCT():  # noqa: N802 (a matrix)
    """The first 16 rows (skipping the DC row) of the 64-point DCT-II matrix, as the reference's."""
    import numpy as np

    i = np.arange(1, 17).reshape(16, 1)
    j = np.arange(64).reshape(1, 64)
    return np.sqrt(2.0 / 64) * np.cos((np.pi / 2 / 64) * i * (2 * j + 1))
