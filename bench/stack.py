"""The whole system on loopback for the benchmarks, as the tests run it: SeaweedFS, a database of
its own on this machine's PostgreSQL and queues of their own on its Redis (SQLite and the
filesystem broker when they do not answer), the API under gunicorn and real workers, each
started with the command `imagepipe serve|worker` runs."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.commands import api_command, worker_command  # noqa: E402
from cli.seaweed import S3Credentials, SeaweedServer  # noqa: E402
from services.infra.settings import Settings  # noqa: E402
from tests.support.services import free_port  # noqa: E402  (the fault suite's own)

PG_ADMINS = ("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", "postgresql+psycopg2://root@127.0.0.1:5432/postgres")


def postgres_database() -> str | None:
    """A database of its own on this machine's PostgreSQL, when it answers (else None)."""
    from sqlalchemy import create_engine, text

    for admin in PG_ADMINS:
        try:
            engine = create_engine(admin, isolation_level="AUTOCOMMIT")
            name = f"imagepipe_bench_{secrets.token_hex(4)}"
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            engine.dispose()
            return admin.rsplit("/", 1)[0] + "/" + name
        except Exception:  # noqa: BLE001 - try the next role, then SQLite
            continue
    return None


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    admin, name = url.rsplit("/", 1)
    engine = create_engine(admin + "/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def redis_answers() -> bool:
    return subprocess.run(["redis-cli", "ping"], capture_output=True).returncode == 0


class Stack:
    def __init__(self, work: Path, **extra_env: str):
        self.work = work
        self.extra_env = extra_env
        self.procs: list[subprocess.Popen] = []
        self.env: dict[str, str] = {}
        self.weed: SeaweedServer | None = None

    def start(self) -> Stack:
        self.work.mkdir(parents=True, exist_ok=True)
        creds = S3Credentials("bench" + secrets.token_hex(4), secrets.token_urlsafe(24))
        self.weed = SeaweedServer(self.work / "s3", bucket="bench", credentials=creds).start()
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        tag = secrets.token_hex(3)
        env.update(
            IMAGEPIPE_VAR_DIR=str(self.work / "var"),
            JWT_SECRET=secrets.token_urlsafe(48),
            AWS_S3_BUCKET="bench",
            AWS_S3_ENDPOINT_URL=self.weed.endpoint_url,
            AWS_ACCESS_KEY_ID=creds.access_key_id,
            AWS_SECRET_ACCESS_KEY=creds.secret_access_key,
            RATE_LIMIT_UPLOADS_PER_MINUTE="0",
            CELERY_QUEUE=f"bench-{tag}",
            MIGRATION_QUEUE=f"bench-m-{tag}",
            MAINTENANCE_QUEUE=f"bench-x-{tag}",
            WORKER_METRICS_PORT="0",
        )
        if redis_answers():
            env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/0"
        database = postgres_database()
        if database:
            env["DATABASE_URL"] = database
        env.update(self.extra_env)
        self.env = env
        from services.infra.stores import make_store

        make_store(self.settings).allow_anonymous_read("public/")
        self.cli("db", "upgrade")
        return self

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def on_postgres_and_redis(self) -> bool:
        return self.env.get("DATABASE_URL", "").startswith("postgresql") and "CELERY_BROKER_URL" in self.env

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=7200
        )
        if out.returncode not in (0, 1):
            raise RuntimeError(out.stderr[-3000:])
        return out.stdout

    def plain_put(self, connections: int):
        """A function PUTting bytes to the stack's store with boto3 as any S3 client would (the
        baseline of a plain upload), safe from `connections` threads at once."""
        import boto3
        from botocore.config import Config

        s = self.settings
        client = boto3.client(
            "s3",
            endpoint_url=s.aws_s3_endpoint_url,
            aws_access_key_id=s.aws_access_key_id,
            aws_secret_access_key=s.aws_secret_access_key,
            region_name=s.aws_region,
            config=Config(max_pool_connections=connections, s3={"addressing_style": "path"}),
        )

        def put(body: bytes) -> None:
            key = f"staging/bench-put-{secrets.token_hex(8)}"
            client.put_object(Bucket=s.aws_s3_bucket, Key=key, Body=body, ContentType="image/jpeg")

        return put

    def token(self, user_id: int = 1, entities: tuple[str, ...] = ("properties:*",)) -> str:
        from services.infra.tokens import issue_token

        return issue_token(self.env["JWT_SECRET"], user_id, entities=list(entities))

    # -- processes ---------------------------------------------------------------------------
    def api(self, workers: int = 2, **env: str) -> tuple[subprocess.Popen, str]:
        port = free_port()
        proc = self._spawn(api_command(self.settings, workers=workers, bind=f"127.0.0.1:{port}"), "api", env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    return proc, base
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"the API did not become ready: see {self.work / 'api.log'}")

    def worker(self, concurrency: int, **env: str) -> tuple[subprocess.Popen, int]:
        """A worker, ready to take tasks; and the port its metrics are served on."""
        port = free_port()
        log = self.work / f"worker-{port}.log"
        proc = self._spawn(
            worker_command(self.settings, concurrency=concurrency), log.stem, {"WORKER_METRICS_PORT": str(port), **env}
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if " ready." in log.read_text(errors="replace"):
                return proc, port
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the worker did not become ready: see {log}")

    def _spawn(self, cmd: list[str], name: str, env: dict[str, str]) -> subprocess.Popen:
        out = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def purge_queues(self) -> None:
        if "CELERY_BROKER_URL" in self.env:
            import redis

            s = self.settings
            redis.Redis.from_url(self.env["CELERY_BROKER_URL"]).delete(s.task_queue, s.migration_queue, s.maintenance_queue)

    def close(self) -> None:
        for proc in self.procs:
            self.stop(proc)
        self.purge_queues()
        if self.weed:
            self.weed.stop()
        if self.env.get("DATABASE_URL", "").startswith("postgresql"):
            drop_database(self.env["DATABASE_URL"])
        shutil.rmtree(self.work, ignore_errors=True)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def put_photo(
    session: requests.Session, base: str, token: str, entity_id: int, photo: bytes, name: str = "photo.jpg", timeout: float = 120
) -> dict:
    """The raw-body upload (PUT .../images/{name}): what web/imagepipe.js sends."""
    r = session.put(
        f"{base}/api/v1/properties/{entity_id}/images/{name}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"},
        data=photo,
        timeout=timeout,
    )
    if r.status_code != 202:
        raise RuntimeError(f"upload refused: {r.status_code} {r.text[:300]}")
    return r.json()


def post_photo(
    session: requests.Session, base: str, token: str, entity_id: int, photo: bytes, name: str = "photo.jpg", timeout: float = 120
) -> dict:
    r = session.post(
        f"{base}/api/v1/properties/{entity_id}/images",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": (name, io.BytesIO(photo), "image/jpeg")},
        timeout=timeout,
    )
    if r.status_code != 202:
        raise RuntimeError(f"upload refused: {r.status_code} {r.text[:300]}")
    return r.json()
