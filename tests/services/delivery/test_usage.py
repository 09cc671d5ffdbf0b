"""The access log readers on the formats as AWS writes them (quoting, `-` fields, fields appended
later, the CloudFront `#Fields:` header in any order, gzip whole or cut short), the incremental
ingest (each file once, also with two ingests at once), the egress figures and the cost estimate."""

from __future__ import annotations

import gzip
import threading
from datetime import UTC, date, datetime, timedelta
from functools import partial

import pytest

from db.session import make_engine, make_session_factory
from db.unit import unit_of_work
from services.delivery import accesslogs, cost, usage
from services.infra.settings import Settings
from tests.conftest import private_database
from tests.support.accesslogs import CF_FIELDS, Hit, cloudfront_log, s3_line, s3_log

AT = datetime(2026, 11, 20, 23, 59, 58, tzinfo=UTC)
THUMB = "public/properties/17/401/thumbnail_w300_q82.jpg"
MEDIUM_WEBP = "public/properties/17/401/medium_w800_q80.webp"
ORIGINAL = "originals/properties/17/401.jpg"


def _read(raw: bytes) -> tuple[list[accesslogs.Request], accesslogs.FileCounts]:
    text = accesslogs.open_text(raw)
    counts = accesslogs.FileCounts(accesslogs.detect(text))
    return list(accesslogs.parse(text, counts)), counts


def test_s3_lines_count_delivered_gets_of_our_keys_only():
    hits = [
        Hit(THUMB, 21_000, AT),
        Hit(MEDIUM_WEBP, 48_000, AT + timedelta(seconds=5)),  # past midnight UTC: the next day
        Hit(THUMB, 0, AT, status=304),  # revalidated: a request, no body
        Hit(ORIGINAL, 2_900_000, AT),  # a signed URL to an original
        Hit(THUMB, 243, AT, status=403),  # refused: not delivered
        Hit("staging/abc", 100, AT),  # not a served object
        Hit(THUMB, 21_000, AT, operation="REST.PUT.OBJECT", method="PUT"),
        Hit("public/unknown.jpg", 5, AT),  # outside the layout
    ]
    bad = ["garbage", s3_line("b", Hit(THUMB, 1, AT)).replace("[20/Nov/2026", "[99/Nov/2026")]
    requests, counts = _read(s3_log("media-bucket", hits, extra=bad))
    assert counts.format == "s3" and counts.lines == 10 and counts.malformed == 2 and counts.counted == 4
    got = [(r.day, r.entity_type, r.name, r.format, r.bytes, r.hit) for r in requests]
    assert got == [
        (date(2026, 11, 20), "properties", "thumbnail", "jpeg", 21_000, False),
        (date(2026, 11, 21), "properties", "medium", "webp", 48_000, False),
        (date(2026, 11, 20), "properties", "thumbnail", "jpeg", 0, False),
        (date(2026, 11, 20), "properties", "original", "jpeg", 2_900_000, False),
    ]


def test_s3_quoted_fields_with_spaces_and_escaped_quotes_and_no_extra_fields():
    line = s3_line("b", Hit(THUMB, 777, AT), extra_fields=False).replace('"Mozilla/5.0', '"Mozilla/5.0 \\"quoted\\" [bracketed]')
    requests, counts = _read(line.encode())
    assert counts.malformed == 0 and [r.bytes for r in requests] == [777]


