"""A TCP proxy that adds latency and loss to everything it forwards, for links `tc netem` cannot
shape (the kernels these tests run on have no netem): each chunk is released `delay_s` ±
`jitter_s` after it was read, in order, and a `loss` share of chunks waits a retransmission's
worth more (`loss_stall_s`), as a dropped TCP segment does. Both directions, every connection."""

from __future__ import annotations

import queue
import random
import socket
import threading
import time


class LatencyProxy:
    def __init__(
        self,
        listen: tuple[str, int],
        upstream: tuple[str, int],
        *,
        delay_s: float = 0.2,
        jitter_s: float = 0.05,
        loss: float = 0.0,
        loss_stall_s: float = 0.4,
        seed: int = 7,
    ):
        self.upstream, self.delay_s, self.jitter_s = upstream, delay_s, jitter_s
        self.loss, self.loss_stall_s = loss, loss_stall_s
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.connections = 0
        self.stalled = 0
        self._server = socket.create_server(listen)
        self.address = self._server.getsockname()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                self._pump(a, b)

    def _lag(self) -> float:
        with self.lock:
            lag = self.delay_s + self.random.uniform(-self.jitter_s, self.jitter_s)
            if self.loss and self.random.random() < self.loss:
                self.stalled += 1
                lag += self.loss_stall_s
        return max(0.0, lag)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def read() -> None:
            last = 0.0
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                last = max(last, time.monotonic() + self._lag())  # in order, like one TCP stream
                chunks.put((last, data))
                if not data:
                    return

        def write() -> None:
            while True:
                release, data = chunks.get()
                wait = release - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                try:
                    dst.sendall(data)
                except OSError:
                    src.close()
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._server.close()
