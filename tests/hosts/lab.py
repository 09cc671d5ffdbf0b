"""Several hosts on one machine, for the tests of what crosses a network (tests/hosts): network
namespaces of the suite's own, one per host, each joined by a veth pair to a bridge the suite
creates on a private /24 (the test runner itself is the bridge's address, like a client on the
same network). Every process of a host is started with `ip netns exec`, so it has only that
host's address: nothing reaches another host but through its link, which a test may take down.
Everything is removed at the end, even on failure (Lab.close, and names unique to the run)."""

from __future__ import annotations

import ipaddress
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def why_not() -> str | None:
    """Why this machine cannot make namespaces here (the tests then skip), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"ipprobe{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that no route of the machine touches."""
    routes = _ip("-4", "route", "show", "table", "all").stdout
    used = [ipaddress.ip_network(w, strict=False) for line in routes.splitlines() for w in line.split()[:1] if "/" in w]
    for _ in range(100):
        net = ipaddress.ip_network(f"10.213.{random.randint(1, 254)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /24 in 10.213.0.0/16")


@dataclass
class Host:
    name: str  # the namespace
    address: str
    link: str  # its veth end on the bridge (in the root namespace)
    inner: str  # its veth end inside the namespace
    processes: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *args], capture_output=True, text=True, **kwargs)

    def start(self, args: list[str], *, env: dict[str, str], log) -> subprocess.Popen:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.name, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(proc)
        return proc

    def pids(self) -> list[int]:
        out = _ip("netns", "pids", self.name, check=False).stdout
        return [int(p) for p in out.split()]

    def kill_all(self) -> int:
        """SIGKILL every process in the namespace (a host that dies outright)."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        return len(pids)

    def link_down(self) -> None:
        _ip("link", "set", self.link, "down")

    def link_up(self) -> None:
        _ip("link", "set", self.link, "up")


class Lab:
    def __init__(self, names: list[str]):
        tag = f"{os.getpid() % 100000}"
        self.tag = tag
        self.net = _free_subnet()
        addresses = [str(a) for a in self.net.hosts()]
        self.bridge = f"ipbr{tag}"
        self.gateway = addresses[0]  # the test runner, on the bridge
        self.hosts: dict[str, Host] = {}
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for n, name in enumerate(names, start=1):
                ns, link, inner = f"ip{tag}{name}", f"ipv{tag}{n}", f"ipi{tag}{n}"
                host = Host(ns, addresses[n], link, inner)
                _ip("netns", "add", ns)
                self.hosts[name] = host
                _ip("link", "add", link, "type", "veth", "peer", "name", inner)
                _ip("link", "set", inner, "netns", ns)
                _ip("link", "set", link, "master", self.bridge)
                _ip("link", "set", link, "up")
                host.run("ip", "link", "set", "lo", "up", check=True)
                host.run("ip", "addr", "add", f"{host.address}/24", "dev", inner, check=True)
                host.run("ip", "link", "set", inner, "up", check=True)
        except BaseException:
            self.close()
            raise

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def close(self) -> None:
        for host in self.hosts.values():
            host.kill_all()
            _ip("netns", "del", host.name, check=False)  # its veth pair goes with it
            _ip("link", "del", host.link, check=False)
        _ip("link", "del", self.bridge, check=False)

    @staticmethod
    def leftovers() -> list[str]:
        """Namespaces of this suite that a killed run may have left (names start with `ip` and a pid)."""
        return [line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines() if line.startswith("ip")]


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")
