"""The whole pipeline against its own limits, every figure a ratio measured side by side in one run.

    make bench                   # renditions.py, then this
    .venv/bin/python bench/e2e.py [--scale 0.25] [--plot docs/e2e-stages.png]

The system runs as in the tests and in production, on loopback: PostgreSQL (a database of its
own), Redis (queues of their own), SeaweedFS, the API under gunicorn (2 processes x 8 threads)
and real Celery workers (`imagepipe worker`). The photos are 200 distinct real photos made once
under var/bench/e2e-photos/ from the corpus' four photos of 3 MP and more (windows of 90-100 %,
some mirrored, re-encoded at q90), so no upload is a duplicate of another.

1. Pipeline against pure render: the photos uploaded one by one by 4 clients, first POST to the
   last image ready, against the same photos rendered by pipeline.render in as many plain
   processes as the worker has, no I/O.                                 target >= 0.85
2. Upload acceptance: 16 clients posting a 5 MB photo for 30 s, no worker running; p50/p99 time
   to the 202 against a plain S3 PUT of the same bytes to the same SeaweedFS by 16 clients.
   A py-spy profile of the API processes meanwhile counts samples in pixel decoding.
                                                                        target p99 <= 1.3 x
3. Bulk: one 100-photo request; time until its job has succeeded, against 100 x the mean time of
   a single upload (POST to ready, one at a time) / worker processes.   target <= 1.15
4. Scaling: images/s of a worker with concurrency 2 against 1 on the same queued uploads
   (and 3, 4: what WORKER_CONCURRENCY's default is chosen from).         target >= 1.8 x
5. Memory: peak RSS of the API processes and of the worker processes over 1 000 uploads, in the
   first hundred against the last hundred.                              target within 10 %
6. The core: bench/renditions.py's (a) against careful Pillow (c) on the 12 MP photo, and (a)'s
   whole-machine images/s on 2 processes.                               target >= 1.15 x, >= 5.2

During 5, a py-spy profile of the worker says where its time goes, and the worker's own stage
metrics (imagepipe_processing_seconds) give the time per stage per image, plotted to --plot.
Timing targets live here, never in tests: read the ratios, the milliseconds are this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # as the worker's pool processes run
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402
from stack import Stack, children, post_photo, rss_mb  # noqa: E402

from tests.support.http import wait_for_job  # noqa: E402

CORPUS = ROOT / "tests" / "corpus" / "photos"
BENCH_DIR = ROOT / "var" / "bench"
SOURCES = ("olympus-ep3_4032x3024.jpg", "iphone6_3264x2448.jpg", "flickr-saw_2725x2225.jpg", "canon-sx60_orient6_2048x1536.jpg")
TWELVE_MP = "olympus-ep3_4032x3024.jpg"
RESULTS: dict[str, dict] = {}
WORKER_ENV: dict[str, str] = {}


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(key: str, label: str, ratio: float, target: str, ok: bool, detail: str, **data) -> None:
    RESULTS[key] = {"ratio": round(ratio, 3), "target": target, "met": ok, "detail": detail, **data}
    print(f"{label:44} {ratio:6.2f}   target {target:10} {verdict(ok):8} {detail}", flush=True)


# --- inputs --------------------------------------------------------------------------------


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


def pure_render_rate(files: list[Path], processes: int) -> float:
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_render, [str(files[0])] * processes * 2))  # imports and first-call costs
        start = time.perf_counter()
        list(pool.map(_render, [str(f) for f in files]))
        return len(files) / (time.perf_counter() - start)


# --- the database, polled --------------------------------------------------------------------


class Counts:
    def __init__(self, url: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(url)

    def __call__(self, entity_ids: list[int]) -> tuple[int, int]:
        """(images no longer pending, images ready) of these properties."""
        from sqlalchemy import text

        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT COALESCE(SUM(CASE WHEN status <> 'pending' THEN 1 ELSE 0 END), 0),"
                    " COALESCE(SUM(CASE WHEN status = 'ready' THEN 1 ELSE 0 END), 0)"
                    " FROM images WHERE entity_type = 'properties' AND entity_id IN ("
                    + ",".join(str(int(e)) for e in entity_ids)
                    + ")"
                )
            ).one()
        return int(row[0]), int(row[1])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_entity() -> int:
    return secrets.randbelow(10**12) + 10**6


def upload_all(base: str, token: str, files: list[Path], entity_id: int, clients: int = 4) -> None:
    local = threading.local()

    def one(path: Path) -> None:
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        post_photo(session, base, token, entity_id, path.read_bytes(), path.name)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, files))


# --- profiles ------------------------------------------------------------------------------


def py_spy() -> str | None:
    found = shutil.which("py-spy") or (
        str(Path(sys.executable).parent / "py-spy") if (Path(sys.executable).parent / "py-spy").exists() else None
    )
    return found


class Profile:
    """py-spy sampling a process and its children (collapsed stacks), without stopping them."""

    def __init__(self, pid: int, out: Path, rate: int = 47):
        self.out, self.proc = out, None
        exe = py_spy()
        if exe:
            self.proc = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(pid),
                    "--subprocesses",
                    "--nonblocking",
                    "--rate",
                    str(rate),
                    "--format",
                    "raw",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def stop(self) -> Counter | None:
        if self.proc is None:
            return None
        self.proc.send_signal(2)  # SIGINT: py-spy writes what it has
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        stacks: Counter = Counter()
        if self.out.exists():
            for line in self.out.read_text(errors="replace").splitlines():
                stack, _, n = line.rpartition(" ")
                if stack and n.isdigit():
                    stacks[stack] += int(n)
        return stacks


# Where a worker's sample is spent, by the first rule its stack matches.
WORKER_RULES = [
    ("store (the I/O threads' writes)", ("_write (services/images/process.py", "put_all")),
    ("fetch (prefetch thread)", ("_read (services/images/process.py",)),
    ("encode jpeg (Pillow)", ("JpegImagePlugin",)),
    ("encode webp (Pillow)", ("WebPImagePlugin",)),
    ("encode png (libvips)", ("pngsave",)),
    ("encode other", ("encoders.py",)),
    ("placeholders", ("placeholders.py",)),
    ("resize", ("cascade (",)),
    ("decode", ("decode_for_renditions",)),
    ("probe", ("pipeline/probe.py",)),
    ("database", ("sqlalchemy", "psycopg2")),
    ("broker", ("kombu", "redis/")),
    ("celery / billiard", ("celery/", "billiard/")),
]
API_DECODE = ("pyvips", "PIL/", "pipeline/render.py", "pipeline/probe.py", "pipeline/encoders.py")
API_RULES = [
    ("pixel decoding", API_DECODE),
    ("store put (botocore)", ("botocore", "boto3", "s3transfer")),
    ("sha256 / sniff", ("_digest", "sniff.py")),
    ("multipart parsing", ("formparser", "multipart")),
    ("database", ("sqlalchemy", "psycopg2")),
    ("broker", ("kombu", "redis/", "celery/")),
    ("gunicorn / werkzeug", ("gunicorn", "werkzeug")),
]


def classify(stacks: Counter, rules) -> Counter:
    out: Counter = Counter()
    for stack, n in stacks.items():
        out[next((name for name, needles in rules if any(x in stack for x in needles)), "other")] += n
    return out


def leaf_functions(stacks: Counter, top: int = 8) -> list[tuple[str, int]]:
    leaves: Counter = Counter()
    for stack, n in stacks.items():
        leaves[stack.rsplit(";", 1)[-1]] += n
    return leaves.most_common(top)


def print_profile(title: str, stacks: Counter | None, rules) -> dict:
    if stacks is None:
        print(f"{title}: py-spy not found (pip install py-spy); no profile")
        return {}
    total = sum(stacks.values()) or 1
    shares = classify(stacks, rules)
    print(f"{title}: {total} samples")
    for name, n in shares.most_common():
        print(f"    {name:28} {100 * n / total:5.1f} %")
    print("    hottest functions:", "; ".join(f"{f} {100 * n / total:.1f}%" for f, n in leaf_functions(stacks)))
    return {name: round(n / total, 4) for name, n in shares.items()} | {"samples": total}


# --- worker metrics --------------------------------------------------------------------------

STAGE_LINE = re.compile(r'^imagepipe_processing_seconds_(sum|count)\{stage="([a-z_]+)"\} ([0-9.e+-]+)$')


def stage_totals(port: int) -> dict[str, tuple[float, float]]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    sums: dict[str, list[float]] = {}
    for line in text.splitlines():
        m = STAGE_LINE.match(line)
        if m:
            sums.setdefault(m.group(2), [0.0, 0.0])[0 if m.group(1) == "sum" else 1] += float(m.group(3))
    return {k: (v[0], v[1]) for k, v in sums.items()}


def stage_means(before: dict, after: dict, images: int) -> dict[str, float]:
    """Seconds per image in each stage between two scrapes."""
    return {stage: (after[stage][0] - before.get(stage, (0.0, 0.0))[0]) / images for stage in after}


STAGE_LABELS = {"store": "store (what the encodes\ndid not hide)", "fetch": "fetch (what the claim\ndid not hide)"}
PLOT_STAGES = [
    "fetch",
    "probe",
    "decode",
    "resize",
    "encode_jpeg",
    "encode_webp",
    "encode_png",
    "placeholders",
    "store",
    "commit",
]


def plot(means: dict[str, float], wall_ms: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in PLOT_STAGES if s in means]
    values = [means[s] * 1000 for s in stages]
    inside = means.get("total", 0) * 1000 - sum(values)
    stages = [STAGE_LABELS.get(s, s) for s in stages] + ["rest of the task"]
    values.append(max(inside, 0))
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    bars = ax.barh(stages[::-1], values[::-1], color=["#8a8a8a"] + ["#3b6ea8"] * (len(stages) - 1))
    for bar, v in zip(bars, values[::-1], strict=True):
        ax.text(bar.get_width() + 2, bar.get_y() + bar.get_height() / 2, f"{v:.0f} ms", va="center", fontsize=9)
    ax.set_xlabel("milliseconds per image, in one worker process")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, max(values) * 1.18)
    ax.spines[["top", "right"]].set_visible(False)
    fig.text(0.01, 0.01, f"whole machine: one image every {wall_ms:.0f} ms end to end", fontsize=8, color="#555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"plot: {path}")


# --- where the machine's CPU goes -------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def machine_seconds() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK, idle / TICK


def pids_of_user(user: str) -> list[int]:
    out = subprocess.run(["ps", "-u", user, "-o", "pid="], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class CpuMeter:
    """CPU seconds used by each part of the system between two readings."""

    def __init__(self, stack: Stack, api_pid: int, worker_pid: int):
        tree = lambda pid: [pid, *children(pid)]  # noqa: E731
        self.groups = {
            "worker processes": lambda: tree(worker_pid),
            "API (gunicorn)": lambda: tree(api_pid),
            "SeaweedFS": lambda: tree(stack.weed.process.pid),
            "PostgreSQL": lambda: pids_of_user("postgres"),
            "Redis": lambda: [
                int(p) for p in subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True).stdout.split()
            ],
            "the benchmark's clients": lambda: [os.getpid()],
        }
        self.start = self._read()

    def _read(self) -> dict[str, dict[int, float] | tuple[float, float]]:
        return {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()} | {
            "machine": machine_seconds()
        }

    def used(self) -> dict[str, float]:
        end = self._read()
        out = {name: sum(v - self.start[name].get(pid, 0.0) for pid, v in end[name].items()) for name in self.groups}
        busy, idle = (end["machine"][i] - self.start["machine"][i] for i in (0, 1))
        out["other processes"] = max(0.0, busy - sum(out.values()))
        out["idle"] = idle
        return out


# --- the measurements ----------------------------------------------------------------------


def acceptance(stack: Stack, base: str, api_pid: int, seconds: float, work: Path) -> None:
    """2. Uploads to the 202 against plain PUTs of the same bytes, no worker running."""
    import boto3
    from botocore.config import Config

    photo = five_mb_photo()
    token = stack.token()
    clients = 16

    def hammer(call) -> list[float]:
        times: list[float] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def loop() -> None:
            session = requests.Session()
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                call(session)
                with lock:
                    times.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=loop) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return times

    s = stack.settings
    s3 = boto3.client(
        "s3",
        endpoint_url=s.aws_s3_endpoint_url,
        aws_access_key_id=s.aws_access_key_id,
        aws_secret_access_key=s.aws_secret_access_key,
        region_name=s.aws_region,
        config=Config(max_pool_connections=clients, s3={"addressing_style": "path"}),
    )

    def put(_session) -> None:
        s3.put_object(
            Bucket=s.aws_s3_bucket, Key=f"staging/bench-put-{secrets.token_hex(8)}", Body=photo, ContentType="image/jpeg"
        )

    def post(session) -> None:
        post_photo(session, base, token, new_entity(), photo)

    put(None)
    post(requests.Session())  # both paths warm
    profile = Profile(api_pid, work / "api-profile.txt")
    posts = hammer(post)
    stacks = profile.stop()
    puts = hammer(put)
    stack.purge_queues()  # nothing will process these uploads

    def q(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if p < 100 else max(values)

    p50, p99 = q(posts, 50), q(posts, 99)
    b50, b99 = q(puts, 50), q(puts, 99)
    report(
        "acceptance",
        "2. upload p99 to 202 / plain PUT p99",
        p99 / b99,
        "<= 1.3",
        p99 / b99 <= 1.3,
        f"POST p50 {p50 * 1000:.0f} ms p99 {p99 * 1000:.0f} ms ({len(posts)} uploads); "
        f"PUT p50 {b50 * 1000:.0f} ms p99 {b99 * 1000:.0f} ms ({len(puts)}); p50 ratio {p50 / b50:.2f}",
        post_ms=[round(p50 * 1000), round(p99 * 1000)],
        put_ms=[round(b50 * 1000), round(b99 * 1000)],
        uploads=len(posts),
        puts=len(puts),
        photo_bytes=len(photo),
    )
    shares = print_profile("   API profile during the uploads", stacks, API_RULES)
    if stacks is not None:
        decoding = sum(n for st, n in stacks.items() if any(x in st for x in API_DECODE))
        print(f"    samples in pixel decoding (pyvips, Pillow, pipeline.render/probe): {decoding}")
        RESULTS["acceptance"]["api_profile"] = shares | {"decoding_samples": decoding}


def scaling(stack: Stack, base: str, files: list[Path], counts: Counts, levels: list[int]) -> dict[int, float]:
    """4. The same number of queued uploads drained by a worker of each concurrency."""
    token = stack.token()
    rates: dict[int, float] = {}
    for c in levels:
        entity = new_entity()
        upload_all(base, token, files, entity)  # queued: no worker runs
        worker, _ = stack.worker(c, **WORKER_ENV)
        t0 = None
        while True:
            started, ready = counts([entity])
            now = time.perf_counter()
            if t0 is None and started:
                t0 = now
            if ready >= len(files):
                break
            time.sleep(0.02)
        rates[c] = len(files) / (now - t0)
        stack.stop(worker)
        print(f"   concurrency {c}: {rates[c]:.2f} images/s ({len(files)} queued uploads)", flush=True)
    r = rates[2] / rates[1]
    report(
        "scaling",
        "4. worker concurrency 2 / 1",
        r,
        ">= 1.8",
        r >= 1.8,
        " ".join(f"c={c}: {v:.2f} img/s" for c, v in rates.items()),
        rates=rates,
    )
    return rates


def bulk(stack: Stack, base: str, files: list[Path], singles: list[Path], processes: int) -> None:
    """3. One request of len(files) photos against single uploads, one at a time."""
    token = stack.token()
    session = requests.Session()
    one = []
    for path in singles:
        t0 = time.perf_counter()
        job = post_photo(session, base, token, new_entity(), path.read_bytes(), path.name)
        wait_for_job(base, auth(token), job["job"]["status_url"], 600, poll_s=0.02, session=session)
        one.append(time.perf_counter() - t0)
    single = statistics.mean(one)
    import io

    t0 = time.perf_counter()
    r = session.post(
        f"{base}/api/v1/properties/{new_entity()}/images",
        headers={"Authorization": f"Bearer {token}"},
        files=[("files", (p.name, io.BytesIO(p.read_bytes()), "image/jpeg")) for p in files],
        timeout=600,
    )
    if r.status_code != 202:
        raise RuntimeError(f"batch refused: {r.status_code} {r.text[:300]}")
    accepted = time.perf_counter() - t0
    status = wait_for_job(base, auth(token), r.json()["job"]["status_url"], 600, poll_s=0.05, session=session)["status"]
    batch = time.perf_counter() - t0
    ideal = len(files) * single / processes
    report(
        "bulk",
        f"3. {len(files)}-photo batch / ({len(files)} x single / {processes})",
        batch / ideal,
        "<= 1.15",
        batch / ideal <= 1.15 and status == "succeeded",
        f"batch {batch:.1f} s ({status}; the request itself {accepted:.1f} s), single {single * 1000:.0f} ms "
        f"(mean of {len(one)}, POST to ready)",
        batch_s=round(batch, 2),
        request_s=round(accepted, 2),
        single_ms=round(single * 1000),
    )


def pipeline_vs_render(stack: Stack, base: str, api_pid: int, files: list[Path], counts: Counts, processes: int) -> None:
    """1. The photos through the API and the workers, against pipeline.render alone."""
    token = stack.token()
    entity = new_entity()
    worker, _ = stack.worker(processes, **WORKER_ENV)
    meter = CpuMeter(stack, api_pid, worker.pid)
    t0 = time.perf_counter()
    upload_all(base, token, files, entity)
    while counts([entity])[1] < len(files):
        time.sleep(0.02)
    piped = len(files) / (time.perf_counter() - t0)
    cpu = meter.used()
    stack.stop(worker)
    pure = pure_render_rate(files, processes)
    report(
        "pipeline",
        "1. pipeline / pure render",
        piped / pure,
        ">= 0.85",
        piped / pure >= 0.85,
        f"{len(files)} photos: {piped:.2f} img/s through API+worker, {pure:.2f} img/s pipeline.render "
        f"({processes} processes each)",
        pipeline_rate=round(piped, 3),
        pure_rate=round(pure, 3),
        cpu_ms_per_image={k: round(v / len(files) * 1000, 1) for k, v in cpu.items()},
        pure_cpu_ms_per_image=round(processes / pure * 1000, 1),
    )
    print(
        f"   machine CPU per image (core-ms; pure render: {processes / pure * 1000:.0f}): "
        + ", ".join(f"{k} {v / len(files) * 1000:.0f}" for k, v in cpu.items())
    )


def memory(
    stack: Stack,
    base: str,
    api_pid: int,
    files: list[Path],
    total: int,
    counts: Counts,
    processes: int,
    work: Path,
    plot_path: Path | None,
) -> None:
    """5. Peak RSS over `total` uploads, first hundred against last hundred; the worker's profile."""
    token = stack.token()
    worker, port = stack.worker(processes, **WORKER_ENV)
    window = max(10, total // 10)
    entities = [new_entity() for _ in range(-(-total // len(files)))]
    done = [0]
    samples: list[tuple[int, str, float]] = []  # (images ready, role, MB)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            n = done[0]
            for pid in [api_pid, *children(api_pid)]:
                if (mb := rss_mb(pid)) is not None:
                    samples.append((n, "api", mb))
            for pid in children(worker.pid):
                if (mb := rss_mb(pid)) is not None:
                    samples.append((n, "worker pool", mb))
            if (mb := rss_mb(worker.pid)) is not None:
                samples.append((n, "worker main", mb))
            time.sleep(0.2)

    def count() -> None:
        while not stop.is_set():
            done[0] = counts(entities)[1]
            time.sleep(0.1)

    work_list = [(entities[i // len(files)], files[i % len(files)]) for i in range(total)]
    sampler, counter = threading.Thread(target=sample), threading.Thread(target=count)
    sampler.start()
    counter.start()
    before = stage_totals(port)
    profile = Profile(worker.pid, work / "worker-profile.txt")
    t0 = time.perf_counter()
    posted = [0]
    lock = threading.Lock()

    def feeder() -> None:
        session = requests.Session()
        while True:
            with lock:
                i = posted[0]
                if i >= total:
                    return
                posted[0] += 1
            while i - done[0] > 4 * processes:  # keep a few ahead of the worker, as a steady day has
                time.sleep(0.01)
            entity, path = work_list[i]
            post_photo(session, base, token, entity, path.read_bytes(), path.name)

    feeders = [threading.Thread(target=feeder) for _ in range(4)]
    for f in feeders:
        f.start()
    for f in feeders:
        f.join()
    while done[0] < total:
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    stacks = profile.stop()
    after = stage_totals(port)
    stop.set()
    sampler.join()
    counter.join()
    stack.stop(worker)

    lines = []
    ok = True
    for role in ("api", "worker pool", "worker main"):
        first = max((mb for n, r, mb in samples if r == role and n < window), default=0.0)
        last = max((mb for n, r, mb in samples if r == role and n >= total - window), default=0.0)
        growth = last / first if first else float("nan")
        ok = ok and growth <= 1.10
        lines.append((role, first, last, growth))
    worst = max(g for *_, g in lines)
    report(
        "memory",
        f"5. peak RSS last {window} / first {window} images",
        worst,
        "<= 1.10",
        ok,
        "; ".join(f"{role} {a:.0f} -> {b:.0f} MB" for role, a, b, _ in lines),
        peaks={role: [round(a), round(b)] for role, a, b, _ in lines},
        images=total,
        rate=round(total / elapsed, 3),
    )
    shares = print_profile("   worker profile (pool processes, on CPU)", stacks, WORKER_RULES)
    means = stage_means(before, after, total)
    print(
        "   time per image in each stage (worker metrics, one process): "
        + ", ".join(f"{s} {means[s] * 1000:.0f} ms" for s in PLOT_STAGES + ["total"] if means.get(s))
    )
    RESULTS["stages_ms"] = {s: round(v * 1000, 1) for s, v in means.items()}
    RESULTS["worker_profile"] = shares
    if plot_path is not None:
        plot(
            means,
            elapsed / total * 1000,
            plot_path,
            f"Where an image's time goes: {total} uploads of 3-12 MP photos, {processes} worker processes",
        )


def core(seconds: float) -> None:
    """6. bench/renditions.py's core against careful Pillow, and whole-machine throughput."""
    import renditions as r

    data = (CORPUS / TWELVE_MP).read_bytes()
    times: dict[str, list[float]] = {"a": [], "c": []}
    fns = {"a": lambda: r.imagepipe_core(data), "c": lambda: r.pillow_careful(data)}
    for fn in fns.values():
        fn()
    for n in range(9):
        for k in ("a", "c") if n % 2 else ("c", "a"):
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    a, c = statistics.median(times["a"]), statistics.median(times["c"])
    report(
        "core",
        "6. careful Pillow / imagepipe core (12 MP)",
        c / a,
        ">= 1.15",
        c / a >= 1.15,
        f"imagepipe {a * 1000:.0f} ms, Pillow {c * 1000:.0f} ms (medians of 9, interleaved)",
        imagepipe_ms=round(a * 1000),
        pillow_ms=round(c * 1000),
    )
    rate = r.throughput("imagepipe_core", CORPUS / TWELVE_MP, processes=2, seconds=max(seconds, 6.0))
    report(
        "throughput",
        "6. core images/s, 2 processes (12 MP)",
        rate,
        ">= 5.2",
        rate >= 5.2,
        "pipeline.render of the 12 MP photo, whole machine",
        rate=round(rate, 3),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the image counts and durations")
    parser.add_argument("--plot", type=Path, default=BENCH_DIR / "e2e-stages.png")
    parser.add_argument("--only", default="123456", help="which measurements, e.g. 14")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the workers (e.g. MALLOC_ARENA_MAX=2); repeatable",
    )
    args = parser.parse_args()
    n = lambda count: max(8, int(count * args.scale))  # noqa: E731
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    files = photos(n(200))
    work = Path(tempfile.mkdtemp(prefix="e2e-", dir=BENCH_DIR))
    global WORKER_ENV
    WORKER_ENV = dict(item.split("=", 1) for item in args.worker_env)
    stack = Stack(work, MAX_FILES_PER_REQUEST="100").start()
    try:
        if not stack.on_postgres_and_redis:
            print(
                "note: PostgreSQL or Redis did not answer on 127.0.0.1; running on SQLite and the filesystem "
                "broker, which is not what the targets are about"
            )
        import PIL
        import pyvips

        settings = stack.settings
        processes = settings.worker_processes
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
            f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, Pillow {PIL.__version__}; "
            f"API 2 x {settings.api_threads} threads, WORKER_CONCURRENCY={processes}, "
            f"STORE_PUT_CONCURRENCY={settings.store_put_concurrency}; {len(files)} photos, "
            f"{sum(f.stat().st_size for f in files) / len(files) / 1e6:.1f} MB each on average"
        )
        api, base = stack.api(2)
        counts = Counts(settings.database_url)
        if "2" in args.only:
            acceptance(stack, base, api.pid, 30 * args.scale, work)
        if "4" in args.only:
            scaling(stack, base, files[: n(40)], counts, [1, 2, 3, 4])
        if "3" in args.only:
            worker, _ = stack.worker(processes, **WORKER_ENV)
            bulk(stack, base, files[: n(100)], files[: n(100)][::10], processes)
            stack.stop(worker)
        if "1" in args.only:
            pipeline_vs_render(stack, base, api.pid, files, counts, processes)
        if "5" in args.only:
            memory(stack, base, api.pid, files, n(1000), counts, processes, work, args.plot)
        stack.stop(api)
        if "6" in args.only:
            core(12 * args.scale)
        out = BENCH_DIR / "e2e.json"
        out.write_text(json.dumps(RESULTS, indent=2, default=str))
        print(f"results: {out.relative_to(ROOT)}")
    finally:
        stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
