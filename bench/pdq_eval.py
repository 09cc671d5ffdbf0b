"""How far apart PDQ puts a photo and its altered copies, and how close it puts different photos:
the evaluation the reuse and blocklist thresholds are chosen from (docs/benchmarks.md).

For each distinct picture of the corpus (tests/corpus: photos/ and the distinct pictures of
accept/), the variants a lifted listing photo goes through: resized to 1024 px, recompressed
(JPEG q60), cropped by 5 % and 10 %, a corner logo (an agency's watermark: 20 % of the width),
mirrored; and the same picture in another file (the corpus' EXIF-orientation and format
copies). Negatives: every pair of different pictures, with their variants. Prints, per distance
threshold, the recall per variant and the false matches.

    .venv/bin/python bench/pdq_eval.py            # the table of docs/benchmarks.md
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.perceptual import PerceptualHash, hamming, pdq  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
# One file per distinct picture (copies of the same picture are `SAME` below).
PICTURES = sorted((CORPUS / "photos").glob("*.*"))
PICTURES = [p for p in PICTURES if p.suffix != ".md"] + [
    CORPUS / "accept" / name
    for name in (
        "libvips-1.webp",
        "libvips-sample-xyb.jpg",
        "libvips-ultra-hdr.jpg",
        "pillow-pil_sample_cmyk.jpg",
        "thumbor-image.webp",
    )
]
# The same picture in another file: (original, copy).
SAME = [
    (CORPUS / "accept" / "pillow-hopper_orientation_2.jpg", CORPUS / "accept" / f"pillow-hopper_orientation_{n}.{ext}")
    for n in range(3, 9)
    for ext in ("jpg", "webp")
] + [
    (CORPUS / "accept" / "thumbor-image.webp", CORPUS / "accept" / "thumbor-image.avif"),
    (CORPUS / "accept" / "thumbor-image.webp", CORPUS / "accept" / "thumbor-image.heic"),
]
THRESHOLDS = (4, 8, 12, 15, 20, 24, 31, 40, 48)


def load(path: Path) -> pyvips.Image:
    if path.suffix in (".heic",):
        from pipeline.render import _heic_image

        return _heic_image(path.read_bytes())
    img = pyvips.Image.new_from_file(str(path)).autorot()
    if img.interpretation == "cmyk":
        img = img.icc_transform("srgb", input_profile="cmyk")
    if img.hasalpha():
        img = img.flatten(background=[255] * (img.bands - 1))
    return img.colourspace("srgb").copy_memory()


def variants(img: pyvips.Image) -> dict[str, pyvips.Image]:
    small = img.thumbnail_image(1024, height=1024, size="down") if max(img.width, img.height) > 1024 else img
    w, h = img.width, img.height

    def crop(frac: float) -> pyvips.Image:
        dx, dy = int(w * frac / 2), int(h * frac / 2)
        return img.crop(dx, dy, w - 2 * dx, h - 2 * dy)

    logo_w, logo_h = max(8, w // 5), max(4, h // 10)
    logo = (
        pyvips.Image.black(logo_w, logo_h, bands=3)
        .new_from_image([255, 255, 255])
        .draw_rect([200, 30, 30], logo_w // 10, logo_h // 5, logo_w * 8 // 10, logo_h * 3 // 5, fill=True)
    )
    return {
        "resized 1024": small,
        "JPEG q60": pyvips.Image.new_from_buffer(small.jpegsave_buffer(Q=60), ""),
        "crop 5 %": crop(0.05),
        "crop 10 %": crop(0.10),
        "corner logo": img.insert(logo.cast(img.format), w - logo_w - w // 50, h - logo_h - h // 50),
        "mirrored": img.fliphor(),
    }


def distance(a: PerceptualHash, b: PerceptualHash, mirror: bool) -> int:
    d = hamming(a.hex, b.hex)
    return min(d, hamming(a.mirror, b.hex)) if mirror else d


MIN_QUALITY = 50  # PDQ_MIN_QUALITY: flatter pictures are never matched, so not evaluated


def main() -> None:
    originals: dict[Path, PerceptualHash] = {}
    altered: dict[str, list[tuple[Path, PerceptualHash]]] = {}
    for path in PICTURES:
        img = load(path)
        originals[path] = pdq(img)
        if originals[path].quality < MIN_QUALITY:
            print(f"{path.name}: quality {originals[path].quality} < {MIN_QUALITY}, never matched: left out")
            del originals[path]
            continue
        for name, v in variants(img).items():
            altered.setdefault(name, []).append((path, pdq(v)))
    for a in dict.fromkeys(a for a, _ in SAME):
        if a not in originals and (h := pdq(load(a))).quality >= MIN_QUALITY:
            originals[a] = h
    altered["same picture, other file"] = [(a, pdq(load(b))) for a, b in SAME if a in originals]

    qualities = [h.quality for h in originals.values()]
    print(f"{len(originals)} pictures, quality {min(qualities)}-{max(qualities)}")
    negatives = []
    every = [(p, h) for p, h in originals.items()] + [item for items in altered.values() for item in items]
    for (pa, ha), (pb, hb) in itertools.combinations(every, 2):
        if pa != pb and not any({pa, pb} == {x, y} for x, y in SAME):
            negatives.append((ha, hb))
    for mirror in (False, True):
        print()
        print("with the mirror's hash looked up too" if mirror else "the hash alone")
        header = "| variant | " + " | ".join(f"≤ {t}" for t in THRESHOLDS) + " | median |"
        print(header)
        print("|---" * (len(THRESHOLDS) + 2) + "|")
        for name, items in altered.items():
            ds = sorted(distance(originals[p], h, mirror) for p, h in items)
            cells = [f"{sum(d <= t for d in ds) / len(ds):.0%}" for t in THRESHOLDS]
            print(f"| {name} ({len(ds)}) | " + " | ".join(cells) + f" | {ds[len(ds) // 2]} |")
        nd = sorted(distance(a, b, mirror) for a, b in negatives)
        cells = [str(sum(d <= t for d in nd)) for t in THRESHOLDS]
        print(f"| false matches (of {len(nd)} pairs) | " + " | ".join(cells) + f" | {nd[len(nd) // 2]} |")
        print(f"closest different pictures: {nd[:5]}")


if __name__ == "__main__":
    main()
