"""What a page shows before a rendition arrives: a BlurHash and the dominant colour.

Both are computed from a 32 px copy of the smallest rendition, so they cost well under a
millisecond of libvips and a few of Python, whatever the size of the upload.
BlurHash: https://github.com/woltapp/blurhash (the algorithm and base-83 alphabet are its spec).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyvips

SAMPLE_PX = 32
_B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_TO_LINEAR = [((v / 255) / 12.92) if v / 255 <= 0.04045 else (((v / 255) + 0.055) / 1.055) ** 2.4 for v in range(256)]


@dataclass(frozen=True)
class Placeholders:
    blurhash: str
    dominant_color: str  # "#rrggbb"


def _b83(value: int, length: int) -> str:
    return "".join(_B83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _to_srgb8(value: float) -> int:
    v = min(max(value, 0.0), 1.0)
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exp: float) -> float:
    return math.copysign(abs(value) ** exp, value)


def blurhash_encode(rgb: bytes, width: int, height: int, x_components: int = 4, y_components: int = 3) -> str:
    """BlurHash of packed 8-bit sRGB pixels (row-major, 3 bytes each)."""
    if not (1 <= x_components <= 9 and 1 <= y_components <= 9):
        raise ValueError("BlurHash components must be 1..9")
    lin = [_TO_LINEAR[b] for b in rgb]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]
    # Separable: sum over x for each row first, then over y; same result as the 2-D sum.
    rows: list[list[tuple[float, float, float]]] = []
    stride = width * 3
    for y in range(height):
        row = lin[y * stride : (y + 1) * stride]
        rs, gs, bs = row[0::3], row[1::3], row[2::3]
        per_i = []
        for cx in cos_x:
            per_i.append((sum(map(float.__mul__, rs, cx)), sum(map(float.__mul__, gs, cx)), sum(map(float.__mul__, bs, cx))))
        rows.append(per_i)
    factors: list[tuple[float, float, float]] = []
    scale = 1.0 / (width * height)
    for j in range(y_components):
        cy = cos_y[j]
        for i in range(x_components):
            norm = (1.0 if i == 0 and j == 0 else 2.0) * scale
            r = g = b = 0.0
            for y in range(height):
                pr, pg, pb = rows[y][i]
                c = cy[y]
                r += pr * c
                g += pg * c
                b += pb * c
            factors.append((r * norm, g * norm, b * norm))

    dc, ac = factors[0], factors[1:]
    out = _b83((x_components - 1) + (y_components - 1) * 9, 1)
    if ac:
        actual_max = max(abs(v) for f in ac for v in f)
        quantised_max = max(0, min(82, int(math.floor(actual_max * 166 - 0.5))))
        max_value = (quantised_max + 1) / 166
        out += _b83(quantised_max, 1)
    else:
        max_value = 1.0
        out += _b83(0, 1)
    out += _b83((_to_srgb8(dc[0]) << 16) + (_to_srgb8(dc[1]) << 8) + _to_srgb8(dc[2]), 4)
    for f in ac:
        q = [max(0, min(18, int(math.floor(_sign_pow(v / max_value, 0.5) * 9 + 9.5)))) for v in f]
        out += _b83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out


def dominant_color(rgb: bytes, alpha: bytes | None = None, min_alpha: int = 128) -> str:
    """The centre of the most populated 4-bit-per-channel colour box, ignoring transparent
    pixels. A picture with no pixel at least half opaque (a faint watermark, a tinted overlay)
    is judged by every pixel that is not fully transparent."""
    boxes: dict[int, list[int]] = {}
    for n in range(len(rgb) // 3):
        if alpha is not None and alpha[n] < min_alpha:
            continue
        r, g, b = rgb[3 * n], rgb[3 * n + 1], rgb[3 * n + 2]
        box = boxes.setdefault((r >> 4) << 8 | (g >> 4) << 4 | (b >> 4), [0, 0, 0, 0])
        box[0] += 1
        box[1] += r
        box[2] += g
        box[3] += b
    if not boxes:
        return dominant_color(rgb, alpha, 1) if alpha is not None and min_alpha > 1 else "#000000"
    count, r, g, b = max(boxes.values())
    return "#{:02x}{:02x}{:02x}".format(*(round(v / count) for v in (r, g, b)))


def components_for(width: int, height: int) -> tuple[int, int]:
    """4 x 3 for landscape, 3 x 4 for portrait, 4 x 4 for square-ish: BlurHash's usual choice."""
    ratio = width / height
    if ratio > 1.2:
        return 4, 3
    if ratio < 1 / 1.2:
        return 3, 4
    return 4, 4


def placeholders(img: pyvips.Image) -> Placeholders:
    """From a display-ready (sRGB or grey, 8-bit) image of any size."""
    small = img.thumbnail_image(SAMPLE_PX, height=SAMPLE_PX) if max(img.width, img.height) > SAMPLE_PX else img
    small = small.cast("uchar")
    if small.bands < 3:  # grey (+ alpha) to RGB (+ alpha), exactly: the grey level thrice
        small = small[0].bandjoin([small[0], small[0], *([small[1]] if small.bands == 2 else [])])
    small = small.copy(interpretation="srgb")
    colour, alpha = small[0:3], None
    if small.bands == 4:
        alpha = bytes(small[3].write_to_memory())
        # The dominant colour is the object's own (a half-transparent red logo is red); BlurHash
        # has no alpha, so it pictures the image as a page would show it: on white.
        shown = small.flatten(background=[255, 255, 255]).cast("uchar")
    else:
        shown = colour
    x, y = components_for(small.width, small.height)
    return Placeholders(
        blurhash_encode(bytes(shown.write_to_memory()), small.width, small.height, x, y),
        dominant_color(bytes(colour.write_to_memory()), alpha),
    )
