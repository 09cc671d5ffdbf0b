"""The fault suite (`make test-chaos`): real API (gunicorn) and worker (Celery prefork) processes on
a PostgreSQL, a Redis and a SeaweedFS of their own, a batch of 100 distinct uploads in flight, and
one fault per scenario: worker processes killed, Redis stopped and frozen, database connections
terminated, PostgreSQL restarted and frozen, the store stopped, frozen, or failing a share of its
requests. After each: every accepted image is ready (none lost, none half-rendered), the bucket
agrees with the database, and every request sent during the fault got a JSON answer (202, or 503
with Retry-After) within the request budget, from API processes that were never killed.

The last run's figures are written to docs/reliability.md."""

from __future__ import annotations

import io
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pyvips
import requests
from sqlalchemy import create_engine, text

from cli.commands import api_command, worker_command
from cli.seaweed import S3Credentials, SeaweedServer
from services.infra.settings import Settings
from tests.conftest import ROOT
from tests.support.flaky_proxy import FlakyProxy
from tests.support.services import PrivatePostgres, PrivateRedis, free_port, freeze_tree, thaw_tree

pytestmark = pytest.mark.chaos

UPLOADS = 100
CLIENTS = 8
FAULT_S = 20
REQUEST_BUDGET_S = 20  # docs/reliability.md: what a client waits at most, with the default timeouts
SETTLE_S = 240  # every accepted image must be terminal this long after the fault is healed
FIGURES: list[dict] = []
SCENARIOS = 10


@dataclass
class Stack:
    folder: Path
    pg: PrivatePostgres
    redis: PrivateRedis
    weed: SeaweedServer
    env: dict[str, str]
    images: list[bytes]
    db: object = None
    runs: int = 0


