"""The legacy migration's speed, against its own limits, measured in one run:

1. images per second of `imagepipe migrate run` with 2 worker processes on a seeded legacy set,
   against the pure rendition throughput of the same photos (pipeline.render in 2 processes)
   measured right after (target >= 0.8);
2. the CLI's peak memory queueing COUNT rows and 10 x COUNT rows (flat: paging);
3. how long a live upload takes to become ready while the migration runs, against the same upload
   on the idle system (target <= 2 x).

    .venv/bin/python bench/migration.py [--count 1000]

It starts what it needs on loopback: SeaweedFS, PostgreSQL's and Redis' of this machine when they
answer (a database and queues of its own), else SQLite and the filesystem broker.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stack import Stack, post_photo  # noqa: E402

from tests.support.http import wait_for_job  # noqa: E402

_PEAK = """
import runpy, sys
sys.argv = ["imagepipe"] + sys.argv[1:]
try:
    runpy.run_module("cli.main", run_name="__main__")
except SystemExit:
    pass
finally:
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
    print("PEAK_KB", hwm, file=sys.stderr)
"""


def _peak_kb(args: list[str], env: dict) -> int:
    """Run an imagepipe command; its own peak resident set (VmHWM), in KiB."""
    out = subprocess.run([sys.executable, "-c", _PEAK, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    line = [x for x in out.stderr.splitlines() if x.startswith("PEAK_KB")]
    if not line:
        raise RuntimeError(out.stderr[-3000:])
    return int(line[-1].split()[1])


def _render(path: str) -> int:
    os.environ.setdefault("VIPS_CONCURRENCY", "1")
    from pipeline.errors import ImageError
    from pipeline.probe import probe
    from pipeline.render import render

    data = Path(path).read_bytes()
    try:
        return len(render(data, probe(data)).renditions)
    except ImageError:  # the seed's corrupt files: refused as the migration refuses them
        return 0


def _pure_rate(files: list[Path]) -> float:
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_render, [str(files[0])] * 2))  # warm both processes
        start = time.perf_counter()
        rendered = sum(1 for n in pool.map(_render, [str(f) for f in files]) if n)
        return rendered / (time.perf_counter() - start)


def _upload_latency(base: str, token: str, photo: bytes, entity_id: int) -> float:
    start = time.perf_counter()
    session = requests.Session()
    job = post_photo(session, base, token, entity_id, photo, "live.jpg")
    wait_for_job(base, {"Authorization": f"Bearer {token}"}, job["job"]["status_url"], 600, poll_s=0.05, session=session)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imagepipe-bench-migration-"))
    stack = Stack(work)
    try:
        stack.start()
        env, settings, _cli = stack.env, stack.settings, stack.cli
        legacy = work / "legacy"
        _cli("legacy", "seed", "--dir", str(legacy), "--count", str(args.count))
        files = sorted(p for p in legacy.rglob("*") if p.is_file() and p.stat().st_size > 0)

        _, base = stack.api(workers=1)
        stack.worker(2)
        token = stack.token()
        photo = (ROOT / "tests" / "corpus" / "photos" / "iphone6_3264x2448.jpg").read_bytes()
        idle = sorted(_upload_latency(base, token, photo + bytes([n]), 10**9 + n) for n in range(3))[1]

        started = time.perf_counter()
        peak_kb = _peak_kb(["migrate", "run", "--source", str(legacy), "--no-wait"], env)
        time.sleep(3)
        busy = sorted(_upload_latency(base, token, photo + bytes([100 + n]), 2 * 10**9 + n) for n in range(3))[1]
        while '"queued": 0' not in _cli("migrate", "status"):
            time.sleep(1)
        migration_s = time.perf_counter() - started
        status = _cli("migrate", "status").strip().splitlines()[-1]
        done = __import__("json").loads(status)["done"]
        rate = done / migration_s
        pure = _pure_rate(files[: min(len(files), 200)])

        # The CLI's memory with ten times the rows (rows only: their files are missing, so the
        # workers fail them at once; what is measured is the CLI paging through them).
        from sqlalchemy import create_engine, text

        engine = create_engine(settings.database_url)
        with engine.begin() as conn:
            start_id = conn.execute(text("SELECT COALESCE(MAX(legacy_id), 0) FROM images")).scalar() + 1
            conn.execute(
                text(
                    "INSERT INTO images (entity_type, entity_id, status, url, legacy_table, legacy_id, position, is_primary,"
                    " created_at, updated_at) VALUES ('projects', :e, 'legacy', :u, 'project_images', :l, 0, :f, :t, :t)"
                ),
                [
                    {
                        "e": 5 * 10**8 + n,
                        "u": f"/uploads/projects/{5 * 10**8 + n}/gone.jpg",
                        "l": start_id + n,
                        "f": False,
                        "t": "2020-01-01T00:00:00+00:00",
                    }
                    for n in range(10 * args.count)
                ],
            )
        peak_10x_kb = _peak_kb(["migrate", "run", "--source", str(legacy), "--entity", "projects", "--no-wait"], env)

        print(f"{args.count} legacy rows, {done} migrated in {migration_s:.1f} s with 2 worker processes")
        print(f"migration      {rate:6.2f} img/s")
        print(f"pure render    {pure:6.2f} img/s (same photos, 2 processes)   ratio {rate / pure:.2f} (target >= 0.8)")
        print(f"live upload    idle {idle:.2f} s, during the migration {busy:.2f} s   ratio {busy / idle:.2f} (target <= 2)")
        print(
            f"CLI peak RSS   {peak_kb / 1024:.0f} MB queueing {args.count} rows, "
            f"{peak_10x_kb / 1024:.0f} MB queueing {10 * args.count} more"
        )
    finally:
        stack.close()


if __name__ == "__main__":
    main()
