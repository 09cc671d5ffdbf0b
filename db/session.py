"""Engine and session factory. One engine per process (re-created after a fork).

PostgreSQL calls are bounded in time (`DbTimeouts`): libpq's connect timeout, the server's
`statement_timeout`, the pool's wait, and a client-side deadline on every round trip. The last
one matters when the server is frozen (stopped, swapped out, a network black hole): it cannot
enforce its own statement timeout, and the kernel keeps acknowledging our packets, so without a
deadline of our own a request would wait for ever.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


@dataclass(frozen=True)
class DbTimeouts:
    connect_s: float
    statement_s: float
    pool_s: float


def make_engine(database_url: str, timeouts: DbTimeouts | None = None) -> Engine:
    """`timeouts`: the services' bounds (services/infra/runtime.py passes the settings'); None for tools
    such as migrations, which may take their time."""
    if database_url.startswith("sqlite"):
        # The embedded default: the API and worker processes share one file. WAL lets
        # readers proceed during a write; the busy timeout waits out short write locks.
        engine = create_engine(database_url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if timeouts is None:
        return create_engine(database_url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    _bound_round_trips(timeouts.statement_s + 1, timeouts.connect_s)
    return create_engine(
        database_url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=timeouts.pool_s,
        connect_args={
            "connect_timeout": max(1, round(timeouts.connect_s)),
            "options": f"-c statement_timeout={int(timeouts.statement_s * 1000)}",
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        },
    )


def _bound_round_trips(seconds: float, connect_s: float) -> None:
    """Every psycopg2 round trip of this process waits at most `seconds` (a wait callback: libpq
    runs non-blocking and we select() with a deadline; `connect_s` while connecting). The error
    reads as a lost connection, so SQLAlchemy discards the connection instead of reusing it.

    The callback runs for every round trip of every query, so it is lean: the names it uses are
    bound here once, and the clock is read only when libpq has to wait at all. It costs 2-3 µs of
    CPU per round trip over libpq's own blocking wait (bench/db_wait.py); a py-spy profile shows
    far more of it, because the time spent waiting in select() is sampled as if it were work."""
    import psycopg2.extensions
    from psycopg2 import OperationalError
    from psycopg2.extensions import POLL_OK, POLL_READ, POLL_WRITE, STATUS_SETUP

    def wait(conn, _now=time.monotonic, _select=select.select) -> None:
        # Which bound applies is read before the first poll, which may move the status on.
        limit, deadline = (connect_s if conn.status == STATUS_SETUP else seconds), None
        while True:
            state = conn.poll()
            if state == POLL_OK:
                return
            if deadline is None:
                deadline = _now() + limit
            remaining = deadline - _now()
            if state == POLL_READ:
                ready = remaining > 0 and bool(_select([conn.fileno()], [], [], remaining)[0])
            elif state == POLL_WRITE:
                ready = remaining > 0 and bool(_select([], [conn.fileno()], [], remaining)[1])
            else:
                raise OperationalError(f"bad state from poll: {state}")
            if not ready:
                raise OperationalError(
                    f"could not receive data from server: no answer within {limit:.0f} s (client-side deadline)"
                )

    psycopg2.extensions.set_wait_callback(wait)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
