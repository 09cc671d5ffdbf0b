"""The benchmark's photos: distinct variants of the corpus' large photos (made once under
var/bench/), the 5 MB upload, and the pure render they are compared with."""

from __future__ import annotations

import random
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "photos"
BENCH_DIR = ROOT / "var" / "bench"
SOURCES = ("olympus-ep3_4032x3024.jpg", "iphone6_3264x2448.jpg", "flickr-saw_2725x2225.jpg", "canon-sx60_orient6_2048x1536.jpg")
TWELVE_MP = "olympus-ep3_4032x3024.jpg"


def _variant(args: tuple[int, str]) -> str:
    import pyvips

    n, out = args
    rng = random.Random(n)
    src = pyvips.Image.new_from_buffer((CORPUS / SOURCES[n % len(SOURCES)]).read_bytes(), "")
    f = rng.uniform(0.90, 1.0)
    w, h = int(src.width * f), int(src.height * f)
    img = src.crop(rng.randrange(src.width - w + 1), rng.randrange(src.height - h + 1), w, h)
    if rng.random() < 0.5:
        img = img.fliphor()
    Path(out).write_bytes(img.jpegsave_buffer(Q=90, keep="none"))
    return out


def photos(count: int) -> list[Path]:
    folder = BENCH_DIR / "e2e-photos"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo-{n:03d}.jpg" for n in range(count)]
    todo = [(n, str(p)) for n, p in enumerate(paths) if not p.exists()]
    if todo:
        print(f"making {len(todo)} distinct photos under {folder.relative_to(ROOT)} (once)...", flush=True)
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_variant, todo))
    return paths


def five_mb_photo() -> bytes:
    """The 12 MP photo re-encoded at the quality that makes it about 5 MB."""
    out = BENCH_DIR / "e2e-5mb.jpg"
    if not out.exists():
        import pyvips

        src = pyvips.Image.new_from_buffer((CORPUS / TWELVE_MP).read_bytes(), "")
        best = min((src.jpegsave_buffer(Q=q, keep="none") for q in range(90, 100)), key=lambda b: abs(len(b) - 5_000_000))
        out.write_bytes(best)
    return out.read_bytes()


def _render(path: str) -> int:
    from pipeline.probe import probe
    from pipeline.render import render

    data = Path(path).read_bytes()
    return len(render(data, probe(data)).renditions)


def pure_render(files: list[Path], processes: int) -> tuple[float, float]:
    """pipeline.render of `files` in `processes` plain processes, no I/O: (images/s, CPU seconds
    per image its processes used, read from /proc, warm-up excluded)."""
    from measure.cpu import CpuMeter

    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_render, [str(files[0])] * processes * 2))  # imports and first-call costs
        meter = CpuMeter({"render": lambda: list(pool._processes)})  # type: ignore[attr-defined]
        start = time.perf_counter()
        list(pool.map(_render, [str(f) for f in files]))
        elapsed = time.perf_counter() - start
        cpu = meter.used()["render"]
    return len(files) / elapsed, cpu / len(files)
