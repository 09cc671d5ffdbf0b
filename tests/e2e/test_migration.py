"""The legacy migration as ops run it: `imagepipe legacy seed`, `migrate run` (a real worker on
the migration queue), run again, `verify`, `redirects` and the API's 301s, `rollback` — with the
table compared column by column before the migration and after the rollback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from sqlalchemy import text

from db.models import Image
from services.legacy.move import SNAPSHOT_COLUMNS
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e
COUNT = 30


def _cli(*args, env, cwd):
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _table(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(f"SELECT id, {', '.join(SNAPSHOT_COLUMNS)} FROM images WHERE legacy_table IS NOT NULL ORDER BY id")
            )
        ]


def test_seed_migrate_rerun_verify_redirect_and_roll_back(
    settings_env, celery_worker, engine, store, live_server, tmp_path, session
):
    env = {**settings_env, "PYTHONPATH": str(ROOT)}
    legacy_dir = tmp_path / "legacy"
    seeded = _cli("legacy", "seed", "--dir", str(legacy_dir), "--count", str(COUNT), env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    made = json.loads(seeded.stdout)
    assert made["rows"] == COUNT and made["missing"] >= 1 and made["corrupt"] >= 1 and made["empty"] == 1
    assert made["odd_names"] >= 3
    before = _table(engine)
    assert len(before) == COUNT

    dry = _cli("migrate", "run", "--source", str(legacy_dir), "--dry-run", env=env, cwd=tmp_path)
    assert (
        dry.returncode == 0 and json.loads(dry.stdout)["total"] == COUNT and json.loads(dry.stdout)["missing"] == made["missing"]
    )
    assert _table(engine) == before  # a dry run changes nothing

    first = _cli(
        "migrate",
        "run",
        "--source",
        str(legacy_dir),
        "--batch-size",
        "7",
        "--report",
        str(tmp_path / "report.json"),
        env=env,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr[-3000:] + first.stdout[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    bad = made["missing"] + made["corrupt"] + made["empty"]
    assert (report["total"], report["done"], report["failed"]) == (COUNT, COUNT - bad, bad)
    assert report["failed_by_code"]["source_missing"]["count"] == made["missing"]
    assert report["failed_by_code"]["corrupt_image"]["count"] == made["corrupt"]
    assert report["failed_by_code"]["empty_file"]["count"] == 1
    assert report["bytes_read"] > 0 and report["bytes_written"] > 0
    assert set(report["per_entity"]) == {"properties", "projects", "avatars"}
    assert "failed corrupt_image" in first.stdout and "done" in first.stdout

    migrated = session.query(Image).filter(Image.legacy_table.is_not(None), Image.status == "ready").all()
    assert len(migrated) == COUNT - bad
    for image in migrated:
        assert len(image.renditions) == 6 and image.url.startswith("/uploads/")  # the legacy URL is kept
        assert store.exists(image.s3_key)

    again = _cli("migrate", "run", "--source", str(legacy_dir), env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{COUNT - bad} already migrated (skipped)" in again.stdout
    assert f"{bad} failed before (use --retry-failed" in again.stdout

    # A lost file turns up again: --retry-failed moves it; the other failures stay failed.
    lost = report["failed_by_code"]["source_missing"]["files"][0]
    (legacy_dir / lost).write_bytes((ROOT / "tests" / "corpus" / "photos" / "tree_1024x772.webp").read_bytes())
    retried = _cli(
        "migrate",
        "run",
        "--source",
        str(legacy_dir),
        "--retry-failed",
        "--report",
        str(tmp_path / "retry.json"),
        env=env,
        cwd=tmp_path,
    )
    assert retried.returncode == 0, retried.stderr[-2000:]
    retry = json.loads((tmp_path / "retry.json").read_text())
    assert (retry["total"], retry["done"], retry["failed"]) == (bad, 1, bad - 1)
    bad -= 1
    migrated = session.query(Image).filter(Image.legacy_table.is_not(None), Image.status == "ready").all()

    checked = _cli("migrate", "verify", "--output", str(tmp_path / "verify.json"), env=env, cwd=tmp_path)
    verified = json.loads((tmp_path / "verify.json").read_text())
    assert verified["checked"] == COUNT - bad  # every migrated image was looked at
    assert (verified["problems"], checked.returncode) == ([], 0)  # the store and the files agree
    # A legacy row whose file is gone is listed (here: a corrupt file that never migrated is deleted).
    corrupt = report["failed_by_code"]["corrupt_image"]["files"][0]
    (legacy_dir / corrupt).unlink()
    checked = _cli("migrate", "verify", "--output", str(tmp_path / "verify.json"), env=env, cwd=tmp_path)
    problems = json.loads((tmp_path / "verify.json").read_text())["problems"]
    assert [(p["problem"], p["url"]) for p in problems] == [("row_without_file", "/uploads/" + corrupt)]
    assert checked.returncode == 1
    victim = migrated[0].renditions[0].key
    store.delete(victim)
    assert _cli("migrate", "verify", "--output", str(tmp_path / "v2.json"), env=env, cwd=tmp_path).returncode == 1
    tampered = json.loads((tmp_path / "v2.json").read_text())["problems"]
    assert {
        "image_id": migrated[0].id,
        "file": _item_path(engine, migrated[0].id),
        "problem": "object_missing",
        "key": victim,
    } in tampered
    assert "checksum_differs" not in {p["problem"] for p in tampered}

    redirect_map = _cli("migrate", "redirects", env=env, cwd=tmp_path).stdout.splitlines()
    assert redirect_map[0] == "legacy_url,new_url" and len(redirect_map) == 1 + COUNT - bad
    old, new = redirect_map[1].split(",", 1)
    moved = requests.get(live_server + old.replace(" ", "%20"), allow_redirects=False, timeout=10)
    assert moved.status_code == 301 and moved.headers["Location"] == new
    assert "large_w1600" in new
    assert requests.get(f"{live_server}/uploads/properties/1/none.jpg", timeout=10).status_code == 404

    for _ in range(2):  # idempotent
        for run_id in (report["run"], retry["run"]):
            undone = _cli("migrate", "rollback", "--run", run_id, env=env, cwd=tmp_path)
            assert undone.returncode == 0, undone.stderr[-2000:]
    assert _table(engine) == before  # exactly as it was, column by column
    with engine.connect() as conn:
        audited = conn.execute(text("SELECT actor, detail FROM audit_log WHERE action = 'migration_rollback'")).all()
    runs = [json.loads(d)["run"] for _, d in audited if json.loads(d)["run"] in (report["run"], retry["run"])]
    assert sorted(runs) == sorted([report["run"], retry["run"]] * 2) and all(a.startswith("cli:") for a, _ in audited)
    assert session.query(Image).filter(Image.legacy_table.is_not(None), Image.status == "ready").count() == 0
    assert store.exists(migrated[1].s3_key)  # objects stay as a backup without --delete-objects
    assert requests.get(live_server + old.replace(" ", "%20"), allow_redirects=False, timeout=10).status_code == 404


def _item_path(engine, image_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT source_path FROM migration_items WHERE image_id = :i AND status = 'done'"), {"i": image_id}
        ).scalar()
