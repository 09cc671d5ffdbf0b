"""1. The photos through the API and the workers, against pipeline.render alone: the rate, and the
CPU each group of processes spent per image."""

from __future__ import annotations

import os
import time

from measure.cpu import CpuMeter, pids_named, pids_of_user
from measure.inputs import pure_render_rate
from stack import children

from .run import Run, new_entity


def measure(run: Run) -> None:
    files, processes, stack = run.files, run.processes, run.stack
    entity = new_entity()
    worker, _ = run.worker(processes)

    def tree(pid: int) -> list[int]:
        return [pid, *children(pid)]

    weed = stack.weed.process
    meter = CpuMeter({
        "worker processes": lambda: tree(worker.pid),
        "API (gunicorn)": lambda: tree(run.api_pid),
        "SeaweedFS": lambda: tree(weed.pid) if weed is not None else [],
        "PostgreSQL": lambda: pids_of_user("postgres"),
        "Redis": lambda: pids_named("redis-server"),
        "the benchmark's clients": lambda: [os.getpid()],
    })  # fmt: skip
    t0 = time.perf_counter()
    run.upload_all(files, entity)
    while run.counts([entity])[1] < len(files):
        time.sleep(0.02)
    piped = len(files) / (time.perf_counter() - t0)
    cpu = meter.used()
    stack.stop(worker)
    pure = pure_render_rate(files, processes)
    run.results.report(
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
