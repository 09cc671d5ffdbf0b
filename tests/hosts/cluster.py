"""The several-hosts cluster (tests/hosts/lab.py's namespaces): a services host with PostgreSQL,
Redis and SeaweedFS, an API host (gunicorn, 2 processes) and two worker hosts that start no worker
until asked. Used by tests/hosts/test_hosts.py's scenarios and bench/e2e_scenarios/hosts.py."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from cli.commands import api_command, worker_command
from cli.seaweed import S3Credentials, SeaweedServer
from services.infra.settings import Settings
from tests.conftest import ROOT
from tests.hosts.lab import Lab, wait_for
from tests.support.services import PrivatePostgres, PrivateRedis

REQUEST_BUDGET_S = 20  # docs/reliability.md: what a client waits at most, with the default timeouts


class Cluster:
    def __init__(self, lab: Lab, env: dict, folder: Path, db_url: str):
        self.lab, self.env, self.folder = lab, env, folder
        self.db = create_engine(db_url, pool_pre_ping=True)
        self.base = f"http://{lab['api'].address}:8000"
        from services.infra.tokens import issue_token

        self.token = issue_token(env["JWT_SECRET"], 7, admin=True, ttl_s=3600)
        self.images: list[bytes] = []  # what the scenarios upload, set by their user

    def start_worker(self, name: str, concurrency: int = 1) -> None:
        log = self.folder / f"{name}.log"
        ready_before = log.read_text(errors="replace").count("ready.") if log.exists() else 0
        cmd = worker_command(Settings.from_env(self.env), concurrency=concurrency, pool="prefork")
        cmd += ["--hostname", f"{name}@%h"]
        with open(log, "a") as out:
            self.lab[name].start(cmd, env=self.env, log=out)
        wait_for(lambda: log.read_text(errors="replace").count("ready.") > ready_before, 60, f"worker {name} ready")

    def ensure_workers(self) -> None:
        """Both worker hosts running a worker (a scenario before may have killed one)."""
        for name in ("w1", "w2"):
            if not self.lab[name].pids():
                self.start_worker(name)

    def upload(self, entity_id: int, data: bytes, base: str | None = None) -> tuple[int | None, float, list[float]]:
        """What a client does: send, and after a 503 (or no answer) send again a second later;
        (image id or None, seconds until accepted, each answer's seconds)."""
        started, answers = time.monotonic(), []
        for _ in range(40):
            sent = time.monotonic()
            try:
                r = requests.put(
                    f"{base or self.base}/api/v1/properties/{entity_id}/images/p.jpg",
                    headers={"Authorization": f"Bearer {self.token}", "Content-Type": "image/jpeg"},
                    data=data,
                    timeout=REQUEST_BUDGET_S + 10,
                )
                answers.append(time.monotonic() - sent)
                if r.status_code == 202:
                    return r.json()["images"][0]["id"], time.monotonic() - started, answers
            except requests.RequestException:
                answers.append(time.monotonic() - sent)
            time.sleep(1)
        return None, time.monotonic() - started, answers

    def outcome(self, entity_id: int) -> dict:
        with self.db.connect() as conn:
            rows = conn.execute(
                text("SELECT status, claims FROM images WHERE entity_type = 'properties' AND entity_id = :e"), {"e": entity_id}
            ).all()
            renditions = conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT key) FROM renditions r JOIN images i ON i.id = r.image_id "
                    "WHERE i.entity_id = :e"
                ),
                {"e": entity_id},
            ).one()
        statuses: dict[str, int] = {}
        for status, _ in rows:
            statuses[status] = statuses.get(status, 0) + 1
        return {
            "images": len(rows),
            "statuses": statuses,
            "claimed_again": sum(1 for _, claims in rows if (claims or 0) > 1),
            "renditions": renditions[0],
            "distinct_keys": renditions[1],
        }


@contextmanager
def running(folder: Path, **settings: str) -> Iterator[Cluster]:
    """The cluster, its processes' files under `folder`; `settings` override its environment.
    Everything is stopped and the namespaces removed on the way out, even on failure."""
    from db.schema import upgrade
    from services.infra.stores import make_store

    lab = Lab(["svc", "api", "w1", "w2"])
    pg_home = Path(tempfile.mkdtemp(prefix="imagepipe-hosts-pg-"))  # the postgres user must enter it
    pg_home.chmod(0o755)
    svc = lab["svc"]
    pg = redis = weed = None
    try:
        pg = PrivatePostgres(pg_home / "pg", host=svc.address, netns=svc.name, port=5432).start()
        redis = PrivateRedis(folder / "redis", host=svc.address, netns=svc.name, port=6379).start()
        creds = S3Credentials("hosts" + secrets.token_hex(4), secrets.token_urlsafe(24))
        weed = SeaweedServer(
            folder / "s3",
            bucket="hosts",
            credentials=creds,
            host=svc.address,
            base_port=9300,
            command_prefix=("ip", "netns", "exec", svc.name),
        ).start()
        upgrade(pg.url)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        env.update(
            PYTHONPATH=str(ROOT),
            IMAGEPIPE_ENV="development",
            IMAGEPIPE_VAR_DIR=str(folder / "var"),
            HOST=lab["api"].address,
            PORT="8000",
            DATABASE_URL=pg.url,
            CELERY_BROKER_URL=redis.url,
            CELERY_QUEUE="hosts",
            JWT_SECRET=secrets.token_urlsafe(48),
            SIGNING_SECRET=secrets.token_urlsafe(48),
            CALLBACK_SECRET=secrets.token_urlsafe(48),
            STORAGE_BACKEND="s3",
            AWS_S3_BUCKET="hosts",
            AWS_S3_ENDPOINT_URL=weed.endpoint_url,
            AWS_ACCESS_KEY_ID=creds.access_key_id,
            AWS_SECRET_ACCESS_KEY=creds.secret_access_key,
            RATE_LIMIT_UPLOADS_PER_MINUTE="0",
            VIPS_CONCURRENCY="1",
            TASK_SOFT_TIME_LIMIT_S="30",
            TASK_TIME_LIMIT_S="40",
            BROKER_VISIBILITY_TIMEOUT_S="45",  # a dead host's tasks come back within the scenario
            TASK_MAX_RETRIES="12",
        )
        env.update(settings)
        make_store(Settings.from_env(env)).allow_anonymous_read("public/")
        api_log = folder / "api.log"
        with open(api_log, "w") as out:
            lab["api"].start(api_command(Settings.from_env(env), workers=2, bind=f"{lab['api'].address}:8000"), env=env, log=out)
        c = Cluster(lab, env, folder, pg.url)

        def api_ready() -> bool:
            try:
                return requests.get(f"{c.base}/readyz", timeout=3).status_code == 200
            except requests.RequestException:
                return False

        wait_for(api_ready, 60, "the API host ready")
        yield c
    finally:
        lab.close()
        for server in (weed, redis, pg):
            if server is not None:
                try:
                    server.stop()
                except Exception:  # noqa: BLE001 - the namespace is gone: so is the process
                    pass
        shutil.rmtree(pg_home, ignore_errors=True)
