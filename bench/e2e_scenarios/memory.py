"""5. Memory: peak RSS over many uploads, the first hundred against the last hundred; meanwhile the
worker's profile and its stage metrics (time per stage per image, plotted)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests
from measure.profile import Profile, print_profile, worker_rules
from measure.stages import PLOT_STAGES, plot, stage_means, stage_totals
from stack import children, post_photo, rss_mb

from .run import Run, new_entity


def measure(run: Run, total: int, plot_path: Path | None) -> None:
    files, processes, api_pid = run.files, run.processes, run.api_pid
    token = run.stack.token()
    worker, port = run.worker(processes)
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
            done[0] = run.counts(entities)[1]
            time.sleep(0.1)

    work_list = [(entities[i // len(files)], files[i % len(files)]) for i in range(total)]
    sampler, counter = threading.Thread(target=sample), threading.Thread(target=count)
    sampler.start()
    counter.start()
    before = stage_totals(port)
    profile = Profile(worker.pid, run.work / "worker-profile.txt")
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
            post_photo(session, run.base, token, entity, path.read_bytes(), path.name)

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
    run.stack.stop(worker)

    lines = []
    ok = True
    for role in ("api", "worker pool", "worker main"):
        first = max((mb for n, r, mb in samples if r == role and n < window), default=0.0)
        last = max((mb for n, r, mb in samples if r == role and n >= total - window), default=0.0)
        growth = last / first if first else float("nan")
        ok = ok and growth <= 1.10
        lines.append((role, first, last, growth))
    worst = max(g for *_, g in lines)
    run.results.report(
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
    shares = print_profile("   worker profile (pool processes, on CPU)", stacks, worker_rules())
    means = stage_means(before, after, total)
    print(
        "   time per image in each stage (worker metrics, one process): "
        + ", ".join(f"{s} {means[s] * 1000:.0f} ms" for s in PLOT_STAGES + ["total"] if means.get(s))
    )
    run.results.note("stages_ms", {s: round(v * 1000, 1) for s, v in means.items()})
    run.results.note("worker_profile", shares)
    if plot_path is not None:
        plot(
            means,
            elapsed / total * 1000,
            plot_path,
            f"Where an image's time goes: {total} uploads of 3-12 MP photos, {processes} worker processes",
        )
