"""`imagepipe run`: the whole system on one machine, on embedded defaults unless configured.

- Object store: the configured S3 when AWS_S3_ENDPOINT_URL or AWS credentials are set;
  otherwise SeaweedFS on 127.0.0.1 with credentials generated under var/secrets/.
- Database: DATABASE_URL, or SQLite at var/imagepipe.db. Migrated to head on start.
- Broker: CELERY_BROKER_URL / REDIS_URL, or kombu's filesystem transport under var/broker/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from services.infra.settings import ConfigError, Settings


def _say(msg: str) -> None:
    print(f"imagepipe | {msg}", flush=True)


# A child that dies is started again after this many seconds, doubling up to the cap; a child
# that ran this long before dying starts again at once.
RESTART_BACKOFF_S = (1.0, 30.0)
HEALTHY_RUN_S = 60.0


def _ports(settings: Settings) -> dict[str, tuple[str, int]]:
    ports = {
        "the API (PORT)": (settings.host, settings.port),
        "Flower (FLOWER_PORT)": (settings.host, settings.flower_port),
        "the worker's metrics (WORKER_METRICS_PORT)": (settings.host, settings.worker_metrics_port),
    }
    if settings.store_embedded:
        from .seaweed import GRPC_OFFSET

        ports["SeaweedFS's S3 (SEAWEEDFS_S3_PORT)"] = ("127.0.0.1", settings.seaweedfs_s3_port)
        for i in range(5):
            for offset in (0, GRPC_OFFSET):
                port = settings.seaweedfs_base_port + i + offset
                ports[f"SeaweedFS (SEAWEEDFS_BASE_PORT + {i + offset})"] = ("127.0.0.1", port)
    return ports


class Child:
    """One process of the stack, started again with backoff when it dies on its own."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str]):
        self.name, self.cmd, self.env = name, cmd, env
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.delay_s = RESTART_BACKOFF_S[0]
        self.restart_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, env=self.env)
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self) -> None:
        """Notice a death and schedule the restart; restart when it is due."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                _say(f"starting {self.name} again")
                self.start()
            return
        if self.proc is None or self.proc.poll() is None:
            return
        if now - self.started_at >= HEALTHY_RUN_S:
            self.delay_s = RESTART_BACKOFF_S[0]
        _say(f"{self.name} exited with {self.proc.returncode}; restarting it in {self.delay_s:g} s (Ctrl-C stops everything)")
        self.restart_at = now + self.delay_s
        self.delay_s = min(self.delay_s * 2, RESTART_BACKOFF_S[1])

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_all() -> int:
    env = dict(os.environ)
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2

    stopping = False

    def _terminate(_signum, _frame):
        # The first Ctrl-C or SIGTERM stops everything; those that follow (make forwards the one
        # its process group got, an impatient second Ctrl-C) must not cut the cleanup short.
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started with SIGINT ignored (a background job)
    weed = None
    children: list[Child] = []

    def stop_all() -> None:
        for child in reversed(children):
            child.signal(signal.SIGTERM)
        for child in reversed(children):
            child.wait(20)
        if weed is not None:
            weed.stop()

    taken = _taken_ports(settings)
    if taken:
        for line in taken:
            print(f"imagepipe run: {line}", file=sys.stderr)
        return 2
    try:
        if settings.jwt_secret_generated:
            _say(f"JWT_SECRET not set: using a generated development secret in {settings.var_dir / 'secrets'}")
        # Every process derives the same wiring from the same settings (services/infra/settings.py): the
        # children, and any command run beside them in the project folder.
        env["IMAGEPIPE_VAR_DIR"] = str(settings.var_dir)
        embedded_s3 = settings.store_embedded
        if embedded_s3:
            from .seaweed import S3Credentials, SeaweedServer

            assert settings.aws_access_key_id and settings.aws_secret_access_key
            creds = S3Credentials(settings.aws_access_key_id, settings.aws_secret_access_key)
            s3_port = settings.seaweedfs_s3_port
            _say(f"starting SeaweedFS (S3 on 127.0.0.1:{s3_port}, data in {settings.var_dir / 's3'}) ...")
            weed = SeaweedServer(
                settings.var_dir / "s3",
                bucket=settings.aws_s3_bucket,
                credentials=creds,
                s3_port=s3_port,
                base_port=settings.seaweedfs_base_port,
                log_path=settings.var_dir / "seaweedfs.log",
            ).start()
            _say(f"generated S3 credentials are in {settings.var_dir / 'secrets' / 's3_credentials.json'}")

        from db.schema import upgrade
        from services.infra.stores import make_bucket_admin

        from .commands import api_command, beat_command, flower_command, worker_command

        _say(f"migrating {settings.database_url.split('@')[-1]} to head ...")
        upgrade(settings.database_url)
        if embedded_s3:
            from services.storage_admin.bucket import setup

            # The bucket as `imagepipe bucket setup` makes it: only public/ anonymously readable,
            # CORS for CORS_ALLOWED_ORIGINS (this page's origin by default), staging/ expiring; SeaweedFS
            # refuses the originals' archive transition, which is said.
            for notice in setup(make_bucket_admin(settings), settings).notices:
                _say(f"bucket lifecycle: {notice}")

        flower_port = settings.flower_port
        specs = [
            ("api", api_command(settings)),
            ("worker", worker_command(settings)),
            ("beat", beat_command(settings)),
            ("flower", flower_command(settings)),
        ]
        for name, cmd in specs:
            children.append(Child(name, cmd, env))
            children[-1].start()
        base = f"http://{settings.host}:{settings.port}"
        _say(f"API      {base}/api/v1   (health: {base}/healthz, readiness: {base}/readyz)")
        _say(f"web page {base}/")
        flower_user, _ = settings.flower_credentials()
        _say(
            f"Flower   http://{settings.host}:{flower_port}/   (user {flower_user}, password in"
            f" {settings.var_dir / 'secrets' / 'flower_password'} unless FLOWER_PASSWORD is set)"
        )
        if weed is not None:
            _say(f"S3       {weed.endpoint_url}/{settings.aws_s3_bucket}  (public/ is anonymously readable)")
        _say("get a token: .venv/bin/imagepipe token --user 1 --entity properties:17     Ctrl-C stops everything")

        while True:
            for child in children:
                child.check()
            if weed is not None and weed.process is not None and weed.process.poll() is not None:
                _say(f"SeaweedFS exited with {weed.process.returncode}; starting it again (its log: {weed.log_path})")
                weed.start()
            time.sleep(0.5)
    except KeyboardInterrupt:
        _say("stopping ...")
        return 0
    finally:
        stopping = True
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all()
        _say("stopped")


def _taken_ports(settings: Settings) -> list[str]:
    from .ports import taken

    return taken(_ports(settings))
