"""Prometheus metrics from a real gunicorn with two processes and a real prefork worker: the
figures equal what was done (across processes, and across a reload that replaces every API
process), `promtool check metrics` accepts both scrapes, a store failure moves the failure
counters, and the alert rules pass their unit tests."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cli.commands import api_command
from services.infra.settings import Settings
from tests.conftest import ROOT, corpus, new_entity_id
from tests.e2e.test_worker_deaths import running_worker
from tests.support.http import wait_for_job
from tests.support.services import free_port

pytestmark = pytest.mark.e2e
PROMTOOL = shutil.which("promtool")
UPLOAD_ROUTE = "/api/v1/<entity>/<int:entity_id>/images"


def _samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _promtool_check(text: str) -> None:
    if PROMTOOL is None:
        pytest.skip("promtool not installed (Debian's prometheus package; .ci/run installs it)")
    out = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def _upload(api: str, headers: dict, entity_id: int, salt: int) -> dict:
    """A new connection each time, so the API's processes share the requests."""
    photo = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes() + bytes([salt]) * 7
    r = requests.post(
        f"{api}/api/v1/properties/{entity_id}/images",
        headers={**headers, "Connection": "close"},
        files={"file": ("p.jpg", io.BytesIO(photo), "image/jpeg")},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    return r.json()["job"]


def test_metrics_of_two_api_processes_and_a_worker_equal_what_was_done(settings_env, store, make_token, tmp_path):
    worker_port = free_port()
    metrics_token = "worker-and-api-metrics-" + "t" * 16
    env = {
        **settings_env,
        "WORKER_METRICS_PORT": str(worker_port),
        "METRICS_DIR": str(tmp_path / "metrics"),
        "METRICS_TOKEN": metrics_token,
    }
    scrape = {"Authorization": f"Bearer {metrics_token}"}
    headers = {"Authorization": f"Bearer {make_token(42, entities=('properties:*',))}"}
    with running_worker(env, tmp_path / "worker.log") as worker:
        api_env = {**env, "CELERY_QUEUE": worker.queue}
        port = free_port()
        cmd = api_command(Settings.from_env(api_env), workers=2, bind=f"127.0.0.1:{port}")
        log = open(tmp_path / "api.log", "w")
        api_proc = subprocess.Popen(cmd, cwd=ROOT, env=api_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        api = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"{api}/healthz", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline and api_proc.poll() is None, (tmp_path / "api.log").read_text()
                time.sleep(0.3)
            entity_id = new_entity_id()
            jobs = [_upload(api, headers, entity_id, n) for n in range(2)]
            api_proc.send_signal(signal.SIGHUP)  # gunicorn replaces every worker process
            time.sleep(3)
            jobs += [_upload(api, headers, entity_id, n) for n in range(2, 4)]
            for job in jobs:
                assert wait_for_job(api, headers, job["status_url"], timeout_s=120)["status"] == "succeeded"

            api_text = requests.get(f"{api}/metrics", headers=scrape, timeout=10).text
            worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
            worker_text = requests.get(worker_metrics, headers=scrape, timeout=10).text
            # the worker's port as the API's /metrics: nothing without the token, liveness without
            refused = requests.get(worker_metrics, timeout=10)
            assert refused.status_code == 401 and "imagepipe_" not in refused.text
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert requests.get(worker_metrics, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
            assert requests.get(f"http://127.0.0.1:{worker_port}/healthz", timeout=10).status_code == 200
            [api_dir] = (tmp_path / "metrics").glob("api-*")  # this master's own folder
            pids = {p.name.rsplit("_", 1)[-1] for p in api_dir.glob("*.db")}
        finally:
            os.killpg(api_proc.pid, signal.SIGTERM)
            api_proc.wait(timeout=30)
            log.close()
        worker_log = worker.log.read_text(errors="replace")

    # every JSON line of an image's task names the image, its job and the attempt
    import json

    ready = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{") and "image ready" in line]
    assert len(ready) == 4, worker_log[-3000:]
    assert {line["job_id"] for line in ready} == {job["id"] for job in jobs}
    assert all(
        line["image_id"] and line["attempt"] == 1 and line["task"] == "imagepipe.process_image" and line["task_id"]
        for line in ready
    )
    assert len(pids) >= 3, pids  # two processes before the reload, new ones after: summed all the same
    a = _samples(api_text)
    assert _value(a, "imagepipe_uploads_total", entity_type="properties", outcome="accepted") == 4
    assert _value(a, "imagepipe_http_request_seconds_count", route=UPLOAD_ROUTE, method="POST", status="202") == 4
    assert ("imagepipe_queue_depth", (("queue", worker.queue),)) in a
    assert _value(a, "imagepipe_queue_depth", queue=worker.queue) == 0  # drained
    assert _value(a, "imagepipe_broker_up") == 1
    assert _value(a, "imagepipe_images", status="ready") >= 4

    w = _samples(worker_text)
    assert _value(w, "imagepipe_images_finished_total", outcome="ready", code="") == 4
    for stage in ("fetch", "probe", "render", "store", "commit", "total"):
        assert _value(w, "imagepipe_processing_seconds_count", stage=stage) == 4, stage
    assert _value(w, "imagepipe_render_seconds_count", megapixels="<1") == 4  # 640 x 480
    assert _value(w, "imagepipe_rendition_bytes_total", format="webp") > 0
    # Per image: six renditions sent, the original copied from staging inside the store.
    assert _value(w, "imagepipe_storage_operations_total", op="put", outcome="ok") == 4 * 6
    assert _value(w, "imagepipe_storage_operations_total", op="copy", outcome="ok") == 4
    assert _value(w, "imagepipe_storage_seconds_count", op="put") == 4 * 6
    _promtool_check(api_text)
    _promtool_check(worker_text)


def test_a_store_failure_moves_the_failure_counters(settings, make_token):
    """The API with a store that refuses connections: the upload is 503 and the storage and HTTP
    counters say so (this process's registry: the in-process app is not multiprocess)."""
    from prometheus_client import REGISTRY

    from api.app import create_app
    from tests.support.queues import RecordingQueue

    dead = settings.with_overrides(
        aws_s3_endpoint_url=f"http://127.0.0.1:{free_port()}", store_max_attempts=1, store_connect_timeout_s=0.5
    )
    client = create_app(dead, queue=RecordingQueue()).test_client()

    def counts():
        return (
            REGISTRY.get_sample_value("imagepipe_storage_operations_total", {"op": "put", "outcome": "transient"}) or 0,
            REGISTRY.get_sample_value(
                "imagepipe_http_request_seconds_count", {"route": UPLOAD_ROUTE, "method": "POST", "status": "503"}
            )
            or 0,
        )

    before = counts()
    photo = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    r = client.post(
        f"/api/v1/properties/{new_entity_id()}/images",
        data={"file": (io.BytesIO(photo), "p.jpg")},
        headers={"Authorization": f"Bearer {make_token(42, entities=('properties:*',))}"},
    )
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "storage_unavailable"
    after = counts()
    assert after[0] == before[0] + 1 and after[1] == before[1] + 1


def test_metrics_token_guards_the_endpoint(settings):
    from api.app import create_app
    from tests.support.queues import RecordingQueue

    client = create_app(
        settings.with_overrides(metrics_token="s3cr3t-metrics-token-" + "x" * 16), queue=RecordingQueue()
    ).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cr3t-metrics-token-" + "x" * 16})
    assert ok.status_code == 200 and b"imagepipe_http_request_seconds" in ok.data


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian's prometheus package; .ci/run installs it)")
def test_alert_rules_are_valid_and_pass_their_unit_tests():
    deploy = Path(ROOT / "deploy")
    check = subprocess.run([PROMTOOL, "check", "rules", str(deploy / "alerts.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        [PROMTOOL, "test", "rules", str(deploy / "alerts_test.yml")], capture_output=True, text=True, cwd=deploy
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "SUCCESS" in tests.stdout


def test_the_first_metrics_of_a_process_survive_a_race_of_threads():
    """The API's threads may all record their first metric at once: one set of metrics is
    created, none of the requests fails (the chaos suite once saw 500s from exactly that)."""
    import sys

    probe = (
        "import threading\n"
        "from services.infra.metrics import metrics\n"
        "barrier, errors, got = threading.Barrier(16), [], []\n"
        "def go():\n"
        "    barrier.wait()\n"
        "    try:\n        got.append(id(metrics()))\n"
        "    except Exception as exc:\n        errors.append(repr(exc))\n"
        "threads = [threading.Thread(target=go) for _ in range(16)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "assert not errors and len(set(got)) == 1, (errors, set(got))\n"
        "print('ok')\n"
    )
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_two_workers_on_one_host_keep_their_own_metrics_folders(tmp_path):
    """Each instance writes under METRICS_DIR/<service>-<pid>; starting one never empties another
    that is running, and a dead instance's folder is removed."""
    import sys

    base = tmp_path / "metrics"
    alive = base / f"worker-{os.getpid()}"  # this test process: alive
    alive.mkdir(parents=True)
    (alive / "counter_1.db").write_bytes(b"x")
    dead = base / "worker-999999999"
    dead.mkdir()
    probe = (
        "import sys\nfrom pathlib import Path\nfrom services.infra.metrics import use_multiprocess_dir\n"
        "print(use_multiprocess_dir(Path(sys.argv[1]), 'worker'))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(base)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    mine = Path(out.stdout.strip())
    assert mine.parent == base and mine.name.startswith("worker-") and mine != alive
    assert (alive / "counter_1.db").exists() and not dead.exists()


def test_made_up_methods_and_paths_add_no_series(settings):
    """Labels take values from fixed sets (issue 22, M1): a client sending 1 000 invented methods to
    1 000 invented paths, without a token, leaves the number of series where it was."""
    from api.app import create_app
    from tests.support.queues import RecordingQueue

    client = create_app(settings, queue=RecordingQueue()).test_client()

    def series() -> set[tuple]:
        text = client.get("/metrics").get_data(as_text=True)
        return {key for key in _samples(text) if key[0].startswith("imagepipe_http_request_seconds")}

    for method, path in (("FOO", "/nope"), ("FOO", "/healthz"), ("GET", "/nope"), ("PUT", "/healthz")):
        client.open(path, method=method)  # the fixed set's 'other' and 'unmatched' seen once
    series()  # the scrape's own series
    before = series()
    for n in range(1000):
        assert client.open(f"/x{n}/{os.urandom(4).hex()}", method=f"M{n}X").status_code in (404, 405)
        assert client.open("/healthz", method=f"Q{n}").status_code == 405
    after = series()
    assert after == before
    methods = {dict(labels).get("method") for _, labels in after}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def test_refusals_count_the_same_on_the_form_and_the_direct_path(settings, make_token, tmp_path):
    """Issue 27: a 415 at `POST /uploads` (declared type), a 413 there (declared size) and a 415
    at `/complete` (the bytes) count in imagepipe_uploads_total as a form upload's refusals do,
    once per request."""
    from prometheus_client import REGISTRY

    from api.app import create_app
    from tests.support.queues import RecordingQueue

    local = settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path / "store")
    client = create_app(local, queue=RecordingQueue()).test_client()
    auth = {"Authorization": f"Bearer {make_token(42, entities=('properties:*',))}"}

    def count(code: str) -> float:
        return REGISTRY.get_sample_value("imagepipe_uploads_total", {"entity_type": "properties", "outcome": code}) or 0

    before = {code: count(code) for code in ("unsupported_media_type", "file_too_large")}
    html = b"<html>not a photo</html>" * 10
    form = client.post(
        f"/api/v1/properties/{new_entity_id()}/images",
        data={"file": (io.BytesIO(html), "a.jpg")},
        headers=auth,
    )
    assert form.status_code == 415
    body = {"entity": "properties", "entity_id": new_entity_id(), "filename": "a.jpg", "content_type": "image/jpeg"}
    assert client.post("/api/v1/uploads", json={**body, "size": 10, "content_type": "text/html"}, headers=auth).status_code == 415
    too_big = {**body, "size": local.limits.max_upload_bytes + 1}
    assert client.post("/api/v1/uploads", json=too_big, headers=auth).status_code == 413
    up = client.post("/api/v1/uploads", json={**body, "size": len(html)}, headers=auth).get_json()
    posted = client.post("/media/upload", data={**up["fields"], "file": (io.BytesIO(html), "f", "image/jpeg")})
    assert posted.status_code == 204
    assert client.post(up["complete_url"], headers=auth).status_code == 415
    assert client.post(up["complete_url"], headers=auth).status_code == 409  # nothing kept: not counted again
    assert count("unsupported_media_type") - before["unsupported_media_type"] == 3  # form, declared, bytes
    assert count("file_too_large") - before["file_too_large"] == 1
