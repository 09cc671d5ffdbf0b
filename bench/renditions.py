"""Rendition benchmark: imagepipe's core against the libvips limit, Pillow and thumbor, in one run.

    make bench            # or: .venv/bin/python bench/renditions.py [--rounds N] [--no-thumbor]

Inputs: every photo of tests/corpus/photos plus a 50-megapixel JPEG made (once, under
var/bench/) from the 12 MP Olympus photo. For each photo, runs are interleaved (a, b, c, d,
then rotated) so machine noise hits all alike; read the ratios, not the milliseconds.

(a) imagepipe: probe + validate + render the six renditions + placeholders + sha256, exactly
    the worker's core minus storage and database.
(b) reference: bare pyvips written here: one decode with shrink-on-load (the same DCT scaling
    imagepipe uses), cascade 1600 -> 800 -> 300 in memory, the same encoder settings, nothing
    else: the libvips limit.
(c) Pillow, done carefully: draft mode (JPEG DCT scaling), one decode, EXIF transpose,
    LANCZOS cascade, the same encoder settings.
(d) thumbor 7.8 over HTTP on loopback, in its own venv under var/bench/, six requests per
    photo (what a user would run instead). Skipped, with the reason, if it cannot be installed.

Then, each in a fresh process: peak RSS while processing the 50 MP JPEG; and whole-machine
throughput on the 12 MP photo with 2 worker processes (VIPS_CONCURRENCY=1 each), (a) and (b).
Timing targets live here, never in tests.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyvips  # noqa: E402

from pipeline.probe import probe  # noqa: E402
from pipeline.render import render  # noqa: E402
from pipeline.specs import DEFAULT_ENCODER, EncoderSettings  # noqa: E402

CORPUS = ROOT / "tests" / "corpus" / "photos"
BENCH_DIR = ROOT / "var" / "bench"
BIG_SOURCE = "olympus-ep3_4032x3024.jpg"  # the 12 MP photo; also the seed of the 50 MP one
BIG_NAME = "olympus-50mp_8192x6144.jpg"
THUMBOR_VERSION = "7.8.0"
WIDTHS = (1600, 800, 300)

TARGET_CORE_VS_REF = 1.05  # (a) <= 1.05 x (b)
TARGET_VS_PILLOW = 1.15  # on photos >= 3 MP, (c) / (a) >= 1.15 (1.25 retired: docs/benchmarks.md)
TARGET_VS_THUMBOR = 1.5  # on photos >= 3 MP, (d) / (a) >= 1.5
TARGET_THROUGHPUT = 5.2  # images/s, whole machine, 2 worker processes, 12 MP photo (4.50 x the encoder gain)
TARGET_RSS_MB = 150  # peak RSS of a worker process on the 50 MP JPEG


# --- the four implementations ----------------------------------------------------------


def imagepipe_core(data: bytes, enc: EncoderSettings = DEFAULT_ENCODER) -> int:
    result = render(data, probe(data), enc)
    hashlib.sha256(data).hexdigest()
    return sum(len(r.data) for r in result.renditions)


def reference(data: bytes, enc: EncoderSettings = DEFAULT_ENCODER) -> int:
    head = pyvips.Image.new_from_buffer(data, "")
    shrink = 1
    if head.get("vips-loader") == "jpegload_buffer":  # the same DCT scaling imagepipe uses
        turned = head.get_typeof("orientation") and head.get("orientation") in (5, 6, 7, 8)
        width = head.height if turned else head.width
        shrink = next((s for s in (8, 4, 2) if width // s >= WIDTHS[0]), 1)
    if shrink > 1:
        img = pyvips.Image.new_from_buffer(data, "", shrink=shrink, access="sequential").thumbnail_image(
            WIDTHS[0], height=10_000_000, size="down"
        )
    else:
        img = pyvips.Image.thumbnail_buffer(data, WIDTHS[0], height=10_000_000, size="down")
    if img.interpretation != "srgb" or img.format != "uchar":
        img = img.colourspace("srgb").cast("uchar")
    img = img.copy_memory()
    alpha = img.hasalpha()
    total = 0
    names = ("large", "medium", "thumbnail")
    for width, name in zip(WIDTHS, names, strict=True):
        if img.width > width:
            img = img.thumbnail_image(width, height=10_000_000, size="down").copy_memory()
        if alpha:
            total += len(img.pngsave_buffer(compression=enc.png_compression, keep="none"))
        else:
            total += len(
                img.jpegsave_buffer(
                    Q=enc.jpeg_quality,
                    optimize_coding=enc.jpeg_optimize_coding,
                    keep="none",
                    interlace=name in enc.jpeg_progressive,
                    subsample_mode=enc.jpeg_subsample,
                )
            )
        total += len(img.webpsave_buffer(Q=enc.webp_quality, effort=enc.webp_effort, keep="none"))
    return total


def pillow_careful(data: bytes, enc: EncoderSettings = DEFAULT_ENCODER) -> int:
    from PIL import Image, ImageOps

    im = Image.open(io.BytesIO(data))
    orientation = im.getexif().get(0x0112, 1)
    turned = orientation in (5, 6, 7, 8)
    if im.format == "JPEG":
        # DCT scaling: decode at 1/2, 1/4 or 1/8 size, but never below the largest width needed.
        w, h = im.size
        want = min(WIDTHS[0], h if turned else w)
        scale = want / (h if turned else w)
        im.draft("RGB" if im.mode != "CMYK" else "CMYK", (int(w * scale) + 1, int(h * scale) + 1))
    im = ImageOps.exif_transpose(im)
    alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    im = im.convert("RGBA" if alpha else "RGB")
    if alpha and im.getchannel("A").getextrema()[0] == 255:
        im, alpha = im.convert("RGB"), False
    total = 0
    names = ("large", "medium", "thumbnail")
    for width, name in zip(WIDTHS, names, strict=True):
        if im.width > width:
            im = im.resize((width, max(1, round(im.height * width / im.width))), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        if alpha:
            im.save(buf, "PNG", compress_level=enc.png_compression)
        else:
            im.save(
                buf,
                "JPEG",
                quality=enc.jpeg_quality,
                optimize=enc.jpeg_optimize_coding,
                progressive=name in enc.jpeg_progressive,
                subsampling={"auto": 2 if enc.jpeg_quality < 90 else 0, "on": 2, "off": 0}[enc.jpeg_subsample],
            )
        total += buf.tell()
        buf = io.BytesIO()
        im.save(buf, "WEBP", quality=enc.webp_quality, method=enc.webp_effort)
        total += buf.tell()
    return total


class Thumbor:
    """thumbor in its own venv, serving the photo folder through its file loader."""

    def __init__(self, folder: Path, enc: EncoderSettings):
        self.folder, self.enc = folder, enc
        self.venv = BENCH_DIR / "thumbor-venv"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.note = ""

    def install(self) -> bool:
        exe = self.venv / "bin" / "thumbor"
        if not exe.exists():
            print(f"installing thumbor {THUMBOR_VERSION} into {self.venv.relative_to(ROOT)} (once)...", flush=True)
            try:
                subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
                subprocess.run(
                    [str(self.venv / "bin" / "pip"), "install", "-q", f"thumbor=={THUMBOR_VERSION}"],
                    check=True,
                    timeout=900,
                    capture_output=True,
                )
            except (subprocess.SubprocessError, OSError) as exc:
                err = getattr(exc, "stderr", b"") or b""
                self.note = f"thumbor could not be installed: {exc} {err.decode(errors='replace')[-300:]}"
                return False
        return exe.exists()

    def start(self) -> bool:
        if not self.install():
            return False
        conf = BENCH_DIR / "thumbor.conf"
        conf.write_text(
            textwrap.dedent(f"""
            LOADER = "thumbor.loaders.file_loader"
            FILE_LOADER_ROOT_PATH = {str(self.folder)!r}
            STORAGE = "thumbor.storages.no_storage"
            RESULT_STORAGE = None
            ALLOW_UNSAFE_URL = True
            RESPECT_ORIENTATION = True
            PRESERVE_EXIF_INFO = False
            AUTO_WEBP = False
            QUALITY = {self.enc.jpeg_quality}
            WEBP_QUALITY = {self.enc.webp_quality}
            PROGRESSIVE_JPEG = False
            MAX_PIXELS = 200000000
            ENGINE_THREADPOOL_SIZE = 0
        """)
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "thumbor"), "-i", "127.0.0.1", "-p", str(self.port), "-c", str(conf), "-l", "error"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.note = f"thumbor exited: {self.proc.stderr.read().decode(errors='replace')[-400:]}"
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.2)
        self.note = "thumbor did not start listening within 60 s"
        self.stop()
        return False

    def render(self, name: str) -> int:
        import urllib.request

        total = 0
        for width in WIDTHS:
            for fmt in ("jpeg", "webp"):
                url = f"http://127.0.0.1:{self.port}/unsafe/{width}x0/filters:format({fmt}):no_upscale()/{name}"
                with urllib.request.urlopen(url, timeout=120) as resp:
                    total += len(resp.read())
        return total

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# --- inputs ------------------------------------------------------------------------------


def make_50mp(folder: Path) -> Path:
    out = folder / BIG_NAME
    if not out.exists():
        # Buffer loaders only: the first probe blocks every file loader in this process.
        src = pyvips.Image.new_from_buffer((CORPUS / BIG_SOURCE).read_bytes(), "")
        big = src.resize(8192 / src.width, kernel="lanczos3")
        out.write_bytes(big.jpegsave_buffer(Q=90, keep="none"))
    return out


# --- measurements in fresh processes -------------------------------------------------------


def vm_hwm_mb() -> float:
    """Peak resident set size of this process (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb(kind: str, path: Path) -> float:
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["VIPS_CONCURRENCY"] = "1"
        sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / "bench")!r})
        import pyvips
        pyvips.cache_set_max(0)  # as workers/app.py does
        import renditions as b
        data = open({str(path)!r}, "rb").read()
        b.{kind}(data)
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of this
        # (large) benchmark process would report the parent's peak.
        print(b.vm_hwm_mb())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300)
    return float(out.stdout.split()[-1])


