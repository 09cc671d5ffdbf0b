"""Same encoder, two builds: libvips' (pyvips-binary) libjpeg-turbo/libwebp/libpng against Pillow's.
The table is what pipeline/encoders.py's choice of build rests on; run it again when either
wheel changes.

    .venv/bin/python bench/encoder_libs.py

Encodes one 1600 px image (the 12 MP Olympus photo, resized) with identical settings through
pyvips and through Pillow, checks that the bytes are the same size (same library, same
options; JPEG differs by a few header bytes), and prints the median time of each. This is why (c) Pillow keeps up with (a) in
bench/renditions.py: the decode and resize are faster in libvips, the encoders slower.

Then the budget: for the same photo, (a) imagepipe's whole core and (c) the careful Pillow
pipeline of bench/renditions.py, and the part of (a) spent in its six encoder calls alone. The
target "(a) >= 1.15 x faster than (c)" (TARGET_VS_PILLOW, bench/renditions.py; the earlier 1.25
was retired in docs/benchmarks.md) leaves (c) / 1.15 for everything; the line says what
would be left for decode, resize, validation and placeholders once the encoders are paid for,
at WebP effort 4 (the default) and at the cheaper efforts, since lowering it speeds up both.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")
import pyvips  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PHOTO = ROOT / "tests" / "corpus" / "photos" / "olympus-ep3_4032x3024.jpg"


def median_ms(fn, n: int = 9) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def main() -> int:
    pyvips.cache_set_max(0)
    img = pyvips.Image.new_from_buffer(PHOTO.read_bytes(), "", shrink=2).thumbnail_image(1600).copy_memory()
    pim = Image.frombytes("RGB", (img.width, img.height), bytes(img.write_to_memory()))
    cases = [
        ("JPEG q82 baseline", lambda: img.jpegsave_buffer(Q=82, keep="none"), lambda: pil_bytes(pim, "JPEG", quality=82)),
        (
            "JPEG q82 optimised Huffman",
            lambda: img.jpegsave_buffer(Q=82, optimize_coding=True, keep="none"),
            lambda: pil_bytes(pim, "JPEG", quality=82, optimize=True),
        ),
        (
            "JPEG q82 progressive",
            lambda: img.jpegsave_buffer(Q=82, optimize_coding=True, interlace=True, keep="none"),
            lambda: pil_bytes(pim, "JPEG", quality=82, optimize=True, progressive=True),
        ),
    ] + [
        (
            f"WebP q80 effort {e}",
            lambda e=e: img.webpsave_buffer(Q=80, effort=e, keep="none"),
            lambda e=e: pil_bytes(pim, "WEBP", quality=80, method=e),
        )
        for e in (0, 2, 4)
    ]
    # PNG renditions are for images with real alpha: the RGBA photo of the corpus, at 1600 px
    rgba = pyvips.Image.new_from_file(str(ROOT / "tests" / "corpus" / "photos" / "paper_alpha_2048x1536.png"))
    rgba = rgba.thumbnail_image(1600).copy_memory()
    prgba = Image.frombytes("RGBA", (rgba.width, rgba.height), bytes(rgba.write_to_memory()))
    cases.append(
        (
            "PNG level 6 (RGBA)",
            lambda: rgba.pngsave_buffer(compression=6, keep="none"),
            lambda: pil_bytes(prgba, "PNG", compress_level=6),
        )
    )
    print(
        f"{img.width}x{img.height} from {PHOTO.name}; libvips {pyvips.version(0)}.{pyvips.version(1)}, Pillow {Image.__version__}"
    )
    print(f"{'encode':28} {'pyvips ms':>10} {'Pillow ms':>10} {'ratio':>6} {'pyvips B':>9} {'Pillow B':>9}")
    for name, vips_fn, pil_fn in cases:
        size_a, size_b = len(vips_fn()), len(pil_fn())
        a, b = median_ms(vips_fn), median_ms(pil_fn)
        print(f"{name:28} {a:10.1f} {b:10.1f} {a / b:6.2f} {size_a:9} {size_b:9}")
    from pipeline.specs import DEFAULT_ENCODER

    print(
        f"imagepipe encodes JPEG with {DEFAULT_ENCODER.jpeg_encoder}, WebP with {DEFAULT_ENCODER.webp_encoder}, "
        "PNG and AVIF with libvips (pipeline/encoders.py; JPEG_ENCODER, WEBP_ENCODER)"
    )
    whole_render(DEFAULT_ENCODER)
    budget()
    return 0


def whole_render(default) -> None:
    """pipeline.render on the 12 MP photo (six renditions, placeholders), with each build."""
    from dataclasses import replace

    from pipeline.probe import probe
    from pipeline.render import render

    data = PHOTO.read_bytes()
    info = probe(data)
    builds = {b: replace(default, jpeg_encoder=b, webp_encoder=b) for b in ("libvips", "pillow")}
    times = {b: median_ms(lambda enc=enc: render(data, info, enc), n=7) for b, enc in builds.items()}
    print(
        f"whole render of {PHOTO.name}: libvips encoders {times['libvips']:.0f} ms, Pillow's "
        f"{times['pillow']:.0f} ms ({times['libvips'] / times['pillow']:.2f} x)"
    )


def budget() -> None:
    from dataclasses import replace

    from renditions import TARGET_VS_PILLOW, imagepipe_core, pillow_careful

    from pipeline.probe import probe
    from pipeline.render import cascade, decode_for_renditions, encode
    from pipeline.specs import DEFAULT_ENCODER, specs_for

    data = PHOTO.read_bytes()
    info = probe(data)
    print(f"\nbudget on {PHOTO.name}: (c) / {TARGET_VS_PILLOW} is all (a) may spend to meet the target")
    print(
        f"{'WebP effort':12} {'(a) ms':>7} {'(c) ms':>7} {'c/a':>5} {'budget':>7} {'(a) encoders':>13} "
        f"{'left for the rest':>18} {'(a) rest now':>13}"
    )
    for effort in (4, 2, 0):
        enc = replace(DEFAULT_ENCODER, webp_effort=effort)
        specs = specs_for(False, enc)

        # the six renditions' pixels, made as render() makes them
        sized = cascade(decode_for_renditions(data, info, specs[0].width), [s.width for s in specs])
        a = median_ms(lambda enc=enc: imagepipe_core(data, enc))
        c = median_ms(lambda enc=enc: pillow_careful(data, enc))
        e = median_ms(lambda enc=enc, specs=specs, sized=sized: [encode(sized[s.width], s, enc) for s in specs])
        allowed = c / TARGET_VS_PILLOW
        print(f"{effort:<12} {a:7.0f} {c:7.0f} {c / a:5.2f} {allowed:7.0f} {e:13.0f} {allowed - e:18.0f} {a - e:13.0f}")


if __name__ == "__main__":
    sys.exit(main())
