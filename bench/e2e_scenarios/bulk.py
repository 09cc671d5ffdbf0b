"""3. Bulk: one request of many photos against single uploads, one at a time."""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path

import requests
from stack import post_photo

from tests.support.http import wait_for_job

from .run import Run, auth, new_entity


def measure(run: Run, files: list[Path], singles: list[Path]) -> None:
    token, session, base = run.stack.token(), requests.Session(), run.base
    worker, _ = run.worker(run.processes)
    one = []
    for path in singles:
        t0 = time.perf_counter()
        job = post_photo(session, base, token, new_entity(), path.read_bytes(), path.name)
        wait_for_job(base, auth(token), job["job"]["status_url"], 600, poll_s=0.02, session=session)
        one.append(time.perf_counter() - t0)
    single = statistics.mean(one)
    t0 = time.perf_counter()
    r = session.post(
        f"{base}/api/v1/properties/{new_entity()}/images",
        headers=auth(token),
        files=[("files", (p.name, io.BytesIO(p.read_bytes()), "image/jpeg")) for p in files],
        timeout=600,
    )
    if r.status_code != 202:
        raise RuntimeError(f"batch refused: {r.status_code} {r.text[:300]}")
    accepted = time.perf_counter() - t0
    status = wait_for_job(base, auth(token), r.json()["job"]["status_url"], 600, poll_s=0.05, session=session)["status"]
    batch = time.perf_counter() - t0
    run.stack.stop(worker)
    ideal = len(files) * single / run.processes
    run.results.report(
        "bulk",
        f"3. {len(files)}-photo batch / ({len(files)} x single / {run.processes})",
        batch / ideal,
        "<= 1.15",
        batch / ideal <= 1.15 and status == "succeeded",
        f"batch {batch:.1f} s ({status}; the request itself {accepted:.1f} s), single {single * 1000:.0f} ms "
        f"(mean of {len(one)}, POST to ready)",
        batch_s=round(batch, 2),
        request_s=round(accepted, 2),
        single_ms=round(single * 1000),
    )
