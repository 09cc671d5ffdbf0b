"""What every measurement is given: the running system, its API, the photos, the database poll,
the worker processes, a work folder and where results go (no module globals)."""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from measure.results import Results
from stack import Stack, put_photo


class Counts:
    """(images no longer pending, images ready) of some properties, from the database."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(url)

    def __call__(self, entity_ids: list[int]) -> tuple[int, int]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT COALESCE(SUM(CASE WHEN status <> 'pending' THEN 1 ELSE 0 END), 0),"
                    " COALESCE(SUM(CASE WHEN status = 'ready' THEN 1 ELSE 0 END), 0)"
                    " FROM images WHERE entity_type = 'properties' AND entity_id IN ("
                    + ",".join(str(int(e)) for e in entity_ids)
                    + ")"
                )
            ).one()
        return int(row[0]), int(row[1])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_entity() -> int:
    return secrets.randbelow(10**12) + 10**6


@dataclass
class Run:
    stack: Stack
    base: str  # the API's URL
    api_pid: int
    files: list[Path]
    counts: Counts
    processes: int  # worker processes
    work: Path
    results: Results
    worker_env: dict[str, str] = field(default_factory=dict)

    def worker(self, concurrency: int):
        return self.stack.worker(concurrency, **self.worker_env)

    def upload_all(self, files: list[Path], entity_id: int, clients: int = 4) -> None:
        token, local = self.stack.token(), threading.local()

        def one(path: Path) -> None:
            session = getattr(local, "s", None) or requests.Session()
            local.s = session
            put_photo(session, self.base, token, entity_id, path.read_bytes(), path.name)

        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, files))
