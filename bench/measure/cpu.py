"""Where the machine's CPU goes: CPU seconds per process group between two readings (/proc)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def machine_seconds() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK, idle / TICK


def pids_of_user(user: str) -> list[int]:
    out = subprocess.run(["ps", "-u", user, "-o", "pid="], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def pids_named(name: str) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()]


class CpuMeter:
    """CPU seconds used by each group of processes (name -> a function listing its pids) between
    its creation and `used()`, plus the rest of the machine ("other processes") and "idle"."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]):
        self.groups = groups
        self.start, self.start_machine = self._read(), machine_seconds()

    def _read(self) -> dict[str, dict[int, float]]:
        return {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()}

    def used(self) -> dict[str, float]:
        end, end_machine = self._read(), machine_seconds()
        out = {name: sum(v - self.start[name].get(pid, 0.0) for pid, v in end[name].items()) for name in self.groups}
        busy, idle = (end_machine[i] - self.start_machine[i] for i in (0, 1))
        # A group named with a leading space is a part of the one before ("  of which ..."): not summed twice.
        out["other processes"] = max(0.0, busy - sum(v for k, v in out.items() if not k.startswith(" ")))
        out["idle"] = idle
        return out
