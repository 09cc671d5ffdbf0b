"""A process's few threads for store I/O, shared by everything that overlaps its round trips:
the worker's staging read and writes, the API's staging puts of a many-file upload."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from services.infra.settings import Settings

_pool: tuple[int, ThreadPoolExecutor] | None = None
_lock = threading.Lock()


def io_threads(settings: Settings) -> ThreadPoolExecutor:
    """STORE_PUT_CONCURRENCY threads, made once per process (and again after a fork): every call
    reuses them, rather than starting threads of its own whose bytes glibc would spread over ever
    more malloc arenas (a long-lived process's memory would creep)."""
    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():  # first use, or first use after a fork
            _pool = (os.getpid(), ThreadPoolExecutor(max(1, settings.store_put_concurrency), thread_name_prefix="store-io"))
        return _pool[1]


def submit(settings: Settings, fn: Callable, *args) -> Future:
    return io_threads(settings).submit(fn, *args)


class Batch:
    """Calls run on the I/O threads as they are added (STORE_PUT_CONCURRENCY 1, or `inline`: right
    here, one after the other, a failure raised at once); `finish` waits for every one."""

    def __init__(self, settings: Settings, *, inline: bool = False):
        self.settings = settings
        self.inline = inline or settings.store_put_concurrency <= 1
        self.futures: list[Future] = []

    def add(self, fn: Callable, *args) -> Future:
        if not self.inline:
            self.futures.append(submit(self.settings, fn, *args))
            return self.futures[-1]
        future: Future = Future()
        self.futures.append(future)
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
            raise
        return future

    def finish(self) -> list:
        """Each call's result. Every call has ended, done or failed, before the first failure is
        raised: nothing is left running behind the caller's back."""
        wait(self.futures)
        return [f.result() for f in self.futures]


def run_all(settings: Settings, calls: Iterable[Callable[[], object]]) -> list:
    """Each call's result, the calls overlapped on the I/O threads (a single call runs here)."""
    calls = list(calls)
    batch = Batch(settings, inline=len(calls) <= 1)
    for call in calls:
        batch.add(call)
    return batch.finish()
