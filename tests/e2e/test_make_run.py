"""`make run` (`imagepipe run`) on its embedded defaults: SQLite, the filesystem broker and
SeaweedFS, as a user on a fresh machine would get them, started and stopped as a user does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cli.seaweed import free_port_block
from tests.conftest import ROOT, corpus
from tests.support.services import answers, host_addresses

pytestmark = pytest.mark.e2e


def _wait(url: str, timeout_s: float, proc) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "make run exited early"
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still booting
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready in {timeout_s}s")


def _until(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return found


def _processes_mentioning(text: str) -> list[str]:
    """Every process whose command line or environment names `text` (this run's var/ folder)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if text.encode() in cmd or text.encode() in environ:
            shown = cmd.replace(b"\0", b" ").decode(errors="replace")[:120]
            found.append(f"{pid}: {shown}")
    return found


def _cmdline(pid: int | str) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _child_pid(parent_group: int, marker: str) -> int | None:
    """The process of `parent_group` running `marker` whose parent does not (the worker's main
    process, not one of its pool's)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != parent_group or marker not in _cmdline(pid):
                continue
            ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            if marker not in _cmdline(ppid):
                return int(pid)
        except (OSError, ProcessLookupError):
            continue
    return None


def _env(tmp_path, base):
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {
        **keep,
        "IMAGEPIPE_VAR_DIR": str(tmp_path / "var"),
        "PORT": str(base + 5),
        "FLOWER_PORT": str(base + 6),
        "SEAWEEDFS_BASE_PORT": str(base),
        "SEAWEEDFS_S3_PORT": str(base + 7),
        "WORKER_METRICS_PORT": str(base + 8),
        "WORKER_CONCURRENCY": "1",
    }


def _make_run(env, log):
    # `make run` itself, as the README says; nothing to install (the suite runs in that .venv)
    return subprocess.Popen(
        ["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop_group(proc, sig=signal.SIGTERM) -> None:
    """What `kill -TERM -- -<pgid>` does to `make run`: make and every process of its group get
    the signal (imagepipe run gets a second one from make)."""
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def test_make_run_serves_everything_restarts_a_dead_child_and_stops_by_process_group(tmp_path):
    base = free_port_block(count=9)
    api_port, flower_port, s3_port = base + 5, base + 6, base + 7
    other_origin = "http://127.0.0.1:9"  # a page on another origin (www.platform -> api.platform)
    api = f"http://127.0.0.1:{api_port}"
    env = {**_env(tmp_path, base), "CORS_ALLOWED_ORIGINS": f"{api},{other_origin}"}
    log = open(tmp_path / "run.log", "w+")
    proc = _make_run(env, log)
    var = str(tmp_path / "var")
    try:
        _wait(f"{api}/readyz", 90, proc)
        assert (tmp_path / "var" / "imagepipe.db").exists()  # SQLite, no server
        assert (tmp_path / "var" / "secrets" / "jwt_secret").exists()

        # the worker dies on its own (kill -TERM of it alone): started again, the rest untouched
        worker = _until(lambda: _child_pid(proc.pid, "workers worker"), 30, "the worker")
        os.kill(worker, signal.SIGTERM)
        _until(lambda: "starting worker again" in (tmp_path / "run.log").read_text(), 60, "the worker's restart")
        assert proc.poll() is None and requests.get(f"{api}/healthz", timeout=5).status_code == 200

        token = subprocess.run(
            [sys.executable, "-m", "cli.main", "token", "--user", "3", "--entity", "properties:17"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}

        def upload(path):
            with open(path, "rb") as fh:
                r = requests.post(
                    f"{api}/api/v1/properties/17/images", headers=headers, files={"file": (path.name, fh)}, timeout=30
                )
            assert r.status_code == 202, r.text
            status_url = api + r.json()["job"]["status_url"]
            return r.json(), _until(
                lambda: (
                    (j := requests.get(status_url, headers=headers, timeout=5).json())["status"] in ("succeeded", "failed") and j
                ),
                90,
                "the job",
            )

        accepted, job = upload(corpus("photos", "tree_1024x772.webp"))
        assert job["status"] == "succeeded"  # by the restarted worker
        image = requests.get(f"{api}/api/v1/images/{accepted['images'][0]['id']}", headers=headers, timeout=5).json()
        url = image["renditions"]["medium"]["webp"]["url"]
        assert url.startswith(f"http://127.0.0.1:{s3_port}/")
        got = requests.get(url, timeout=5)
        assert got.status_code == 200 and got.headers["Content-Type"] == "image/webp"

        # a page on another origin: the API and the bucket both answer its preflights
        for target in (f"{api}/api/v1/uploads", f"http://127.0.0.1:{s3_port}/imagepipe/staging/x"):
            preflight = requests.options(
                target, timeout=5, headers={"Origin": other_origin, "Access-Control-Request-Method": "POST"}
            )
            assert preflight.headers.get("Access-Control-Allow-Origin") == other_origin, target
        stranger = requests.options(
            f"{api}/api/v1/uploads", timeout=5, headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "Access-Control-Allow-Origin" not in stranger.headers

        # queue metrics on the filesystem broker (the alerts on queue age and growth can fire)
        metrics = requests.get(f"{api}/metrics", timeout=10).text
        assert "imagepipe_broker_up 1.0" in metrics
        assert 'imagepipe_queue_depth{queue="images"}' in metrics
        assert 'imagepipe_queue_oldest_message_age_seconds{queue="maintenance"}' in metrics

        # Flower: only behind basic auth with the generated password, its /metrics too
        flower = f"http://127.0.0.1:{flower_port}"
        password = (tmp_path / "var" / "secrets" / "flower_password").read_text().strip()
        flower_auth = ("admin", password)

        def flower_up():
            try:
                return requests.get(f"{flower}/", auth=flower_auth, timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        _until(flower_up, 30, "Flower")
        assert requests.get(f"{flower}/", timeout=5).status_code == 401
        assert requests.get(f"{flower}/", auth=("admin", "wrong"), timeout=5).status_code == 401
        assert requests.get(f"{flower}/metrics", timeout=5).status_code == 401
        scraped = requests.get(f"{flower}/metrics", auth=flower_auth, timeout=5)
        assert scraped.status_code == 200 and "flower_" in scraped.text

        # a failed image is a failed task in Flower (its own API), with the image's code
        refused, job = upload(corpus("reject", "libvips-truncated.jpg"))
        assert job["status"] == "failed"
        image_id = refused["images"][0]["id"]

        def failed_in_flower():
            tasks = requests.get(f"{flower}/api/tasks", params={"state": "FAILURE"}, auth=flower_auth, timeout=5).json()
            return [
                t
                for t in tasks.values()
                if t.get("args") == f"({image_id},)" or f"image {image_id} failed" in (t.get("exception") or "")
            ]

        [task] = _until(failed_in_flower, 30, "the failed image's task in Flower")
        assert task["state"] == "FAILURE" and "corrupt_image" in task["exception"]
        succeeded = requests.get(f"{flower}/api/tasks", params={"state": "SUCCESS"}, auth=flower_auth, timeout=5).json()
        assert all(str(image_id) not in (t.get("args") or "") for t in succeeded.values())

        # SeaweedFS: master, volume and filer (no credentials) and S3 answer on loopback only
        for address in host_addresses():
            for port in (base, base + 1, base + 2, s3_port):
                assert answers(address, port) is None, f"{address}:{port} answers"
        assert answers("127.0.0.1", base + 2) == 200  # the filer is there, for the S3 gateway
    finally:
        _stop_group(proc)  # kill -TERM -- -<pgid>
        log.seek(0)
        output = log.read()
        print(output[-5000:])
    assert "beat: Starting..." in output  # the sweeps' and the daily scan's scheduler
    assert (tmp_path / "var" / "flower.db").exists() or list((tmp_path / "var").glob("flower.db*"))  # persistent
    assert password not in output  # never printed, never on a command line
    assert "Aborted!" not in output  # the cleanup was not cut short by make's second signal
    assert "UnpickleableExceptionWrapper" not in output and "raised unexpected" not in output  # failed images: expected
    assert not _processes_mentioning(var), _processes_mentioning(var)  # SeaweedFS included
    for port in (api_port, flower_port, s3_port):
        assert answers("127.0.0.1", port) is None

    # a second `make run` on the same ports starts (and stops on Ctrl-C, as a terminal sends it)
    log = open(tmp_path / "run2.log", "w+")
    again = _make_run(env, log)
    try:
        _wait(f"{api}/readyz", 90, again)
    finally:
        _stop_group(again, signal.SIGINT)
        log.seek(0)
        print(log.read()[-3000:])
    assert "stopped" in (tmp_path / "run2.log").read_text()
    assert not _processes_mentioning(var), _processes_mentioning(var)


def test_a_port_in_use_is_named_in_one_line_with_its_holder(tmp_path):
    base = free_port_block(count=9)
    env = _env(tmp_path, base)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 5))
        squatter.listen()
        out = subprocess.run(
            [sys.executable, "-m", "cli.main", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 2, out.stdout + out.stderr
    [line] = out.stderr.strip().splitlines()
    assert f"port {base + 5}" in line and "PORT" in line and f"pid {os.getpid()}" in line, line
    assert "Traceback" not in out.stderr and not (tmp_path / "var" / "s3").exists()  # nothing started
