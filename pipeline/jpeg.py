"""A JPEG's structure from its segments: how many scans it has, whether decoding it buffers the
whole image, its chroma sampling. Pure Python over the bytes; libvips never sees a file that
fails here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ImageTooComplex
from .limits import ImageLimits

# A JPEG marker that starts a segment with a length: SOFn, DHT, DAC (C0-CF), SOS (DA), DQT,
# DNL, DRI, DHP, EXP, APPn, JPGn, COM (DB-FE); and EOI (D9), which has none. Entropy-coded
# data never holds one: a 0xFF byte there is followed by 0x00 (stuffing), a restart marker
# (D0-D7) or another 0xFF (fill).
_MARKER = re.compile(rb"\xff[\xc0-\xcf\xd9-\xfe]")
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG and DAC share the range
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
# A photo has a few dozen segments (Ultra HDR and split extended XMP a few hundred); 25 MB of
# empty 4-byte comments would be 6 million, seconds of Python for the walk below. Stop there.
MAX_JPEG_SEGMENTS = 10_000


@dataclass(frozen=True)
class JpegLayout:
    scans: int  # start-of-scan segments in the whole file, appended images included
    segments: int  # segments walked; the walk stops past MAX_JPEG_SEGMENTS
    buffered: bool  # the first image needs libjpeg's whole-image coefficient buffer
    samples_per_pixel: float  # of the first image: 3 for YCbCr 4:4:4, 1.5 for 4:2:0, 1 for grey


def jpeg_layout(data: bytes) -> JpegLayout:
    """Walk a JPEG's segments (their payloads, EXIF thumbnails included, are skipped) and search
    the entropy-coded data between them for the next marker. It goes on past the first EOI, so
    an appended image (an Ultra HDR gain map) counts towards the scans."""
    scans = first_scans = segments = 0
    progressive, samples, first_done = False, 3.0, False
    pos, end = 2, len(data)
    while (m := _MARKER.search(data, pos)) is not None and m.start() + 2 <= end:
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            break
        at, marker = m.start(), data[m.start() + 1]
        if marker == 0xD9:  # EOI
            first_done, pos = True, at + 2
            continue
        if at + 4 > end:
            break
        length = max(int.from_bytes(data[at + 2 : at + 4], "big"), 2)
        if marker == 0xDA:
            scans += 1
            first_scans += not first_done
        elif marker in _SOF and not first_done and at + 10 <= end:
            progressive = marker in _PROGRESSIVE_SOF
            factors = [(b >> 4, b & 15) for b in data[at + 11 : at + 2 + length : 3][: data[at + 9]]]
            if factors and all(h and v for h, v in factors):
                hmax, vmax = max(h for h, _ in factors), max(v for _, v in factors)
                samples = sum(h * v for h, v in factors) / (hmax * vmax)
        pos = at + 2 + length
    return JpegLayout(scans, segments, progressive or first_scans > 1, samples)


def check_jpeg_layout(layout: JpegLayout, limits: ImageLimits) -> None:
    # Each scan of a progressive JPEG is one more pass over every 8x8 block: 1 000 scans of a
    # few bytes each (long end-of-band runs) cost libjpeg seconds of CPU on a 16 MP image and
    # minutes at 120 MP (the "LJT-01-003" issue in libjpeg-turbo's report on the standard).
    # libjpeg has no limit of its own and libvips sets none, so count before libvips sees it.
    if layout.segments > MAX_JPEG_SEGMENTS:
        raise ImageTooComplex(f"JPEG has more than {MAX_JPEG_SEGMENTS} segments; a photo has a few dozen")
    if layout.scans > limits.max_jpeg_scans:
        raise ImageTooComplex(
            f"JPEG has {layout.scans} scans; at most {limits.max_jpeg_scans} are accepted "
            "(cameras write 1, progressive encoders about 10): re-save it as a baseline JPEG"
        )