def _images(count: int) -> list[bytes]:
    """Distinct small pictures: a gradient with a different tint each."""
    out = []
    for n in range(count):
        xy = pyvips.Image.xyz(320, 240)
        tint = (n * 37) % 256
        img = (xy[0] * 255 / 320).bandjoin([xy[1] * 255 / 240, xy[0] * 0 + tint]).cast("uchar")
        img = img.copy(interpretation="srgb")
        out.append(img.jpegsave_buffer(Q=80 + n % 15, keep="none"))
    assert len(set(out)) == count
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    import shutil
    import tempfile

    from db.schema import upgrade

    folder = tmp_path_factory.mktemp("chaos")
    # PostgreSQL runs as its own user, who cannot enter pytest's private temporary folders.
    pg_home = Path(tempfile.mkdtemp(prefix="imagepipe-chaos-pg-"))
    pg_home.chmod(0o755)
    pg = PrivatePostgres(pg_home / "pg").start()
    redis = PrivateRedis(folder / "redis").start()
    creds = S3Credentials("chaos" + secrets.token_hex(4), secrets.token_urlsafe(24))
    weed = SeaweedServer(folder / "s3", bucket="chaos", credentials=creds).start()
    try:
        upgrade(pg.url)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        env.update(
            IMAGEPIPE_ENV="development",
            IMAGEPIPE_VAR_DIR=str(folder / "var"),
            DATABASE_URL=pg.url,
            CELERY_BROKER_URL=redis.url,
            CELERY_QUEUE="chaos",
            JWT_SECRET=secrets.token_urlsafe(48),
            STORAGE_BACKEND="s3",
            AWS_S3_BUCKET="chaos",
            AWS_S3_ENDPOINT_URL=weed.endpoint_url,
            AWS_ACCESS_KEY_ID=creds.access_key_id,
            AWS_SECRET_ACCESS_KEY=creds.secret_access_key,
            RATE_LIMIT_UPLOADS_PER_MINUTE="0",
            VIPS_CONCURRENCY="1",
            # Short limits so that a lost task comes back within the scenario's time; the soft one
            # still above a store call's worst case (4 x (2 + 5) s), as the settings require.
            TASK_SOFT_TIME_LIMIT_S="40",
            TASK_TIME_LIMIT_S="50",
            BROKER_VISIBILITY_TIMEOUT_S="60",
            TASK_MAX_RETRIES="12",
            SWEEP_GRACE_S="60",
        )
        s = Settings.from_env(env)
        from services.infra.stores import make_store

        make_store(s).allow_anonymous_read("public/")
        st = Stack(folder, pg, redis, weed, env, _images(UPLOADS))
        st.db = create_engine(pg.url, pool_pre_ping=True)
        yield st
    finally:
        weed.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(pg_home, ignore_errors=True)
    if len(FIGURES) == SCENARIOS:  # a partial run (-k) leaves the published figures alone
        _write_figures()


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Processes:
    api: subprocess.Popen
    api_log: Path
    base: str
    worker: subprocess.Popen
    worker_log: Path
    env: dict

    def pool(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.worker.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def api_boots(self) -> int:
        return sum(1 for line in self.api_log.read_text(errors="replace").splitlines() if "Booting worker" in line)


def _start_worker(env: dict, log: Path) -> subprocess.Popen:
    """A worker writing to `log` (appended to across restarts); returns once it says it is ready."""
    cmd = worker_command(Settings.from_env(env), concurrency=2, pool="prefork") + ["--without-gossip", "--without-mingle"]
    ready_before = log.read_text(errors="replace").count("ready.") if log.exists() else 0
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while log.read_text(errors="replace").count("ready.") <= ready_before:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    return proc


def _start(stack: Stack, name: str, **overrides) -> Processes:
    env = {**stack.env, **overrides}
    folder = stack.folder / name
    folder.mkdir()
    port = free_port()
    api_log = folder / "api.log"
    with open(api_log, "w") as out:
        api = subprocess.Popen(
            api_command(Settings.from_env(env), workers=2, bind=f"127.0.0.1:{port}"),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert api.poll() is None and time.monotonic() < deadline, api_log.read_text()[-3000:]
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.3)
    worker = _start_worker(env, folder / "worker.log")
    return Processes(api, api_log, base, worker, folder / "worker.log", env)


def _stop(procs: Processes) -> None:
    for proc in (procs.worker, procs.api):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Answer:
    sent_at: float
    seconds: float
    status: int | None  # None: no answer (dropped connection, client timeout)
    json: bool
    retry_after: bool
    image_id: int | None = None
    error: str = ""
    retry_after_s: str | None = None


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _upload_until_accepted(base: str, token: str, entity_id: int, data: bytes, name: str, give_up_s: float = 150) -> list[Answer]:
    """What a client does: send, and after a 503 send again once Retry-After has passed."""
    answers, deadline = [], time.monotonic() + give_up_s
    while True:
        answers.append(_upload(base, token, entity_id, data, name))
        if answers[-1].status == 202 or time.monotonic() > deadline:
            return answers
        time.sleep(min(5.0, float(answers[-1].retry_after_s or 1)))


def _upload(base: str, token: str, entity_id: int, data: bytes, name: str) -> Answer:
    sent = time.monotonic()
    try:
        r = requests.post(
            f"{base}/api/v1/properties/{entity_id}/images",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (name, io.BytesIO(data), "image/jpeg")},
            timeout=REQUEST_BUDGET_S + 15,
        )
    except requests.RequestException as exc:
        return Answer(sent, time.monotonic() - sent, None, False, False, error=f"{type(exc).__name__}: {exc}"[:200])
    is_json = r.headers.get("Content-Type", "").startswith("application/json")
    image_id = r.json()["images"][0]["id"] if r.status_code == 202 and is_json else None
    return Answer(
        sent,
        time.monotonic() - sent,
        r.status_code,
        is_json,
        "Retry-After" in r.headers,
        image_id,
        retry_after_s=r.headers.get("Retry-After"),
    )


def _scenario(
    stack: Stack,
    name: str,
    fault_name: str,
    fault,
    heal=None,
    *,
    duration_s: float = FAULT_S,
    fault_after: int = 30,
    **env_overrides,
) -> dict:
    """Start the processes, send the batch, inject the fault after `fault_after` answers, heal it
    `duration_s` later, then wait for every accepted image and check what the users would."""
    from services.infra.tokens import issue_token

    procs = _start(stack, name, **env_overrides)
    stack.runs += 1
    entity_id = 900_000 + stack.runs
    token = issue_token(stack.env["JWT_SECRET"], 5, entities=[f"properties:{entity_id}"])
    boots_before = procs.api_boots()
    answers: list[Answer] = []
    fault_window: list[float] = []
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(_upload_until_accepted, procs.base, token, entity_id, data, f"{name}-{n}.jpg")
                for n, data in enumerate(stack.images)
            ]
            while sum(f.done() for f in futures) < fault_after:
                time.sleep(0.05)
            fault_window.append(time.monotonic())
            fault(procs)
            time.sleep(duration_s)
            if heal is not None:
                heal(procs)
            fault_window.append(time.monotonic())
            answers = [a for f in futures for a in f.result()]
        healed_at = fault_window[1]
        accepted = [a.image_id for a in answers if a.image_id is not None]
        terminal_at, sweeps = _wait_terminal(stack, accepted, healed_at)
        statuses, problems, claimed_again = _consistency(stack, entity_id, accepted)
    finally:
        _stop(procs)
    during = [a for a in answers if fault_window[0] <= a.sent_at <= fault_window[1]]
    figures = {
        "scenario": name,
        "fault": fault_name,
        "uploads": len(stack.images),
        "requests": len(answers),
        "accepted": len(accepted),
        "answers": dict(Counter(str(a.status) for a in answers)),
        "during_fault": dict(Counter(str(a.status) for a in during)),
        "slowest_answer_s": round(max(a.seconds for a in answers), 1),
        "recovery_s": round(max(0.0, terminal_at - healed_at), 1),
        "ready": sum(1 for s in statuses.values() if s == "ready"),
        "lost": len(accepted) - sum(1 for s in statuses.values() if s == "ready"),
        "api_process_restarts": procs.api_boots() - boots_before,
        "requeued_by_sweep": sweeps,
        "claimed_again": claimed_again,
        "problems": problems,
    }
    FIGURES.append(figures)
    bad = [
        a
        for a in answers
        if a.status not in (202, 503) or not a.json or (a.status == 503 and not a.retry_after) or a.seconds > REQUEST_BUDGET_S
    ]
    assert bad == [], f"answers outside the contract: {bad[:5]}"
    assert figures["lost"] == 0 and not problems, figures
    assert figures["api_process_restarts"] == 0, procs.api_log.read_text()[-3000:]
    assert len(accepted) == len(stack.images), figures  # every client got its upload in, in the end
    return figures


