"""Which gunicorn worker model for an API whose requests mostly wait on the network?

The store is replaced by a black hole (a port that accepts connections and never answers, as a
frozen S3 server does). Clients keep HUNG uploads waiting on it while another client measures
`/api/v1/properties/1/images` (a gallery read: database only) one request after another. Each model
runs with the same 2 processes; what differs is what a waiting request holds.

    .venv/bin/python bench/api_workers.py

Prints, per model, the gallery read's median and worst latency while the uploads hang, and the
ratio against the same read on an idle server measured in the same run.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.commands import api_command  # noqa: E402
from services.infra.settings import Settings  # noqa: E402
from services.infra.tokens import issue_token  # noqa: E402
from tests.support.services import BlackHole, free_port  # noqa: E402  (the fault suite's own)

HUNG = 4  # uploads kept waiting on the store at once
READS = 20  # gallery reads on the idle server
BUSY_READS = 5  # ... and while the uploads hang (a sync worker makes each wait seconds)


def measure(model: list[str], env: dict, token: str) -> tuple[list[float], list[float]]:
    port = free_port()
    settings = Settings.from_env(env)
    cmd = api_command(settings, workers=2, bind=f"127.0.0.1:{port}")
    at = cmd.index("--worker-class")
    cmd = cmd[:at] + model + cmd[at + 4 :]  # replace "--worker-class gthread --threads N"
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(200):
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)

        def read() -> float:
            start = time.perf_counter()
            try:
                requests.get(f"{base}/api/v1/properties/1/images", timeout=60)
            except requests.RequestException:
                return 60.0
            return time.perf_counter() - start

        idle = [read() for _ in range(READS)]
        stop = threading.Event()

        def hang():
            while not stop.is_set():
                try:
                    requests.post(
                        f"{base}/api/v1/properties/1/images",
                        headers=headers,
                        timeout=60,
                        files={"file": ("a.jpg", io.BytesIO(b"\xff\xd8\xff" + bytes(5000)), "image/jpeg")},
                    )
                except requests.RequestException:
                    pass

        threads = [threading.Thread(target=hang, daemon=True) for _ in range(HUNG)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the uploads are waiting on the store now
        busy = [read() for _ in range(BUSY_READS)]
        stop.set()
        return idle, busy
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    hole = BlackHole()
    var = tempfile.mkdtemp(prefix="imagepipe-bench-")
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
        "IMAGEPIPE_VAR_DIR": var,
        "JWT_SECRET": "b" * 40,
        "STORAGE_BACKEND": "s3",
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{hole.port}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "RATE_LIMIT_UPLOADS_PER_MINUTE": "0",
    }
    subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=ROOT, env=env, check=True)
    token = issue_token(env["JWT_SECRET"], 1, entities=["properties:1"])
    models = {
        "sync, 2 processes": ["--worker-class", "sync"],
        "gthread, 2 processes x 8 threads": ["--worker-class", "gthread", "--threads", "8"],
    }
    print(f"{HUNG} uploads hanging on a frozen store; a gallery read {READS} times idle, {BUSY_READS} times busy")
    print(f"{'model':36} {'idle p50':>9} {'busy p50':>9} {'busy max':>9} {'busy/idle p50':>14}", flush=True)
    for name, model in models.items():
        idle, busy = measure(model, env, token)
        ratio = statistics.median(busy) / statistics.median(idle)
        print(
            f"{name:36} {statistics.median(idle) * 1000:7.1f}ms {statistics.median(busy) * 1000:7.1f}ms "
            f"{max(busy) * 1000:7.0f}ms {ratio:13.1f}x",
            flush=True,
        )
    hole.close()


if __name__ == "__main__":
    main()
