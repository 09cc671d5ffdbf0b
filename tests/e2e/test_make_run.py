"""`imagepipe run` (what `make run` calls) on its embedded defaults: SQLite, the filesystem
broker and SeaweedFS, as a user on a fresh machine would get them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from cli.seaweed import free_port_block
from tests.conftest import ROOT, corpus

pytestmark = pytest.mark.e2e


def _wait(url: str, timeout_s: float, proc) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "imagepipe run exited early"
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still booting
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready in {timeout_s}s")


def test_run_starts_everything_on_embedded_defaults_and_stops_on_ctrl_c(tmp_path):
    base = free_port_block(count=8)
    api_port, flower_port = base + 5, base + 6
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env = {
        **keep,
        "IMAGEPIPE_VAR_DIR": str(tmp_path / "var"),
        "PORT": str(api_port),
        "FLOWER_PORT": str(flower_port),
        "SEAWEEDFS_BASE_PORT": str(base),
        "SEAWEEDFS_S3_PORT": str(base + 7),
        "WORKER_CONCURRENCY": "1",
    }
    log = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        api = f"http://127.0.0.1:{api_port}"
        _wait(f"{api}/readyz", 90, proc)
        assert (tmp_path / "var" / "imagepipe.db").exists()  # SQLite, no server
        assert (tmp_path / "var" / "secrets" / "jwt_secret").exists()
        token = subprocess.run(
            [sys.executable, "-m", "cli.main", "token", "--user", "3", "--entity", "properties:17"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        photo = corpus("photos", "tree_1024x772.webp")
        with open(photo, "rb") as fh:
            r = requests.post(f"{api}/api/v1/properties/17/images", headers=headers, files={"file": (photo.name, fh)}, timeout=30)
        assert r.status_code == 202, r.text
        status_url = api + r.json()["job"]["status_url"]
        deadline = time.monotonic() + 90
        while (job := requests.get(status_url, headers=headers, timeout=5).json())["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["status"] == "succeeded"
        image = requests.get(f"{api}/api/v1/images/{r.json()['images'][0]['id']}", headers=headers, timeout=5).json()
        url = image["renditions"]["medium"]["webp"]["url"]
        assert url.startswith(f"http://127.0.0.1:{base + 7}/")
        got = requests.get(url, timeout=5)
        assert got.status_code == 200 and got.headers["Content-Type"] == "image/webp"
        # the bucket as `imagepipe bucket setup` makes it: the page's origin may upload directly
        preflight = requests.options(
            f"http://127.0.0.1:{base + 7}/imagepipe/staging/x",
            timeout=5,
            headers={"Origin": api, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers.get("Access-Control-Allow-Origin") == api
        flower = f"http://127.0.0.1:{flower_port}"
        password = (tmp_path / "var" / "secrets" / "flower_password").read_text().strip()
        deadline = time.monotonic() + 30
        while True:  # Flower answers only behind basic auth, with the generated password
            try:
                if requests.get(f"{flower}/", auth=("admin", password), timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "Flower did not start"
            time.sleep(0.5)
        assert requests.get(f"{flower}/", timeout=5).status_code == 401
        assert requests.get(f"{flower}/", auth=("admin", "wrong"), timeout=5).status_code == 401
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        log.seek(0)
        output = log.read()
        print(output[-5000:])
    assert proc.returncode == 0, output[-3000:]
    assert "beat: Starting..." in output  # the sweeps' and the daily scan's scheduler
    assert (tmp_path / "var" / "flower.db").exists() or list((tmp_path / "var").glob("flower.db*"))  # persistent
    assert password not in output  # never printed, never on a command line
    for port in (api_port, flower_port, base + 7):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