def _wait_terminal(stack: Stack, ids: list[int], since: float) -> tuple[float, int]:
    """Until every image is terminal, with `imagepipe sweep` every 15 s as cron runs it in production:
    a commit the database made after the client gave up on it (a frozen server, a lost answer) leaves
    an image pending that nobody queued, and the sweep queues it (SWEEP_GRACE_S, 60 s here)."""
    deadline, next_sweep, requeued = since + SETTLE_S, time.monotonic() + 15, 0
    while True:
        with stack.db.connect() as conn:
            rows = conn.execute(
                text("SELECT status, count(*) FROM images WHERE id = ANY(:ids) GROUP BY status"), {"ids": ids}
            ).all()
        unfinished = sum(n for status, n in rows if status in ("pending", "processing"))
        if not unfinished:
            return time.monotonic(), requeued
        assert time.monotonic() < deadline, f"{unfinished} images still unfinished: {rows}"
        if time.monotonic() > next_sweep:
            out = subprocess.run(
                [sys.executable, "-m", "cli.main", "sweep"], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60
            )
            assert out.returncode == 0, out.stderr[-2000:]
            requeued += json.loads(out.stdout.strip().splitlines()[-1])["requeued"]
            next_sweep = time.monotonic() + 15
        time.sleep(1)


def _consistency(stack: Stack, entity_id: int, accepted: list[int]) -> tuple[dict[int, str], list[str], int]:
    """What a user (and ops) would check: each accepted image ready with its six renditions in the
    bucket; nothing under public/ or originals/ for the listing without its row. Also how many
    images were claimed by more than one attempt (a retry, a sweep's requeue, a message run twice)."""
    from services.infra.stores import make_store

    store = make_store(Settings.from_env(stack.env))
    with stack.db.connect() as conn:
        images = {
            i: (s, k)
            for i, s, k in conn.execute(text("SELECT id, status, s3_key FROM images WHERE entity_id = :e"), {"e": entity_id})
        }
        claimed_again = conn.execute(
            text("SELECT count(*) FROM images WHERE entity_id = :e AND claims > 1"), {"e": entity_id}
        ).scalar()
        renditions = conn.execute(
            text("SELECT r.image_id, r.key FROM renditions r JOIN images i ON i.id = r.image_id WHERE i.entity_id = :e"),
            {"e": entity_id},
        ).all()
    problems = []
    expected = {k for _, (s, k) in images.items() if s == "ready"} | {k for _, k in renditions}
    present = {o.key for o in store.list(f"public/properties/{entity_id}/")}
    present |= {o.key for o in store.list(f"originals/properties/{entity_id}/")}
    if expected - present:
        problems.append(f"missing from the bucket: {sorted(expected - present)[:5]}")
    if present - expected:
        problems.append(f"orphans in the bucket: {sorted(present - expected)[:5]}")
    per_image = Counter(i for i, _ in renditions)
    half = [i for i in accepted if images.get(i, ("",))[0] == "ready" and per_image[i] != 6]
    if half:
        problems.append(f"ready without six renditions: {half[:5]}")
    return {i: images.get(i, ("missing",))[0] for i in accepted}, problems, claimed_again


# --- the scenarios -------------------------------------------------------------------------------


