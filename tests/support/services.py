"""Private, real instances of the services for the fault suite: a Redis server and a PostgreSQL
cluster of its own (so stopping, freezing and restarting them touches nothing else on the
machine), each on a free loopback port, with the faults an operator's bad day brings."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout_s: float, alive=lambda: True, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert alive(), "the server exited"
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s}s")


def in_netns(netns: str | None) -> list[str]:
    """The command prefix that runs a process in a network namespace (tests/hosts), or nothing."""
    return ["ip", "netns", "exec", netns] if netns else []


def _signal_tree(pid: int, sig: int) -> None:
    """The process and every descendant (PostgreSQL's backends, SeaweedFS's servers)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children.get(p, [])
    for p in seen:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


class PrivateRedis:
    """A redis-server of its own, with an append-only file as a production broker has one: a
    restart keeps the queued tasks."""

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", netns: str | None = None, port: int | None = None):
        self.folder, self.port, self.host, self.netns = folder, port or free_port(), host, netns
        self.url = f"redis://{host}:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            [
                *in_netns(self.netns),
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, 20, lambda: self.proc.poll() is None, self.host)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis flushes its AOF and exits
            self.proc.wait(timeout=20)

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill_clients(self) -> None:
        import redis

        redis.Redis.from_url(self.url).execute_command("CLIENT", "KILL", "TYPE", "normal")


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb as the postgres user, trust on loopback)."""

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", netns: str | None = None, port: int | None = None):
        self.folder, self.port, self.host, self.netns = folder, port or free_port(), host, netns
        self.data = folder / "data"
        self.bin = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])
        self.url = f"postgresql+psycopg2://postgres@{host}:{self.port}/postgres"

    def _as_postgres(self, *cmd: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(in_netns(self.netns) + prefix + list(cmd), capture_output=True, text=True, timeout=120, check=True)

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self.folder, "postgres", "postgres")
            self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres", "--no-sync")
            if self.host != "127.0.0.1":  # the other hosts of tests/hosts, on their private subnet
                with open(self.data / "pg_hba.conf", "a") as hba:
                    hba.write(f"host all all {self.host.rsplit('.', 1)[0]}.0/24 trust\n")
        self._ctl(
            "start",
            "-w",
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses={self.host} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off",
        )
        return self

    def _ctl(self, *args: str) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "pg.log"), *args)

    def restart(self) -> None:
        self._ctl(
            "restart", "-m", "fast", "-w", "-o", f"-p {self.port} -k {self.folder} -c listen_addresses={self.host} -c fsync=off"
        )

    def stop(self) -> None:
        try:
            self._ctl("stop", "-m", "immediate", "-w")
        except subprocess.CalledProcessError:
            pass

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def freeze(self) -> None:
        _signal_tree(self.postmaster_pid(), signal.SIGSTOP)

    def thaw(self) -> None:
        _signal_tree(self.postmaster_pid(), signal.SIGCONT)

    def terminate_backends(self) -> int:
        """pg_terminate_backend on every client connection but this one."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                return len(
                    conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                        )
                    ).all()
                )
        finally:
            engine.dispose()


def freeze_tree(pid: int) -> None:
    _signal_tree(pid, signal.SIGSTOP)


def thaw_tree(pid: int) -> None:
    _signal_tree(pid, signal.SIGCONT)


class BlackHole:
    """A port that accepts connections (the kernel completes the handshake) and never answers: what
    a frozen server looks like to its clients."""

    def __init__(self):
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def host_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (what another host would connect to)."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True)
    return [line.split()[3].split("/")[0] for line in out.stdout.splitlines() if len(line.split()) > 3]


def answers(host: str, port: int, timeout_s: float = 2.0) -> int | None:
    """The HTTP status `host:port` answers GET / with, or None when nothing listens there."""
    import requests

    try:
        return requests.get(f"http://{host}:{port}/", timeout=timeout_s).status_code
    except requests.ConnectionError:
        return None
