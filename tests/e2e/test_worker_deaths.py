"""A worker process that dies under an image (killed for memory, a crash in a decoder, the
hard time limit) must neither leave the image spinning nor loop on it for ever.

A real prefork worker (`celery worker -P prefork`, what `imagepipe worker` runs) in its own
process group on the real Redis broker; its pool process is really killed. The image it chokes
on is a progressive-JPEG scan bomb with the scan limit raised for this worker, so libvips sits
in libjpeg's C code for ~20 s: long enough to be killed, and deaf to the soft time limit.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery

from cli.commands import worker_command
from db.models import Image
from services.images.ingest import IncomingFile, ingest_upload
from services.images.lifecycle import FAILURE_MESSAGES
from services.infra.settings import Settings
from tests.conftest import REDIS_URL, ROOT, corpus, new_entity_id
from tests.support.jpeg_bombs import scan_bomb

pytestmark = pytest.mark.e2e
PROCESS_IMAGE_TASK = "imagepipe.process_image"


@dataclass
class Worker:
    proc: subprocess.Popen
    queue: str
    log: Path

    def children(self) -> list[int]:
        """The pool processes: processes whose parent is the worker's main process."""
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    out.append(int(entry.name))
        return out

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextmanager
def running_worker(settings_env: dict, log: Path, **env):
    """A prefork worker with one pool process on a queue of its own, `env` on top of the suite's."""
    queue = f"images-worker-{uuid.uuid4().hex[:8]}"
    full_env = {**settings_env, "CELERY_QUEUE": queue, "VIPS_CONCURRENCY": "1", **env}
    with open(log, "w") as out:
        cmd = worker_command(Settings.from_env(full_env), concurrency=1, pool="prefork")
        proc = subprocess.Popen(
            cmd + ["--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(proc, queue, log)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, f"worker did not start:\n{worker.tail()}"
            time.sleep(0.2)
        yield worker
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        import redis

        redis.Redis.from_url(REDIS_URL).delete(queue)


@pytest.fixture(scope="module")
def prefork_worker(settings_env, store, tmp_path_factory):
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with running_worker(
        settings_env, log, TASK_MAX_RETRIES="1", MAX_JPEG_SCANS="10000", TASK_SOFT_TIME_LIMIT_S="60", TASK_TIME_LIMIT_S="90"
    ) as worker:
        yield worker


@pytest.fixture(scope="module")
def producer():
    app = Celery("imagepipe-test-producer", broker=REDIS_URL)
    yield app
    app.close()


def _ingest(session, store, settings, data: bytes, name: str) -> int:
    result = ingest_upload(
        session,
        store,
        settings,
        entity_type="properties",
        entity_id=new_entity_id(),
        user_id=7,
        files=[IncomingFile(io.BytesIO(data), name, "image/jpeg")],
    )
    session.commit()
    return result.images[0].id


def _image(session, image_id: int) -> Image:
    session.expire_all()
    return session.get(Image, image_id)


def _wait_for(session, image_id: int, worker: Worker, predicate, timeout_s: float, what: str) -> Image:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        image = _image(session, image_id)
        if predicate(image):
            return image
        assert worker.proc.poll() is None, f"the worker itself exited:\n{worker.tail()}"
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} never {what} (status {image.status}):\n{worker.tail()}")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return scan_bomb(8000, 8000, 2000)  # ~20 s inside libjpeg


def test_hard_time_limit_fails_the_image_and_the_worker_carries_on(prefork_worker, producer, session, store, settings, bomb):
    image_id = _ingest(session, store, settings, bomb, "slow.jpg")
    producer.send_task(PROCESS_IMAGE_TASK, args=[image_id], queue=prefork_worker.queue, soft_time_limit=1, time_limit=3)
    image = _wait_for(session, image_id, prefork_worker, lambda i: i.status == "failed", 60, "failed")
    assert image.error_code == "processing_timeout"
    assert image.error_message == FAILURE_MESSAGES["processing_timeout"]

    # The pool replaced its killed process: the next image is processed as usual.
    photo = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    ok_id = _ingest(session, store, settings, photo, "photo.jpg")
    task = producer.send_task(PROCESS_IMAGE_TASK, args=[ok_id], queue=prefork_worker.queue)
    assert _wait_for(session, ok_id, prefork_worker, lambda i: i.status == "ready", 60, "ready").renditions

    # Every line the worker logged since it was ready is one JSON object, Celery's own and the
    # pool's included. The kill was the hard limit (not the soft one), the line that failed the
    # image says so with its code, and lines written inside a task name it.
    deadline = time.monotonic() + 10
    while f"{task.id}] succeeded" not in prefork_worker.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = prefork_worker.log.read_text()
    lines = [json.loads(line) for line in text[text.index('{"ts"') :].splitlines() if line.strip()]
    assert any(r["logger"] == "celery.worker.request" and r["msg"].startswith("Hard time limit") for r in lines)
    assert any("exited with 'signal 9 (SIGKILL)'" in r["msg"] for r in lines)  # billiard's own line
    [failed] = [r for r in lines if r["logger"] == "workers.tasks" and f"image {image_id} failed" in r["msg"]]
    assert (failed["level"], failed["code"]) == ("error", "processing_timeout")
    [done] = [r for r in lines if r["logger"] == "celery.app.trace" and "succeeded" in r["msg"]]
    assert (done["task"], done["task_id"]) == (PROCESS_IMAGE_TASK, task.id)
    assert not any(r["logger"] == "pyvips" for r in lines)  # libvips' INFO chatter stays out


def test_a_file_that_kills_its_worker_every_time_is_retried_then_failed(prefork_worker, producer, session, store, settings, bomb):
    image_id = _ingest(session, store, settings, bomb + b"\x00", "deadly.jpg")  # not a duplicate of the last test
    producer.send_task(PROCESS_IMAGE_TASK, args=[image_id], queue=prefork_worker.queue)
    claimed_at = None
    for attempt in range(2):  # TASK_MAX_RETRIES=1: the first run and one retry
        image = _wait_for(
            session,
            image_id,
            prefork_worker,
            lambda i, seen=claimed_at: i.status == "processing" and i.updated_at != seen,
            60,
            f"claimed (attempt {attempt + 1})",
        )
        claimed_at = image.updated_at
        time.sleep(0.5)  # inside libjpeg by now
        (child,) = prefork_worker.children()
        os.kill(child, signal.SIGKILL)  # what the kernel's OOM killer does
    image = _wait_for(session, image_id, prefork_worker, lambda i: i.status == "failed", 60, "failed")
    assert image.error_code == "processing_error"
    # The client reads the code's fixed text; what happened is in the worker's log, with the image id.
    assert image.error_message == FAILURE_MESSAGES["processing_error"]
    assert image.renditions == []
    lines = [json.loads(line) for line in prefork_worker.log.read_text().splitlines() if line.startswith("{")]
    assert any(f"image {image_id} failed for good" in r["msg"] and "worker process died" in r["msg"] for r in lines)


def test_a_pool_process_over_its_memory_limit_is_replaced_after_its_task(
    settings_env, store, producer, session, settings, tmp_path
):
    """WORKER_MAX_MEMORY_MB: a process that stays big after a task gives way to a fresh one.
    With a 1 MB limit every process is over it after any image, so each image gets a new one."""
    with running_worker(settings_env, tmp_path / "worker.log", WORKER_MAX_MEMORY_MB="1") as worker:
        photo = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
        pids = []
        for n in range(2):
            image_id = _ingest(session, store, settings, photo + bytes([n]), f"photo{n}.jpg")
            producer.send_task(PROCESS_IMAGE_TASK, args=[image_id], queue=worker.queue)
            _wait_for(session, image_id, worker, lambda i: i.status == "ready", 60, "ready")
            deadline = time.monotonic() + 20  # the replacement is started after the task
            while (children := worker.children()) in ([], pids[-1:]) and time.monotonic() < deadline:
                time.sleep(0.1)
            pids.append(children[0])
        assert pids[0] != pids[1]
