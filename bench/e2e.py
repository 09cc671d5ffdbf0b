"""The whole pipeline against its own limits, every figure a ratio measured side by side in one run.

    make bench                   # renditions.py, then this
    .venv/bin/python bench/e2e.py [--scale 0.25] [--plot docs/e2e-stages.png]

The system runs as in the tests and in production, on loopback: PostgreSQL (a database of its
own), Redis (queues of their own), SeaweedFS, the API under gunicorn (2 processes x 8 threads)
and real Celery workers (`imagepipe worker`). The photos are 200 distinct real photos made once
under var/bench/e2e-photos/ from the corpus' four photos of 3 MP and more (windows of 90-100 %,
some mirrored, re-encoded at q90), so no upload is a duplicate of another.

1. CPU efficiency: the photos uploaded one by one by 4 clients (the raw-body PUT), the worker
   warmed first; the CPU each group of processes used per image (from /proc), against
   pipeline.render's CPU per image for the same files in plain processes with no I/O.
                                                   target worker CPU <= 1.05 x the pure render's
   Reported beside it: the API's CPU per upload and PostgreSQL's per image as ratios to a plain
   PUT of the same bytes (its client's CPU plus the store's), and the rate against the pure
   render's (capped by the services sharing the cores: docs/benchmarks.md).
2. Upload acceptance: 16 clients sending a 5 MB photo for 30 s (the raw-body PUT the web client uses, then
   the multipart form POST), no worker running; p50/p99 time
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
7. Worker hosts: the same uploads drained by one worker host, then two (network namespaces,
   tests/hosts/cluster.py, one worker process each): images/s, and each host's CPU per image.
   On one 2-core machine this shows the split works, not a second machine's capacity. Needs root.

During 5, a py-spy profile of the worker says where its time goes, and the worker's own stage
metrics (imagepipe_processing_seconds) give the time per stage per image, plotted to --plot.
Timing targets live here, never in tests: read the ratios, the milliseconds are this machine's.
Each measurement is a module of bench/e2e_scenarios/; what they measure with (CPU per process
group, py-spy profiles, the stage metrics and their plot, the inputs) is bench/measure/.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # as the worker's pool processes run
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e_scenarios import acceptance, bulk, core, efficiency, hosts, memory, scaling  # noqa: E402
from e2e_scenarios.run import Counts, Run  # noqa: E402
from measure.inputs import BENCH_DIR, photos  # noqa: E402
from measure.results import Results  # noqa: E402
from stack import Stack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the image counts and durations")
    parser.add_argument("--plot", type=Path, default=BENCH_DIR / "e2e-stages.png")
    parser.add_argument("--only", default="1234567", help="which measurements, e.g. 14")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the workers (e.g. MALLOC_ARENA_MAX=2); repeatable",
    )
    args = parser.parse_args()

    def n(count: int) -> int:
        return max(8, int(count * args.scale))

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    files = photos(n(200))
    work = Path(tempfile.mkdtemp(prefix="e2e-", dir=BENCH_DIR))
    results = Results()
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
        run = Run(stack, base, api.pid, files, Counts(settings.database_url), processes, work, results,
                  dict(item.split("=", 1) for item in args.worker_env))  # fmt: skip
        if "2" in args.only:
            acceptance.measure(run, 30 * args.scale)
        if "4" in args.only:
            scaling.measure(run, files[: n(40)], [1, 2, 3, 4])
        if "3" in args.only:
            bulk.measure(run, files[: n(100)], files[: n(100)][::10])
        if "1" in args.only:
            efficiency.measure(run)
        if "5" in args.only:
            memory.measure(run, n(1000), args.plot)
        stack.stop(api)
        if "7" in args.only:
            hosts.measure(results, files[: n(60)], work / "hosts")
        if "6" in args.only:
            core.measure(results, 12 * args.scale)
        out = BENCH_DIR / "e2e.json"
        results.write(out)
        print(f"results: {out.relative_to(ROOT)}")
    finally:
        stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
