"""Perceptual hashes: what they cost at ingest, and what a lookup costs with a million of them.

    .venv/bin/python bench/reuse.py [--rows 1000000] [--lookups 300]

(a) Hash cost: each photo of tests/corpus/photos rendered as the worker renders it (probe,
    decode, hash, six renditions, placeholders); the render's own `hash` lap against its total,
    runs interleaved. Target: the hash <= 3 % of the render.
(b) Lookup: a throwaway PostgreSQL database (127.0.0.1:5432, schema from `alembic upgrade head`)
    filled with --rows ready images and their hashes (uniformly random 256-bit values: real
    PDQ hashes are balanced, 128 ones each, and spread about as evenly over a slot's 65 536
    values), then `services.moderation.hashes.near` for random queries (a lookup of an upload
    with no copy: the common case) and for queries with a planted copy at distance 10 and 25, at
    REUSE_MAX_DISTANCE 15 (one value probed per slot) and 31 (17 per slot). Baseline in the same
    run: fetching one row by primary key. Target: p99 <= 20 ms at 1 000 000 rows.
Timing targets live here, never in tests.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DB = "imagepipe_bench_reuse"


def hash_cost(rounds: int) -> None:
    from pipeline.limits import ImageLimits
    from pipeline.probe import probe
    from pipeline.render import render

    photos = sorted(p for p in (ROOT / "tests" / "corpus" / "photos").iterdir() if p.suffix != ".md")
    data = {p.name: p.read_bytes() for p in photos}
    laps: dict[str, list[tuple[float, float]]] = {name: [] for name in data}
    for r in range(rounds):
        for name in data if r % 2 == 0 else reversed(list(data)):
            info = probe(data[name], ImageLimits())
            t = time.perf_counter()
            result = render(data[name], info)
            laps[name].append((result.timings["hash"], time.perf_counter() - t))
    print("(a) hash cost per image (median of", rounds, "runs)")
    print("| photo | hash ms | render ms | share |")
    print("|---|---|---|---|")
    shares = []
    for name, runs in laps.items():
        h = statistics.median(x for x, _ in runs) * 1000
        total = statistics.median(y for _, y in runs) * 1000
        shares.append(h / total)
        print(f"| {name} | {h:.1f} | {total:.0f} | {h / total:.1%} |")
    print(f"median share {statistics.median(shares):.1%}, largest {max(shares):.1%} (target <= 3 %)")


def lookups(rows: int, n: int) -> None:
    from sqlalchemy import create_engine, text

    from db.models import Image
    from db.schema import upgrade
    from db.session import make_engine, make_session_factory
    from pipeline.perceptual import PerceptualHash
    from services.moderation.hashes import near

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + DB
    try:
        upgrade(url)
        t = time.perf_counter()
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        _fill(engine, rows)
        engine.dispose()
        print(f"\n(b) lookups with {rows:,} hashes in PostgreSQL (filled and indexed in {time.perf_counter() - t:.0f} s)")
        sessions = make_session_factory(make_engine(url))
        rng = random.Random(5)
        with sessions() as session:
            stored = [row[0] for row in session.execute(text("SELECT pdq FROM image_hashes ORDER BY random() LIMIT 200"))]
            pk = []
            for _ in range(n):
                i = rng.randint(1, rows)
                t = time.perf_counter()
                session.get(Image, i)
                pk.append(time.perf_counter() - t)
                session.expunge_all()
            base = _p(pk, 99)
            print(f"baseline: one row by primary key, p50 {_p(pk, 50) * 1000:.2f} ms, p99 {base * 1000:.2f} ms")
            print("| max distance | query | candidates (last query) | p50 ms | p99 ms | p99 / primary key |")
            print("|---|---|---|---|---|---|")
            for max_distance in (15, 31):
                for kind, planted in (("no copy", None), ("copy at 10", 10), ("copy at 25", 25)):
                    if planted is not None and planted > max_distance:
                        continue
                    times, found = [], []
                    for q in range(n):
                        if planted is None:
                            query = f"{rng.getrandbits(256):064x}"
                        else:
                            value = int(stored[q % len(stored)], 16)
                            for b in rng.sample(range(256), planted):
                                value ^= 1 << b
                            query = f"{value:064x}"
                        mirror = f"{rng.getrandbits(256):064x}"
                        t = time.perf_counter()
                        hits = near(session, PerceptualHash(query, 100, mirror=mirror), max_distance, 50)
                        times.append(time.perf_counter() - t)
                        found.append(len(hits))
                    cands = _candidates(session, query, mirror, max_distance)
                    print(
                        f"| {max_distance} | {kind} | {cands} | {_p(times, 50) * 1000:.1f} | {_p(times, 99) * 1000:.1f} |"
                        f" {_p(times, 99) / base:.0f} x |"
                    )
                    if planted is not None:
                        assert min(found) >= 1, "a planted copy was not found"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        admin.dispose()


def _fill(engine, rows: int) -> None:
    rng = random.Random(2026)
    raw = engine.raw_connection()
    try:
        raw.autocommit = True
        cur = raw.cursor()
        cur.execute("DROP INDEX IF EXISTS " + ", ".join(f"ix_image_hashes_s{i}" for i in range(16)))
        step = 100_000
        for start in range(0, rows, step):
            n = min(step, rows - start)
            images, hashes = io.StringIO(), io.StringIO()
            for i in range(start + 1, start + n + 1):
                value = f"{rng.getrandbits(256):064x}"
                slots = "\t".join(str(int(value[k * 4 : k * 4 + 4], 16)) for k in range(16))
                images.write(f"{i}\tproperties\t{i // 20 + 1}\tready\n")
                hashes.write(f"{i}\t{value}\t100\t2026-12-05T00:00:00Z\t{slots}\n")
            images.seek(0)
            hashes.seek(0)
            cur.copy_expert("COPY images (id, entity_type, entity_id, status) FROM STDIN", images)
            columns = ", ".join(f"s{k}" for k in range(16))
            cur.copy_expert(f"COPY image_hashes (image_id, pdq, quality, created_at, {columns}) FROM STDIN", hashes)
            print(f"  {start + n:,} rows", end="\r", file=sys.stderr)
        for k in range(16):
            cur.execute(f"CREATE INDEX ix_image_hashes_s{k} ON image_hashes (s{k})")
        cur.execute(f"SELECT setval('images_id_seq', {rows})")
        cur.execute("VACUUM ANALYZE")
    finally:
        raw.close()


def _candidates(session, query: str, mirror: str, max_distance: int) -> int:
    """How many rows the slot probes return for one query (before the exact distance check)."""
    from sqlalchemy import func, or_, select

    from db.models import ImageHash
    from services.moderation.hashes import slot_conditions

    conditions = slot_conditions((query, mirror), max_distance)
    return session.scalar(select(func.count()).select_from(ImageHash).where(or_(*conditions)))


def _p(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["cost", "lookup"], default=None)
    args = parser.parse_args()
    if args.only != "lookup":
        hash_cost(args.rounds)
    if args.only != "cost":
        lookups(args.rows, args.lookups)


if __name__ == "__main__":
    main()