def _kill_pool_repeatedly(procs: Processes) -> None:
    def kill():
        for _ in range(3):
            time.sleep(2)
            pool = procs.pool()
            if pool:
                os.kill(random.choice(pool), signal.SIGKILL)

    threading.Thread(target=kill, daemon=True).start()


def test_worker_pool_processes_killed(stack):
    _scenario(stack, "pool-kill", "SIGKILL a pool process 3 times, 2 s apart", _kill_pool_repeatedly, duration_s=8)


def test_worker_main_process_killed_and_restarted(stack):
    def kill(procs):
        os.kill(procs.worker.pid, signal.SIGKILL)

    def restart(procs):
        procs.worker = _start_worker(procs.env, procs.worker_log)

    _scenario(stack, "worker-kill", "SIGKILL the worker's main process, restart it 5 s later", kill, restart, duration_s=5)


def test_redis_stopped_then_started(stack):
    _scenario(stack, "redis-stop", f"Redis stopped for {FAULT_S} s", lambda p: stack.redis.stop(), lambda p: stack.redis.start())


def test_redis_frozen(stack):
    _scenario(
        stack,
        "redis-freeze",
        f"Redis frozen (SIGSTOP) for {FAULT_S} s",
        lambda p: stack.redis.freeze(),
        lambda p: stack.redis.thaw(),
    )


def test_database_connections_terminated(stack):
    def terminate(procs):
        def repeat():
            for _ in range(4):
                stack.pg.terminate_backends()
                time.sleep(1.5)

        threading.Thread(target=repeat, daemon=True).start()

    _scenario(stack, "pg-terminate", "pg_terminate_backend on every connection, 4 times", terminate, duration_s=6)


def test_database_restarted(stack):
    _scenario(stack, "pg-restart", "PostgreSQL restarted (fast shutdown)", lambda p: stack.pg.restart(), duration_s=3)


def test_database_frozen(stack):
    _scenario(
        stack, "pg-freeze", f"PostgreSQL frozen (SIGSTOP) for {FAULT_S} s", lambda p: stack.pg.freeze(), lambda p: stack.pg.thaw()
    )


def test_store_stopped(stack):
    def start(procs):
        stack.weed.start()

    _scenario(stack, "s3-stop", f"SeaweedFS stopped for {FAULT_S} s", lambda p: stack.weed.stop(), start)


def test_store_frozen(stack):
    _scenario(
        stack,
        "s3-freeze",
        f"SeaweedFS frozen (SIGSTOP) for {FAULT_S} s",
        lambda p: freeze_tree(stack.weed.process.pid),
        lambda p: thaw_tree(stack.weed.process.pid),
    )


def test_store_failing_a_fifth_of_requests(stack):
    with FlakyProxy(stack.weed.endpoint_url) as proxy:

        def fail(procs):
            proxy.fail_share = 0.2

        def heal(procs):
            proxy.fail_share = 0.0

        figures = _scenario(
            stack,
            "s3-flaky",
            "20 % of store requests answered 503 SlowDown or reset, whole batch",
            fail,
            heal,
            duration_s=FAULT_S,
            fault_after=1,
            AWS_S3_ENDPOINT_URL=proxy.url,
        )
    assert proxy.failed > 50, proxy.failed  # the fault really hit
    assert figures["accepted"] >= 50


# --- figures -------------------------------------------------------------------------------------

BEGIN, END = "<!-- figures:begin (written by tests/chaos/test_faults.py) -->", "<!-- figures:end -->"


def _write_figures() -> None:
    rows = [
        "| scenario | fault | uploads (requests) | answers | answers during the fault | slowest answer |"
        " recovery after healing | requeued by the sweep | claimed more than once | ready | lost |"
        " API processes killed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in FIGURES:
        answers = ", ".join(f"{n}× {s}" for s, n in sorted(f["answers"].items()))
        during = ", ".join(f"{n}× {s}" for s, n in sorted(f["during_fault"].items())) or "—"
        rows.append(
            f"| {f['scenario']} | {f['fault']} | {f['uploads']} ({f['requests']}) | {answers} | {during} | "
            f"{f['slowest_answer_s']} s | {f['recovery_s']} s | {f['requeued_by_sweep']} | "
            f"{f['claimed_again']} | {f['ready']} | {f['lost']} | {f['api_process_restarts']} |"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = f"{BEGIN}\nLast run: {stamp}, {len(FIGURES)} scenarios.\n\n" + "\n".join(rows) + f"\n\n{END}"
    path = ROOT / "docs" / "reliability.md"
    current = path.read_text()
    start, end = current.index(BEGIN), current.index(END) + len(END)
    path.write_text(current[:start] + block + current[end:])
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "chaos-figures.json").write_text(json.dumps(FIGURES, indent=1))
