"""moto's S3 server over real HTTP on loopback, for what SeaweedFS cannot show (storage classes,
faults): one per module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
