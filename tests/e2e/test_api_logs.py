"""The API as `imagepipe serve` runs it (gunicorn with imagepipe's logger class): every line it
writes, gunicorn's own and the access log included, is one JSON object a log pipeline can index."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest
import requests

from cli.commands import api_command
from services.infra.settings import Settings
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_writes_json_lines_with_access_fields_and_request_ids(settings_env, tmp_path):
    port = _free_port()
    log = tmp_path / "api.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            api_command(Settings.from_env(settings_env), workers=1, bind=f"127.0.0.1:{port}"),
            cwd=ROOT,
            env=settings_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            try:
                ok = requests.get(f"{base}/healthz", headers={"X-Request-ID": "req-health-0001"}, timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert ok.status_code == 200
        denied = requests.get(
            f"{base}/api/v1/jobs/1?expires=9&signature=s3cr3t-sig&X-Amz-Signature=abcdef",
            headers={"X-Request-ID": "req-denied-0002"},
            timeout=5,
        )
        assert denied.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]  # all of them JSON
    assert any(r["logger"] == "gunicorn.error" and "Listening at" in r["msg"] for r in lines)
    assert not any("Control socket" in r["msg"] for r in lines)  # nothing written under $HOME
    access = {r["request_id"]: r for r in lines if r["logger"] == "gunicorn.access"}
    health = access["req-health-0001"]
    assert (health["method"], health["path"], health["status"], health["msg"]) == ("GET", "/healthz", 200, "GET /healthz 200")
    assert isinstance(health["duration_ms"], int) and health["remote"] == "127.0.0.1"
    assert access["req-denied-0002"]["status"] == 401
    # A signed URL in a log line would be a working link: signatures are redacted.
    assert access["req-denied-0002"]["query"] == "expires=9&signature=REDACTED&X-Amz-Signature=REDACTED"
    assert "s3cr3t" not in log.read_text() and "abcdef" not in log.read_text()
    [error] = [r for r in lines if r["logger"] == "imagepipe.api" and r.get("request_id") == "req-denied-0002"]
    assert (error["code"], error["status"]) == ("unauthorized", 401)
