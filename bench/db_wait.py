"""The database's bounded wait: what the wait callback (db/session.py) costs per round trip.

    .venv/bin/python bench/db_wait.py [--round-trips 5000]

Every psycopg2 round trip of the API and the workers goes through a wait callback that bounds it
in time (a frozen server must not hold a request for ever). Measured: process CPU per `SELECT 1`
round trip to PostgreSQL on 127.0.0.1:5432 with libpq's own blocking wait (the baseline, no
bound) and with the callback, interleaved, five rounds; medians. Target: the callback adds
<= 20 % to a round trip's client CPU. CPU time, not wall time: the figure does not move with a
busy machine as much as the latency does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DSN = "host=127.0.0.1 port=5432 dbname=postgres user=postgres connect_timeout=5"


def cpu_per_round_trip(n: int) -> float:
    import psycopg2

    conn = psycopg2.connect(DSN)
    try:
        cur = conn.cursor()
        for _ in range(200):  # warm
            cur.execute("SELECT 1")
            cur.fetchall()
        start = time.process_time()
        for _ in range(n):
            cur.execute("SELECT 1")
            cur.fetchall()
        return (time.process_time() - start) / n
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=5000)
    args = parser.parse_args()
    import psycopg2.extensions

    from db.session import _bound_round_trips

    plain, bounded = [], []
    for _ in range(5):
        psycopg2.extensions.set_wait_callback(None)
        plain.append(cpu_per_round_trip(args.round_trips))
        _bound_round_trips(10, 5)
        bounded.append(cpu_per_round_trip(args.round_trips))
    a, b = statistics.median(plain), statistics.median(bounded)
    ratio = b / a
    print(
        f"client CPU per round trip: libpq's wait {a * 1e6:.1f} µs, the bounded wait {b * 1e6:.1f} µs: "
        f"{ratio:.2f} x (target <= 1.20: {'met' if ratio <= 1.2 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
