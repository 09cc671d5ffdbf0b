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


def run_all() -> int:
    env = dict(os.environ)
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2

    def _terminate(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started with SIGINT ignored (a background job)
    weed = None
    children: list[tuple[str, subprocess.Popen]] = []

    def stop_all() -> None:
        for _name, proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(children):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if weed is not None:
            weed.stop()

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
            # CORS for this page's origin, staging/ expiring after a day.
            setup(make_bucket_admin(settings), settings)

        flower_port = settings.flower_port
        specs = [
            ("api", api_command(settings)),
            ("worker", worker_command(settings)),
            ("beat", beat_command(settings)),
            ("flower", flower_command(settings)),
        ]
        for name, cmd in specs:
            children.append((name, subprocess.Popen(cmd, env=env)))
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
            for name, proc in children:
                if proc.poll() is not None:
                    _say(f"{name} exited with {proc.returncode}; stopping the rest")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        _say("stopping ...")
        return 0
    finally:
        stop_all()