def test_cloudfront_reads_fields_by_the_header_in_any_order_and_gzip_cut_short():
    hits = [
        Hit(THUMB, 21_500, AT, result="Hit"),
        Hit(THUMB, 21_500, AT, result="RefreshHit"),
        Hit(MEDIUM_WEBP, 48_300, AT, result="Miss"),
        Hit(MEDIUM_WEBP, 0, AT, method="HEAD", result="Hit"),  # not a GET
        Hit(MEDIUM_WEBP, 900, AT, status=404, result="Error"),
    ]
    requests, counts = _read(cloudfront_log(hits, extra=["2026-11-20\tonly two"]))
    assert counts.format == "cloudfront" and counts.lines == 6 and counts.malformed == 1 and counts.counted == 3
    assert [(r.name, r.format, r.bytes, r.hit) for r in requests] == [
        ("thumbnail", "jpeg", 21_500, True),
        ("thumbnail", "jpeg", 21_500, True),
        ("medium", "webp", 48_300, False),
    ]
    # logging v2 lets the fields be chosen and ordered: read by name
    shuffled = list(reversed(CF_FIELDS))
    again, _ = _read(cloudfront_log(hits, fields=shuffled))
    assert [(r.name, r.bytes, r.hit) for r in again] == [(r.name, r.bytes, r.hit) for r in requests]
    # a delivery cut short: what could be read is read, the cut line is malformed
    whole = cloudfront_log(hits * 200, gz=True)
    partial_requests, partial_counts = _read(whole[: len(whole) // 2])
    assert 0 < len(partial_requests) < 600 and partial_counts.malformed <= 1
    assert _read(gzip.compress(b""))[1].lines == 0 and _read(b"\x1f\x8bnot gzip")[1].lines == 0


@pytest.fixture
def sqlite_uow(tmp_path):
    from db.schema import upgrade

    url = f"sqlite:///{tmp_path / 'usage.db'}"
    upgrade(url)
    return partial(unit_of_work, make_session_factory(make_engine(url)))


def _logs(folder, day: datetime) -> None:
    (folder / "s3").mkdir(parents=True)
    (folder / "cf").mkdir()
    (folder / "s3" / "2026-11-20-10-00-00-A1B2").write_bytes(
        s3_log("b", [Hit(THUMB, 1000, day)] * 3 + [Hit(MEDIUM_WEBP, 5000, day)], extra=["not a log line"])
    )
    (folder / "cf" / "E2QWRUHAPOMQZL.2026-11-20-10.a1b2c3d4.gz").write_bytes(
        cloudfront_log([Hit(THUMB, 1100, day, result="Hit")] * 3 + [Hit(THUMB, 1100, day, result="Miss")])
    )


def test_ingest_reads_each_file_once_and_the_figures_follow(sqlite_uow, tmp_path):
    now = datetime.now(UTC)
    day = now - timedelta(days=2)
    _logs(tmp_path / "logs", day)
    source = usage.FolderSource(tmp_path / "logs")
    first = usage.ingest(sqlite_uow, source)
    assert (first.files_read, first.files_known, first.malformed, first.counted) == (2, 0, 1, 8)
    assert dict(first.formats) == {"s3": 1, "cloudfront": 1}
    assert first.bytes == 3 * 1000 + 5000 + 4 * 1100
    again = usage.ingest(sqlite_uow, source)
    assert (again.files_read, again.files_known, again.counted) == (0, 2, 0)

    stored = {"thumbnail": {"jpeg": {"objects": 1, "bytes": 900}}, "large": {"webp": {"objects": 1, "bytes": 90_000}}}
    with sqlite_uow() as session:
        e = usage.egress(session, stored, days=7, now=now)
    assert e["known"] and e["totals"] == {"requests": 8, "bytes": 12_400}
    assert e["sources"]["cloudfront"] == {"requests": 4, "bytes": 4400, "cache_hit_ratio": 0.75}
    assert e["sources"]["s3"] == {"requests": 4, "bytes": 8000}
    assert e["renditions"] == {
        "medium": {"webp": {"requests": 1, "bytes": 5000}},
        "thumbnail": {"jpeg": {"requests": 7, "bytes": 7400}},
    }
    assert e["never_served"] == [{"rendition": "large", "format": "webp", "objects": 1, "bytes": 90_000}]
    assert [d for d in e["per_day"] if d["requests"]] == [{"date": day.date().isoformat(), "requests": 8, "bytes": 12_400}]
    assert e["logs"]["files"] == 2 and e["logs"]["malformed_lines"] == 1
    # a window that ends before the requests: known, but nothing in it
    with sqlite_uow() as session:
        old = usage.egress(session, stored, days=1, now=now - timedelta(days=5))
    assert old["totals"] == {"requests": 0, "bytes": 0} and len(old["never_served"]) == 2

    # merging the rows changes no figure
    with sqlite_uow() as session:
        assert usage.compact_egress(session) > 0
    with sqlite_uow() as session:
        assert usage.egress(session, stored, days=7, now=now)["renditions"] == e["renditions"]


def test_two_ingests_at_once_count_every_file_once(pg, tmp_path):
    url = private_database(pg, "egress")
    uow = partial(unit_of_work, make_session_factory(make_engine(url)))
    folder = tmp_path / "many"
    folder.mkdir()
    day = datetime.now(UTC) - timedelta(days=1)
    for n in range(40):
        (folder / f"2026-11-20-10-00-{n:02d}-X").write_bytes(s3_log("b", [Hit(THUMB, 100, day)] * 5))
    reports: list = []
    threads = [threading.Thread(target=lambda: reports.append(usage.ingest(uow, usage.FolderSource(folder)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.files_read for r in reports) == 40 and sum(r.counted for r in reports) == 200
    with uow() as session:
        assert usage.egress(session, {}, days=3)["totals"] == {"requests": 200, "bytes": 20_000}


def test_cost_estimate_splits_originals_by_age_and_scales_egress_to_a_month(sqlite_uow, tmp_path):
    from sqlalchemy import insert

    from db.models import StorageUsage

    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    gib = cost.GB
    with sqlite_uow() as session:
        session.execute(
            insert(StorageUsage),
            [
                {
                    "day": date(2026, 6, 1),
                    "entity_type": "properties",
                    "kind": "image",
                    "status": "ready",
                    "objects": 1,
                    "bytes": 10 * gib,
                },
                {
                    "day": date(2026, 12, 1),
                    "entity_type": "properties",
                    "kind": "image",
                    "status": "ready",
                    "objects": 1,
                    "bytes": 2 * gib,
                },
                {
                    "day": date(2026, 12, 1),
                    "entity_type": "properties",
                    "kind": "image",
                    "status": "failed",
                    "objects": 1,
                    "bytes": 9 * gib,
                },
            ],
        )
    settings = Settings.from_env({})
    with sqlite_uow() as session:
        assert cost.originals_by_class(session, 90, now=now) == {"STANDARD": 2 * gib, "GLACIER_IR": 10 * gib}
        assert cost.originals_by_class(session, 0, now=now) == {"STANDARD": 12 * gib, "GLACIER_IR": 0}
        originals = cost.originals_by_class(session, 90, now=now)
    renditions = {"large": {"webp": {"objects": 1, "bytes": gib}}}
    egress = {
        "known": True,
        "days": 30,
        "first_day_with_requests": "2026-11-26",  # 10 days of logs: scaled by 3
        "sources": {"cloudfront": {"requests": 100_000, "bytes": 4 * gib}},
        "renditions": {"large": {"webp": {"requests": 100_000, "bytes": 4 * gib}}},
    }
    c = cost.estimate(settings, originals, renditions, egress, now=now)
    assert c["egress_scaled_from_days"] == 10
    assert c["monthly"]["originals_standard"] == round(2 * 0.023, 2)
    assert c["monthly"]["originals_archive"] == round(10 * 0.004, 2)
    assert c["monthly"]["renditions"] == round(0.023, 2)
    assert c["monthly"]["egress"] == round(12 * 0.085, 2)
    assert c["monthly"]["requests"] == round(30 * 0.01, 2)
    assert c["per_rendition"]["large"] == {"stored_gb": 1.0, "egress_gb_month": 12.0, "usd_month": round(0.023 + 12 * 0.085, 2)}
    assert c["stored_gb"] == {"STANDARD": 3.0, "GLACIER_IR": 10.0}
    # no logs: storage only
    quiet = cost.estimate(settings, originals, renditions, {"known": False, "days": 30}, now=now)
    assert quiet["monthly"]["egress"] == 0 and quiet["egress_scaled_from_days"] is None