def _throughput_worker(kind: str, path: str, start: float, deadline: float, counter) -> None:
    pyvips.cache_set_max(0)
    fn = {"imagepipe_core": imagepipe_core, "reference": reference}[kind]
    data = Path(path).read_bytes()
    fn(data)  # warm up before the clock
    while time.time() < start:  # an image finished before the clock starts is not counted
        time.sleep(0.005)
    done = 0
    while time.time() < deadline:
        fn(data)
        done += 1
    with counter.get_lock():
        counter.value += done


def throughput(kind: str, path: Path, processes: int = 2, seconds: float = 12.0) -> float:
    ctx = mp.get_context("spawn")
    counter = ctx.Value("i", 0)
    start = time.time() + 3.0  # let both processes import and warm up
    deadline = start + seconds
    procs = [ctx.Process(target=_throughput_worker, args=(kind, str(path), start, deadline, counter)) for _ in range(processes)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value / (deadline - start)


# --- report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-thumbor", action="store_true", help="skip (d)")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each throughput run")
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    pyvips.cache_set_max(0)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    enc = DEFAULT_ENCODER

    # thumbor's file loader reads one folder: the photos and the 50 MP JPEG, side by side.
    folder = Path(tempfile.mkdtemp(prefix="photos-", dir=BENCH_DIR))
    for p in CORPUS.iterdir():
        if p.suffix.lower() in (".jpg", ".png", ".webp"):
            shutil.copy(p, folder / p.name)
    big = make_50mp(BENCH_DIR)
    shutil.copy(big, folder / big.name)
    photos = sorted((p for p in folder.iterdir()), key=lambda p: p.stat().st_size)

    import PIL

    thumbor = None if args.no_thumbor else Thumbor(folder, enc)
    thumbor_note = "skipped (--no-thumbor)" if thumbor is None else ""
    if thumbor is not None and not thumbor.start():
        thumbor_note, thumbor = thumbor.note, None

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"python {platform.python_version()}, libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, "
        f"Pillow {PIL.__version__}, thumbor {THUMBOR_VERSION if thumbor else 'n/a'}, "
        f"VIPS_CONCURRENCY={os.environ['VIPS_CONCURRENCY']}, rounds={args.rounds}"
    )
    print(f"encoder: {enc}")
    if thumbor_note:
        print(f"(d) thumbor: {thumbor_note}")
    print()
    print(
        f"{'photo':40} {'MP':>5} {'(a) ms':>8} {'(b) ms':>8} {'(c) ms':>8} {'(d) ms':>8} "
        f"{'a/b':>6} {'c/a':>6} {'d/a':>6} {'(a) img/s/core':>15}"
    )
    kinds = ["a", "b", "c"] + (["d"] if thumbor else [])
    rows = []
    try:
        for photo in photos:
            data = photo.read_bytes()
            info = probe(data)
            fns = {
                "a": lambda d=data: imagepipe_core(d, enc),
                "b": lambda d=data: reference(d, enc),
                "c": lambda d=data: pillow_careful(d, enc),
            }
            if thumbor:
                fns["d"] = lambda n=photo.name: thumbor.render(n)
            for fn in fns.values():
                fn()  # warm-up: first-call costs (imports, thumbor's loader) are not what we compare
            times: dict[str, list[float]] = {k: [] for k in kinds}
            for r in range(args.rounds):
                order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
                for k in order:
                    t0 = time.perf_counter()
                    fns[k]()
                    times[k].append((time.perf_counter() - t0) * 1000)
            med = {k: statistics.median(v) for k, v in times.items()}
            mp_ = info.width * info.height / 1e6
            rows.append((photo.name, mp_, med))
            d_ms = f"{med['d']:8.0f}" if "d" in med else f"{'-':>8}"
            d_ratio = f"{med['d'] / med['a']:6.2f}" if "d" in med else f"{'-':>6}"
            print(
                f"{photo.name[:40]:40} {mp_:5.1f} {med['a']:8.0f} {med['b']:8.0f} {med['c']:8.0f} {d_ms} "
                f"{med['a'] / med['b']:6.2f} {med['c'] / med['a']:6.2f} {d_ratio} {1000 / med['a']:15.1f}",
                flush=True,
            )
    finally:
        if thumbor:
            thumbor.stop()

    def overall(key: str, subset) -> float:
        return sum(r[2][key] for r in subset)

    big_rows = [r for r in rows if r[1] >= 3.0]
    ab = overall("a", rows) / overall("b", rows)
    ca = overall("c", big_rows) / overall("a", big_rows)
    print()
    print("overall (sum of medians):")
    print(f"  (a)/(b) all photos            {ab:5.2f}   target <= {TARGET_CORE_VS_REF}: {verdict(ab <= TARGET_CORE_VS_REF)}")
    print(f"  (c)/(a) photos >= 3 MP        {ca:5.2f}   target >= {TARGET_VS_PILLOW}: {verdict(ca >= TARGET_VS_PILLOW)}")
    if thumbor:
        da = overall("d", big_rows) / overall("a", big_rows)
        print(f"  (d)/(a) photos >= 3 MP        {da:5.2f}   target >= {TARGET_VS_THUMBOR}: {verdict(da >= TARGET_VS_THUMBOR)}")
    else:
        print(f"  (d)/(a)                       n/a    {thumbor_note}")

    print()
    rss = {k: peak_rss_mb(k, folder / BIG_NAME) for k in ("imagepipe_core", "reference", "pillow_careful")}
    print(
        f"peak RSS on the 50 MP JPEG, fresh process: (a) {rss['imagepipe_core']:.0f} MB, "
        f"(b) {rss['reference']:.0f} MB, (c) {rss['pillow_careful']:.0f} MB   "
        f"target (a) <= {TARGET_RSS_MB} MB: {verdict(rss['imagepipe_core'] <= TARGET_RSS_MB)}"
    )
    twelve = folder / BIG_SOURCE
    runs: dict[str, list[float]] = {"imagepipe_core": [], "reference": []}
    for _ in range(2):  # interleaved a, b, a, b: a burst of noise does not land on one side only
        for kind in runs:
            runs[kind].append(throughput(kind, twelve, seconds=args.seconds))
    tput_a, tput_b = (statistics.mean(runs[k]) for k in ("imagepipe_core", "reference"))
    print(
        f"throughput, 2 processes, {BIG_SOURCE}: (a) {tput_a:.2f} img/s, (b) {tput_b:.2f} img/s "
        f"(mean of 2 interleaved runs each: a {runs['imagepipe_core'][0]:.2f}/{runs['imagepipe_core'][1]:.2f}, "
        f"b {runs['reference'][0]:.2f}/{runs['reference'][1]:.2f})   "
        f"target (a) >= {TARGET_THROUGHPUT}: {verdict(tput_a >= TARGET_THROUGHPUT)}"
    )
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
