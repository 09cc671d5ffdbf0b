"""2. Upload acceptance: uploads to the 202 (the raw-body PUT the web client sends, and the form POST)
against plain PUTs of the same bytes to the store, no worker running; the API profiled during the
raw uploads."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import requests
from measure.inputs import five_mb_photo
from measure.profile import Profile, api_decoding, api_rules, print_profile
from stack import post_photo, put_photo

from .run import Run, new_entity

CLIENTS = 16


def _hammer(call: Callable[[requests.Session], None], seconds: float) -> list[float]:
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

    threads = [threading.Thread(target=loop) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def _quantile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if p < 100 else max(values)


def measure(run: Run, seconds: float) -> None:
    photo, token = five_mb_photo(), run.stack.token()
    put_bytes = run.stack.plain_put(CLIENTS)

    def put(_session: requests.Session | None) -> None:
        put_bytes(photo)

    def post(session: requests.Session) -> None:
        post_photo(session, run.base, token, new_entity(), photo)

    def raw(session: requests.Session) -> None:
        put_photo(session, run.base, token, new_entity(), photo)

    put(None)
    post(requests.Session())  # every path warm
    raw(requests.Session())
    profile = Profile(run.api_pid, run.work / "api-profile.txt")
    raws = _hammer(raw, seconds)
    stacks = profile.stop()
    posts = _hammer(post, seconds)
    puts = _hammer(put, seconds)
    run.stack.purge_queues()  # nothing will process these uploads

    r50, r99 = _quantile(raws, 50), _quantile(raws, 99)
    p50, p99 = _quantile(posts, 50), _quantile(posts, 99)
    b50, b99 = _quantile(puts, 50), _quantile(puts, 99)
    run.results.report(
        "acceptance",
        "2. upload (raw body, the web client's) p99 to 202 / plain PUT p99",
        r99 / b99,
        "<= 1.3",
        r99 / b99 <= 1.3,
        f"raw PUT p50 {r50 * 1000:.0f} ms p99 {r99 * 1000:.0f} ms ({len(raws)} uploads); "
        f"form POST p50 {p50 * 1000:.0f} ms p99 {p99 * 1000:.0f} ms ({len(posts)}, p99 ratio {p99 / b99:.2f}); "
        f"plain PUT p50 {b50 * 1000:.0f} ms p99 {b99 * 1000:.0f} ms ({len(puts)}); raw p50 ratio {r50 / b50:.2f}",
        raw_ms=[round(r50 * 1000), round(r99 * 1000)],
        post_ms=[round(p50 * 1000), round(p99 * 1000)],
        put_ms=[round(b50 * 1000), round(b99 * 1000)],
        uploads=len(raws),
        form_uploads=len(posts),
        puts=len(puts),
        photo_bytes=len(photo),
    )
    shares = print_profile("   API profile during the raw-body uploads", stacks, api_rules())
    if stacks is not None:
        decoding_rule = api_decoding()
        decoding = sum(n for st, n in stacks.items() if decoding_rule.matches(st))
        print(f"    samples in pixel decoding (pyvips, Pillow, pipeline.render/probe): {decoding}")
        run.results.data["acceptance"]["api_profile"] = shares | {"decoding_samples": decoding}
