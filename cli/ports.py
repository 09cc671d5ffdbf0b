"""Is a port free, and if not, who holds it: `imagepipe run` says so in one line before it starts
anything, instead of a server dying later with "address already in use"."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (with SO_REUSEADDR, as servers bind: a
    port left in TIME_WAIT by the last run is free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def holder(port: int) -> str | None:
    """'pid 1234 (python -m gunicorn ...)' for the process listening on `port`, when this user may
    see it (Linux /proc); None otherwise."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in fds):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                return f"pid {pid} ({cmd[:80]})"
        except OSError:
            continue
    return None


def taken(ports: dict[str, tuple[str, int]]) -> list[str]:
    """One line per port that is not free: what it is for, the setting that moves it, and who
    holds it. `ports` maps a description ('the API (PORT)') to (host, port)."""
    lines = []
    for what, (host, port) in ports.items():
        if port and not port_free(host, port):
            who = f" by {holder(port)}" if holder(port) else ""
            lines.append(f"port {port} on {host}, for {what}, is in use{who}: stop it or choose another port")
    return lines
