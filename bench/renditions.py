"""Rendition benchmark: imagepipe's core against a bare pyvips reference, in the same run.

    make bench            # or: .venv/bin/python bench/renditions.py [--rounds N]

(a) imagepipe: probe + validate + render all six renditions + sha256, as the worker does.
(b) reference: one decode with shrink-on-load, cascade 1600 -> 800 -> 300 in memory, the same
    encoder settings, nothing else: what libvips itself costs for this output.
Runs are interleaved (a, b, a, b ...) so machine noise hits both alike; the ratio a/b is the
number to read, not the milliseconds. Timing targets live here, never in tests.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyvips  # noqa: E402

from pipeline.probe import probe  # noqa: E402
from pipeline.render import render  # noqa: E402
from pipeline.specs import EncoderSettings  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "photos"
TARGET_RATIO = 1.05  # (a) may cost at most 5 % more than the libvips reference


def imagepipe_core(data: bytes, enc: EncoderSettings) -> int:
    result = render(data, probe(data), enc)
    hashlib.sha256(data).hexdigest()
    return sum(len(r.data) for r in result.renditions)


def reference(data: bytes, enc: EncoderSettings) -> int:
    img = pyvips.Image.thumbnail_buffer(data, 1600, height=10_000_000, size="down")
    if img.interpretation != "srgb":
        img = img.colourspace("srgb")
    img = img.copy_memory()
    alpha = img.hasalpha()
    total = 0
    for width in (1600, 800, 300):
        if img.width > width:
            img = img.thumbnail_image(width, height=10_000_000, size="down").copy_memory()
        if alpha:
            total += len(img.pngsave_buffer(compression=6, keep="none"))
        else:
            total += len(img.jpegsave_buffer(Q=enc.jpeg_quality, optimize_coding=True,
                                             interlace=width == 1600, keep="none"))
        total += len(img.webpsave_buffer(Q=enc.webp_quality, effort=enc.webp_effort, keep="none"))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    pyvips.cache_set_max(0)
    enc = EncoderSettings()
    photos = sorted(p for p in CORPUS.iterdir() if p.suffix.lower() in (".jpg", ".png", ".webp"))
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
          f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, VIPS_CONCURRENCY="
          f"{os.environ['VIPS_CONCURRENCY']}, rounds={args.rounds}")
    print(f"{'photo':44} {'MP':>5} {'(a) ms':>8} {'(b) ms':>8} {'a/b':>6}")
    ratios = []
    total_a = total_b = 0.0
    for photo in photos:
        data = photo.read_bytes()
        info = probe(data)
        times = {"a": [], "b": []}
        for _ in range(args.rounds):
            for name, fn in (("a", imagepipe_core), ("b", reference)):
                t0 = time.perf_counter()
                fn(data, enc)
                times[name].append(time.perf_counter() - t0)
        a, b = statistics.median(times["a"]) * 1000, statistics.median(times["b"]) * 1000
        total_a, total_b = total_a + a, total_b + b
        ratios.append(a / b)
        print(f"{photo.name:44} {info.width * info.height / 1e6:5.1f} {a:8.1f} {b:8.1f} {a / b:6.2f}")
    overall = total_a / total_b
    verdict = "met" if overall <= TARGET_RATIO else "NOT met"
    print(f"overall (sum of medians): a/b = {overall:.2f}  target <= {TARGET_RATIO}: {verdict}")
    print(f"images per second per core, imagepipe core: {len(photos) / (total_a / 1000):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
