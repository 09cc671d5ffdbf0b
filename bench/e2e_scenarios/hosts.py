"""7. Worker hosts: the same uploads drained by one worker host, then by two, each host a network
namespace of its own running one worker process (tests/hosts/cluster.py: the services, the API
and the workers on hosts of their own, on a private bridge, as `make test-hosts` runs them).

On this 2-core machine two hosts share the same two cores as two processes on one host do, so the
ratio says that the work splits across hosts (both take tasks, none is processed twice), not what
a second machine would add; the CPU each worker host spent per image says the same work costs
the same wherever it runs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from measure.cpu import CpuMeter
from measure.results import Results

from .run import new_entity


def measure(results: Results, files: list[Path], folder: Path) -> None:
    from tests.hosts.lab import why_not

    reason = why_not()
    if reason:
        print(f"7. worker hosts: skipped, {reason}")
        return
    from tests.hosts.cluster import running

    data = [f.read_bytes() for f in files]
    folder.mkdir(parents=True, exist_ok=True)
    rates: dict[int, float] = {}
    cpu_ms: dict[int, dict[str, float]] = {}
    claimed_again: dict[int, int] = {}
    with running(folder) as c:

        def send(entity: int, batch: list[bytes]) -> None:
            with ThreadPoolExecutor(4) as pool:
                ids = list(pool.map(lambda d: c.upload(entity, d)[0], batch))
            if None in ids:
                raise RuntimeError("an upload was not accepted")

        def ready(entity: int) -> int:
            return c.outcome(entity)["statuses"].get("ready", 0)

        for hosts in (["w1"], ["w1", "w2"]):
            for name in hosts:
                c.start_worker(name)
            warm = new_entity()  # each worker's first images pay its imports and first calls
            send(warm, data[: 2 * len(hosts)])
            while ready(warm) < 2 * len(hosts):
                time.sleep(0.25)
            entity = new_entity()
            meter = CpuMeter({name: c.lab[name].pids for name in hosts})
            t0 = time.perf_counter()
            sender = threading.Thread(target=send, args=(entity, data))
            sender.start()
            while ready(entity) < len(data):
                time.sleep(0.25)
            elapsed = time.perf_counter() - t0
            sender.join()
            used = meter.used()
            n = len(hosts)
            rates[n] = len(data) / elapsed
            cpu_ms[n] = {name: round(used[name] / len(data) * 1000, 1) for name in hosts}
            claimed_again[n] = c.outcome(entity)["claimed_again"]
            for name in hosts:
                c.lab[name].kill_all()
            print(
                f"   {n} worker host(s): {rates[n]:.2f} images/s ({len(data)} uploads); worker CPU per image "
                + ", ".join(f"{h} {v:.0f} ms" for h, v in cpu_ms[n].items()),
                flush=True,
            )
    ratio = rates[2] / rates[1]
    results.report(
        "hosts",
        "7. two worker hosts / one (images/s)",
        ratio,
        "reported",
        True,
        f"1 host {rates[1]:.2f} img/s, 2 hosts {rates[2]:.2f} img/s: both hosts on the same 2 cores "
        f"(the split, not a second machine's capacity); images claimed twice: {claimed_again[2]}",
        rates=rates,
        worker_cpu_ms_per_image=cpu_ms,
        claimed_again=claimed_again,
    )
