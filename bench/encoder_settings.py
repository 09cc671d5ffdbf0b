"""Choose the encoder defaults by measurement: bytes, encode time and SSIM per setting.

    .venv/bin/python bench/encoder_settings.py [--rounds N]

For every photo in tests/corpus/photos of at least 1 MP, each rendition width (1600, 800,
300) is made once in float precision without compression loss (the "full-quality resize");
each candidate setting encodes it, decodes it back and scores it with SSIM (Gaussian window,
sigma 1.5, on luminance) against that reference. Reported per setting: total bytes of the
three widths relative to the current default, median encode ms for the three, mean SSIM.
The table in docs/benchmarks.md is this script's output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")
import pyvips  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "photos"
WIDTHS = (1600, 800, 300)


def ssim(a: pyvips.Image, b: pyvips.Image) -> float:
    a = a.colourspace("b-w")[0].cast("float")
    b = b.colourspace("b-w")[0].cast("float")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x):
        return x.gaussblur(1.5, precision="float")

    mu_a, mu_b = blur(a), blur(b)
    s_aa = blur(a * a) - mu_a * mu_a
    s_bb = blur(b * b) - mu_b * mu_b
    s_ab = blur(a * b) - mu_a * mu_b
    num = (mu_a * mu_b * 2 + c1) * (s_ab * 2 + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (s_aa + s_bb + c2)
    return (num / den).avg()


def candidates():
    for q in (75, 80, 82, 85, 90):
        yield f"jpeg q{q}", lambda im, q=q: im.jpegsave_buffer(Q=q, optimize_coding=True, keep="none")
    yield "jpeg q82 4:4:4", lambda im: im.jpegsave_buffer(Q=82, optimize_coding=True, subsample_mode="off", keep="none")
    yield "jpeg q82 progressive", lambda im: im.jpegsave_buffer(Q=82, optimize_coding=True, interlace=True, keep="none")
    yield "jpeg q82 no Huffman opt.", lambda im: im.jpegsave_buffer(Q=82, keep="none")
    for q in (75, 80, 82, 85):
        for effort in (0, 2, 3, 4, 6):
            yield f"webp q{q} effort {effort}", lambda im, q=q, e=effort: im.webpsave_buffer(Q=q, effort=e, keep="none")
    for q in (45, 50, 60):
        for effort in (0, 2):
            yield (
                f"avif q{q} effort {effort}",
                lambda im, q=q, e=effort: im.heifsave_buffer(compression="av1", Q=q, effort=e, keep="none"),
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="substring filter on setting names")
    args = parser.parse_args()
    pyvips.cache_set_max(0)
    photos = []
    for p in sorted(CORPUS.iterdir()):
        if p.suffix.lower() not in (".jpg", ".png", ".webp"):
            continue
        head = pyvips.Image.new_from_file(str(p))
        if head.width * head.height >= 1_000_000:
            photos.append(p)
    refs = []  # (photo, [reference image per width])
    for p in photos:
        img = pyvips.Image.thumbnail(str(p), 1600, height=10_000_000, size="down")
        if img.hasalpha():
            img = img.flatten(background=[255, 255, 255])
        img = img.colourspace("srgb").cast("uchar").copy_memory()
        sized = []
        for w in WIDTHS:
            if img.width > w:
                img = img.thumbnail_image(w, height=10_000_000, size="down").copy_memory()
            sized.append(img)
        refs.append((p.name, sized))
    print(f"photos: {', '.join(n for n, _ in refs)}; libvips {pyvips.version(0)}.{pyvips.version(1)}; rounds={args.rounds}")
    rows = []
    for name, fn in candidates():
        if args.only and args.only not in name:
            continue
        total_bytes, times, scores = 0, [], []
        for _, sized in refs:
            t_photo = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                outs = [fn(im) for im in sized]
                t_photo.append(time.perf_counter() - t0)
            times.append(statistics.median(t_photo) * 1000)
            total_bytes += sum(len(o) for o in outs)
            scores.extend(ssim(im, pyvips.Image.new_from_buffer(o, "")) for im, o in zip(sized, outs, strict=True))
        rows.append((name, total_bytes, sum(times), statistics.mean(scores)))
        print(f"  {name:28} {total_bytes / 1024:9.0f} KiB {sum(times):8.0f} ms  SSIM {statistics.mean(scores):.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
