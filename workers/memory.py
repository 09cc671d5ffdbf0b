"""glibc's allocator, tuned for a process that handles one image after another.

Measured with bench/e2e.py (measurement 5, 1 000 uploads): with glibc's defaults a pool
process's peak resident set crept from 202 to 237 MB between the first and the last hundred
images, the images' megabytes spread over one malloc arena per thread that ever touched them
(the task's, the store's I/O threads', botocore's). With two arenas it stayed at 182 -> 183 MB.
So the worker limits the arenas to two (unless MALLOC_ARENA_MAX says otherwise) before any
thread starts, and hands free pages back once a pool process has been idle for a second
(`IdleTrim`), as imgproxy frees memory between requests. Not after every task: the next image
would fault the same pages back in, and that cost 6-10 ms of CPU per 3 MP image (2-3 % of its
render, mostly the kernel zeroing pages; /tmp measurements in docs/benchmarks.md), while the peak
a process reaches is the same either way. Nothing to do on other C libraries."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Callable

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim") else False
        except OSError:
            _libc = False
    return _libc


def limit_arenas(arenas: int = 2) -> bool:
    """In the worker's main process, before its pool forks: the processes inherit the limit."""
    if "MALLOC_ARENA_MAX" in os.environ or not _glibc():
        return False
    return bool(_glibc().mallopt(M_ARENA_MAX, arenas))


def release() -> None:
    """After a task: the heap's free pages back to the system (about a millisecond at most)."""
    if _glibc():
        _glibc().malloc_trim(0)


class IdleTrim:
    """Calls `trim` once no task has run for `delay_s`: `idle()` when a task ends (re)arms it,
    `busy()` when one starts disarms it. One daemon thread per process, started at the first
    `idle()` (so in each pool process, after the fork)."""

    def __init__(self, delay_s: float = 1.0, trim: Callable[[], None] = release):
        self.delay_s, self.trim = delay_s, trim
        self._cond = threading.Condition()
        self._due: float | None = None
        self._thread: threading.Thread | None = None

    def busy(self) -> None:
        with self._cond:
            self._due = None

    def idle(self) -> None:
        with self._cond:
            self._due = time.monotonic() + self.delay_s
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._due is None:
                    self._cond.wait()
                wait = self._due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                self._due = None
            self.trim()


IDLE_TRIM = IdleTrim()
