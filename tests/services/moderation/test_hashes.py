"""The multi-index lookup: exact at the distance asked for (the pigeonhole argument, checked by
brute force), on PostgreSQL and on SQLite (the embedded default)."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import delete

from db.models import Image, ImageHash, ImageStatus
from db.schema import upgrade
from db.session import make_engine, make_session_factory
from db.unit import unit_of_work
from pipeline.perceptual import PerceptualHash, hamming
from services.moderation.hashes import hash_row, near, probe_values
from tests.conftest import private_database


def _flip(hex_hash: str, bits: list[int]) -> str:
    value = int(hex_hash, 16)
    for b in bits:
        value ^= 1 << b
    return f"{value:064x}"


def test_probe_values_cover_every_hash_within_the_distance():
    rng = random.Random(7)
    for max_distance in (15, 31):
        for _ in range(300):
            query = f"{rng.getrandbits(256):064x}"
            other = _flip(query, rng.sample(range(256), rng.randint(0, max_distance)))
            probes = probe_values(query, max_distance)
            theirs = [int(other[i * 4 : i * 4 + 4], 16) for i in range(16)]
            assert any(theirs[i] in probes[i] for i in range(16)), (query, other)
    assert [len(v) for v in probe_values("0" * 64, 15)] == [1] * 16
    assert [len(v) for v in probe_values("0" * 64, 31)] == [17] * 16


@pytest.fixture(params=["postgresql", "sqlite"])
def units(request, pg, tmp_path):
    url = private_database(pg, "hashes") if request.param == "postgresql" else f"sqlite:///{tmp_path}/h.db"
    if request.param == "sqlite":
        upgrade(url)
    engine = make_engine(url)
    yield lambda: unit_of_work(make_session_factory(engine))
    engine.dispose()


def test_near_finds_exactly_the_hashes_within_the_distance(units):
    rng = random.Random(11)
    query = f"{rng.getrandbits(256):064x}"
    distances = [0, 3, 15, 16, 24, 31, 32, 40, 128]
    expected = {}
    with units() as session:
        for i, d in enumerate(distances):
            image = Image(entity_type="properties", entity_id=900 + i, status=ImageStatus.READY)
            session.add(image)
            session.flush()
            hexed = _flip(query, rng.sample(range(256), d))
            assert hamming(hexed, query) == d
            session.add(hash_row(image.id, PerceptualHash(hexed, 100)))
            expected[image.id] = d
        flat = Image(entity_type="properties", entity_id=999, status=ImageStatus.READY)
        session.add(flat)
        session.flush()
        session.add(hash_row(flat.id, PerceptualHash(query, 20)))  # the same bits, but too flat to match
    with units() as session:
        for max_distance in (15, 31):
            found = {n.image_id: n.distance for n in near(session, PerceptualHash(query, 100), max_distance, 50)}
            assert found == {i: d for i, d in expected.items() if d <= max_distance}
        # the query's mirror image is looked up too
        mirrored = PerceptualHash(f"{rng.getrandbits(256):064x}", 100, mirror=query)
        hits = near(session, mirrored, 15, 50)
        assert {n.image_id for n in hits} == {i for i, d in expected.items() if d <= 15} and all(n.mirrored for n in hits)
        session.execute(delete(ImageHash))
