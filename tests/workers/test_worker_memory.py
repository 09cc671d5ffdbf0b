"""workers/memory.py: the worker limits glibc's malloc arenas to two (unless the operator set
MALLOC_ARENA_MAX) and trims the heap once a pool process is idle; bench/e2e.py measures the effect on a
pool process's memory over 1 000 images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Eight threads allocating at once, as the task and the store's I/O threads do; then glibc's own
# account of its arenas (malloc_info: one <heap> per arena).
PROBE = """
import ctypes, ctypes.util, sys, tempfile, threading
from workers import memory
limited = memory.limit_arenas()
barrier = threading.Barrier(8)
def churn():
    barrier.wait()
    blocks = [bytearray(200_000) for _ in range(20)]
    barrier.wait()
threads = [threading.Thread(target=churn) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
memory.release()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
path = tempfile.mktemp()
f = libc.fopen(path.encode(), b"w"); libc.malloc_info(0, ctypes.c_void_p(f)); libc.fclose(ctypes.c_void_p(f))
print(limited, open(path).read().count("<heap nr="))
"""


def _run(env: dict) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    limited, arenas = out.stdout.split()
    return limited, int(arenas)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_the_worker_limits_malloc_arenas_unless_the_operator_chose():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == ("True", 2)
    limited, arenas = _run({**env, "MALLOC_ARENA_MAX": "4"})  # the operator's value stands
    assert limited == "False" and arenas == 4


def test_the_heap_is_trimmed_once_the_process_is_idle_not_between_back_to_back_tasks():
    import time

    from workers.memory import IdleTrim

    trims: list[float] = []
    trim = IdleTrim(delay_s=0.3, trim=lambda: trims.append(time.monotonic()))
    for _ in range(5):  # tasks back to back: each one starts before the delay is over
        trim.busy()
        time.sleep(0.05)
        trim.idle()
        time.sleep(0.1)
    assert trims == []
    ended = time.monotonic()
    deadline = ended + 3
    while not trims and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(trims) == 1 and trims[0] - ended >= 0.15  # once, after the delay
    time.sleep(0.5)
    assert len(trims) == 1  # and not again until another task has run
