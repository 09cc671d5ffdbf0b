"""4. Scaling: the same number of queued uploads drained by a worker of each concurrency."""

from __future__ import annotations

import time
from pathlib import Path

from .run import Run, new_entity


def measure(run: Run, files: list[Path], levels: list[int]) -> dict[int, float]:
    rates: dict[int, float] = {}
    for c in levels:
        entity = new_entity()
        run.upload_all(files, entity)  # queued: no worker runs
        worker, _ = run.worker(c)
        t0 = None
        while True:
            started, ready = run.counts([entity])
            now = time.perf_counter()
            if t0 is None and started:
                t0 = now
            if ready >= len(files):
                break
            time.sleep(0.02)
        assert t0 is not None
        rates[c] = len(files) / (now - t0)
        run.stack.stop(worker)
        print(f"   concurrency {c}: {rates[c]:.2f} images/s ({len(files)} queued uploads)", flush=True)
    r = rates[2] / rates[1]
    run.results.report(
        "scaling",
        "4. worker concurrency 2 / 1",
        r,
        ">= 1.8",
        r >= 1.8,
        " ".join(f"c={c}: {v:.2f} img/s" for c, v in rates.items()),
        rates=rates,
    )
    return rates
