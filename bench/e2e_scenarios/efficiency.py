"""1. CPU efficiency: what each group of processes spends per image, against what the work itself needs.

- Worker processes' CPU per image (the upload's whole processing: fetch, probe, render, store,
  database, Celery) against pipeline.render's CPU per image for the same files in plain processes
  with no I/O.                                                          target <= 1.05
- The API's CPU per accepted upload and PostgreSQL's CPU per image (the API's rows and the
  worker's) against a plain PUT of the same bytes to the same store: its client's CPU plus the
  store's (boto3 in this process, SeaweedFS).                            reported
- The rate through the API and the workers against the pure render's, as before: on one 2-core
  machine the store, the database and the API share the cores with the workers, so this one
  measures the machine more than our code (docs/benchmarks.md).        reported

CPU is read from /proc per process group (bench/measure/cpu.py), so the figures do not depend on
how busy the machine is; the uploads are the raw-body PUT the web client sends, 4 clients."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from measure.cpu import CpuMeter, pids_named, pids_of_user
from measure.inputs import BENCH_DIR, pure_render
from measure.profile import Profile, print_profile, worker_rules
from stack import children

from .run import Run, new_entity

TARGET = 1.05


def _tree(pid: int) -> list[int]:
    return [pid, *children(pid)]


def plain_puts(run: Run, files: list[Path], clients: int = 4) -> dict[str, float]:
    """The same bytes PUT to the same store by boto3 (what a client uploading straight to S3
    spends): CPU seconds per PUT of this process (the clients) and of SeaweedFS."""
    weed, put = run.stack.weed.process, run.stack.plain_put(clients)
    bodies = [f.read_bytes() for f in files]  # read before the meter starts: a client has its bytes

    put(bodies[0])
    meter = CpuMeter({"client": lambda: [os.getpid()], "store": lambda: _tree(weed.pid) if weed is not None else []})
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(put, bodies))
    used = meter.used()
    return {"client": used["client"] / len(files), "store": used["store"] / len(files)}


def measure(run: Run) -> None:
    files, processes, stack = run.files, run.processes, run.stack
    # The pure render before and after the pipeline, averaged: the machine's drift over the run
    # (another tenant, the CPU's clock) falls on both sides alike.
    before = pure_render(files, processes)
    entity = new_entity()
    worker, _ = run.worker(processes)
    # Warm, as the pure render is: each pool process's first image pays its imports, its store
    # client and the encoders' first calls once, which would otherwise be spread over this run's images.
    warm = new_entity()
    run.upload_all(files[: 2 * processes], warm)
    while run.counts([warm])[1] < 2 * processes:
        time.sleep(0.25)
    weed = stack.weed.process
    meter = CpuMeter({
        "worker processes": lambda: _tree(worker.pid),
        "  of which the main process": lambda: [worker.pid],
        "API (gunicorn)": lambda: _tree(run.api_pid),
        "SeaweedFS": lambda: _tree(weed.pid) if weed is not None else [],
        "PostgreSQL": lambda: pids_of_user("postgres"),
        "Redis": lambda: pids_named("redis-server"),
        "the benchmark's clients": lambda: [os.getpid()],
    })  # fmt: skip
    profile = Profile(worker.pid, BENCH_DIR / "worker-profile-efficiency.txt")  # kept: read it with py-spy's tools
    t0 = time.perf_counter()
    run.upload_all(files, entity)
    while run.counts([entity])[1] < len(files):
        time.sleep(0.25)
    piped = len(files) / (time.perf_counter() - t0)
    cpu = {k: v / len(files) for k, v in meter.used().items()}  # CPU seconds per image
    stacks = profile.stop()
    stack.stop(worker)
    after = pure_render(files, processes)
    pure_rate, pure_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    print(
        f"   pure render CPU per image before the pipeline {before[1] * 1000:.0f} ms, after {after[1] * 1000:.0f} ms",
        flush=True,
    )
    put = plain_puts(run, files)
    put_cpu = put["client"] + put["store"]

    worker_ratio = cpu["worker processes"] / pure_cpu
    api_ratio, db_ratio = cpu["API (gunicorn)"] / put_cpu, cpu["PostgreSQL"] / put_cpu
    ms = {k: round(v * 1000, 1) for k, v in cpu.items()}
    run.results.report(
        "efficiency",
        "1. worker CPU per image / pure render CPU",
        worker_ratio,
        f"<= {TARGET}",
        worker_ratio <= TARGET,
        f"{len(files)} photos: worker processes {ms['worker processes']:.0f} core-ms per image, "
        f"pipeline.render {pure_cpu * 1000:.0f} ({processes} processes each)",
        cpu_ms_per_image=ms,
        pure_cpu_ms_per_image=round(pure_cpu * 1000, 1),
        pure_cpu_ms_before_after=[round(before[1] * 1000, 1), round(after[1] * 1000, 1)],
        plain_put_cpu_ms={k: round(v * 1000, 1) for k, v in put.items()},
    )
    run.results.report(
        "efficiency_api",
        "1. API CPU per upload / plain PUT CPU",
        api_ratio,
        "reported",
        True,
        f"API {ms['API (gunicorn)']:.0f} core-ms per accepted upload; a plain PUT of the same bytes "
        f"{put_cpu * 1000:.0f} (client {put['client'] * 1000:.0f}, store {put['store'] * 1000:.0f})",
    )
    run.results.report(
        "efficiency_db",
        "1. PostgreSQL CPU per image / plain PUT CPU",
        db_ratio,
        "reported",
        True,
        f"PostgreSQL {ms['PostgreSQL']:.0f} core-ms per image (the API's rows and the worker's)",
    )
    run.results.report(
        "pipeline",
        "1. pipeline / pure render (images/s)",
        piped / pure_rate,
        "reported",
        True,
        f"{piped:.2f} img/s through API+worker, {pure_rate:.2f} img/s pipeline.render: the store, the "
        "database and the API share the two cores with the workers",
        pipeline_rate=round(piped, 3),
        pure_rate=round(pure_rate, 3),
    )
    print(
        f"   machine CPU per image (core-ms; pure render: {pure_cpu * 1000:.0f}): "
        + ", ".join(f"{k} {v:.0f}" for k, v in ms.items())
    )
    shares = print_profile("   worker profile during the uploads (all its processes)", stacks, worker_rules())
    if shares:
        run.results.data["efficiency"]["worker_profile"] = shares
