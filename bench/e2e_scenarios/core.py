"""6. The core: bench/renditions.py's (a) against careful Pillow (c) on the 12 MP photo, and (a)'s
whole-machine images/s on 2 processes."""

from __future__ import annotations

import statistics
import time

import renditions as r
from measure.inputs import CORPUS, TWELVE_MP
from measure.results import Results


def measure(results: Results, seconds: float) -> None:
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
    results.report(
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
    results.report(
        "throughput",
        "6. core images/s, 2 processes (12 MP)",
        rate,
        ">= 5.2",
        rate >= 5.2,
        "pipeline.render of the 12 MP photo, whole machine",
        rate=round(rate, 3),
    )
