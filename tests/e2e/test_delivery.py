"""Bandwidth and cost from access logs of both formats, made from an upload the suite performed
(its real keys and rendition sizes), read three ways: `imagepipe usage ingest --from s3://...`
(a log prefix in SeaweedFS), `--dir` (a local folder) and the beat task on the real worker; then
the figures through `GET /api/v1/admin/storage/stats` and `imagepipe stats`. This module is the only
one that ingests logs into the suite's shared database, so the figures are exact."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

import celeryconfig
from tests.conftest import ROOT, corpus, new_entity_id, private_database
from tests.support.accesslogs import Hit, cloudfront_log, s3_line, s3_log
from tests.support.http import upload, wait_for_job

pytestmark = pytest.mark.e2e


def _cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _key(url: str) -> str:
    return "public/" + url.split("/public/", 1)[1].split("?", 1)[0]


def test_egress_per_rendition_from_both_log_formats_through_the_cli_the_worker_and_the_api(
    live_server, celery_worker, settings, settings_env, store, make_token, tmp_path
):
    entity_id = new_entity_id()
    writer = {"Authorization": f"Bearer {make_token(77, entities=(f'properties:{entity_id}',))}"}
    admin = {"Authorization": f"Bearer {make_token(1, admin=True)}"}
    r = upload(live_server, writer, "properties", entity_id, corpus("photos", "flickr-saw_2725x2225.jpg"))
    assert r.status_code == 202, r.text
    assert wait_for_job(live_server, writer, r.json()["job"]["status_url"])["status"] == "succeeded"
    image = requests.get(f"{live_server}/api/v1/images/{r.json()['images'][0]['id']}", headers=writer, timeout=10).json()
    rend = image["renditions"]
    thumb, thumb_webp = rend["thumbnail"]["jpeg"], rend["thumbnail"]["webp"]
    medium_webp, large_webp = rend["medium"]["webp"], rend["large"]["webp"]

    day = datetime.now(UTC).replace(hour=13, minute=5, second=0, microsecond=0) - timedelta(days=3)
    s3_hits = (
        [Hit(_key(thumb["url"]), thumb["bytes"], day)] * 3
        + [Hit(_key(medium_webp["url"]), medium_webp["bytes"], day)] * 2
        + [
            Hit(_key(thumb["url"]), 0, day, status=304),  # revalidated: counted, no bytes
            Hit(_key(thumb["url"]), 243, day, status=403),  # refused: not delivered
            Hit(_key(thumb["url"]), thumb["bytes"], day, operation="REST.PUT.OBJECT", method="PUT"),
        ]
    )
    cf_hits = [Hit(_key(large_webp["url"]), large_webp["bytes"], day, result=res) for res in ("Hit", "Hit", "Miss", "RefreshHit")]
    cf_hits.append(Hit(_key(thumb_webp["url"]), thumb_webp["bytes"], day, result="Hit"))
    prefix = f"logs-{secrets.token_hex(4)}/"
    store.put(
        f"{prefix}s3/{day:%Y-%m-%d-%H-%M-%S}-7D1F1A2B3C4D5E6F",
        s3_log(settings.aws_s3_bucket, s3_hits, extra=["not a log line", "- - - -"]),
        content_type="text/plain",
    )
    store.put(
        f"{prefix}cf/E2QWRUHAPOMQZL.{day:%Y-%m-%d-%H}.a1b2c3d4.gz", cloudfront_log(cf_hits), content_type="application/gzip"
    )
    local = tmp_path / "more-logs"
    local.mkdir()
    (local / "2026-late-delivery.gz").write_bytes(
        s3_log(settings.aws_s3_bucket, [Hit(_key(thumb["url"]), thumb["bytes"], day)], gz=True)
    )

    # the CLI: both files of the prefix, then nothing new
    first = _cli("usage", "ingest", "--from", f"s3://{settings.aws_s3_bucket}/{prefix}", "--json", env=settings_env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["files_read"], report["formats"], report["malformed_lines"]) == (2, {"s3": 1, "cloudfront": 1}, 2)
    assert report["requests_counted"] == 3 + 2 + 1 + 5
    again = _cli("usage", "ingest", "--from", f"s3://{settings.aws_s3_bucket}/{prefix}", env=settings_env)
    assert again.returncode == 0 and "0 new file(s) read" in again.stdout and "2 already read" in again.stdout
    folder = _cli("usage", "ingest", "--dir", str(local), env=settings_env)
    assert folder.returncode == 0 and "1 new file(s) read (1 s3)" in folder.stdout, folder.stdout

    # the beat task on the real worker, for a file delivered later under another prefix
    store.put(
        f"{prefix}late/E2QWRUHAPOMQZL.{day:%Y-%m-%d}-23.ffff.gz",
        cloudfront_log([Hit(_key(large_webp["url"]), large_webp["bytes"], day, result="Miss")]),
        content_type="application/gzip",
    )
    celery_worker.app.send_task(
        celeryconfig.USAGE_INGEST_TASK,
        kwargs={"location": f"s3://{settings.aws_s3_bucket}/{prefix}late/"},
        queue=settings.maintenance_queue,
    )

    def stats() -> dict:
        answer = requests.get(f"{live_server}/api/v1/admin/storage/stats?days=7", headers=admin, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    deadline = time.monotonic() + 60
    while (s := stats())["egress"]["logs"]["files"] < 4:
        assert time.monotonic() < deadline, "the worker did not ingest the late file"
        time.sleep(0.5)

    e = s["egress"]
    assert e["known"] and e["days"] == 7 and e["logs"]["files"] == 4 and e["logs"]["malformed_lines"] == 2
    served = 4 * thumb["bytes"] + 2 * medium_webp["bytes"] + 5 * large_webp["bytes"] + thumb_webp["bytes"]
    [that_day] = [d for d in e["per_day"] if d["date"] == day.date().isoformat()]
    assert that_day == {"date": day.date().isoformat(), "requests": 13, "bytes": served}
    assert e["renditions"]["thumbnail"] == {
        "jpeg": {"requests": 5, "bytes": 4 * thumb["bytes"]},
        "webp": {"requests": 1, "bytes": thumb_webp["bytes"]},
    }
    assert e["renditions"]["medium"] == {"webp": {"requests": 2, "bytes": 2 * medium_webp["bytes"]}}
    assert e["renditions"]["large"] == {"webp": {"requests": 5, "bytes": 5 * large_webp["bytes"]}}
    assert e["sources"]["cloudfront"] == {
        "requests": 6,
        "bytes": 5 * large_webp["bytes"] + thumb_webp["bytes"],
        "cache_hit_ratio": 0.6667,
    }
    assert e["entities"]["properties"] == {"requests": 13, "bytes": served}
    never = {(n["rendition"], n["format"]) for n in e["never_served"]}
    assert {("medium", "jpeg"), ("large", "jpeg")} <= never and not never & {("thumbnail", "jpeg"), ("large", "webp")}

    c = s["cost"]
    assert c["egress_scaled_from_days"] == 4  # the logs' first day with requests was 3 days ago
    cf_gb = (5 * large_webp["bytes"] + thumb_webp["bytes"]) * 30 / 4 / 1024**3
    s3_gb = (4 * thumb["bytes"] + 2 * medium_webp["bytes"]) * 30 / 4 / 1024**3
    assert c["monthly"]["egress"] == round(cf_gb * 0.085 + s3_gb * 0.09, 2)
    assert c["per_rendition"]["large"]["egress_gb_month"] == round(5 * large_webp["bytes"] * 30 / 4 / 1024**3, 3)

    human = _cli("stats", "--days", "7", env=settings_env)
    assert human.returncode == 0, human.stderr
    assert "egress, last 7 days: 13 requests" in human.stdout
    assert "cache hit ratio 66.7%" in human.stdout and "never served in 7 days: " in human.stdout
    assert "cost estimate (USD/month, prices of 2026-12-01)" in human.stdout


def test_malformed_and_foreign_lines_never_stop_an_ingest(pg, settings_env, tmp_path):
    """A folder with a binary file, an empty file and a line cut in half: all read, all counted
    (in a database of its own: the first test's figures stay exact)."""
    env = {**settings_env, "DATABASE_URL": private_database(pg, "odd_logs")}
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "binary").write_bytes(bytes(range(256)) * 4)
    (folder / "empty").write_bytes(b"")
    line = s3_line("b", Hit("public/properties/1/2/thumbnail_w300_q82.jpg", 10, datetime.now(UTC)))
    (folder / "cut").write_text(line[: len(line) // 3] + "\n")
    out = _cli("usage", "ingest", "--dir", str(folder), "--json", env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["files_read"] == 3 and report["requests_counted"] == 0 and report["malformed_lines"] >= 2
    refused = _cli("usage", "ingest", env={**env, "ACCESS_LOG_PREFIX": ""})
    assert refused.returncode == 2 and "give --dir PATH or --from s3://BUCKET/PREFIX" in refused.stderr


def test_beat_ingests_only_where_a_log_prefix_is_set(settings):
    assert "usage_ingest" not in celeryconfig.beat_schedule(settings)
    on = celeryconfig.beat_schedule(
        settings.with_overrides(access_log_prefix="s3://logs/imagepipe/", usage_ingest_interval_s=600)
    )
    assert on["usage_ingest"] == {"task": celeryconfig.USAGE_INGEST_TASK, "schedule": 600.0}
