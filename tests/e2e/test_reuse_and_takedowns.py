"""Lifted photos and takedowns end to end over HTTP, with the real worker: a photo lifted from
another agent's listing (resized, recompressed) is flagged; a taken-down photo uploaded again
(recompressed) fails blocked_image with nothing written; the audit trail has each action.

Each test makes pictures of its own (random shapes, never seen by the rest of the suite), so the
suite's shared database holds no other copy of them and a blocklist entry blocks nothing else."""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import pyvips
import requests
from prometheus_client import REGISTRY
from sqlalchemy import delete

from db.models import Image, ImageHash
from tests.conftest import ROOT, new_entity_id
from tests.support.http import wait_for_job

pytestmark = pytest.mark.e2e


def unique_photo(width: int = 1600, height: int = 1200) -> pyvips.Image:
    """A picture nobody else has: smooth random colour fields (PDQ quality 100)."""
    seed = secrets.randbits(31)
    bands = [pyvips.Image.gaussnoise(width // 40, height // 40, sigma=70, mean=128, seed=seed + i) for i in range(3)]
    small = bands[0].bandjoin(bands[1:]).cast("uchar")
    return small.resize(40, kernel="linear").crop(0, 0, width, height).copy(interpretation="srgb")


def jpeg(img: pyvips.Image, q: int = 90) -> bytes:
    return img.jpegsave_buffer(Q=q)


def lifted(img: pyvips.Image) -> bytes:
    """What a lifted listing photo goes through: saved from the page at 1024 px, recompressed."""
    return img.thumbnail_image(1024).jpegsave_buffer(Q=60)


def bearer(make_token, user_id: int, *entities: str, admin: bool = False) -> dict:
    return {"Authorization": f"Bearer {make_token(user_id, admin=admin, entities=entities)}"}


def post_photo(base: str, headers: dict, entity_id: int, data: bytes) -> tuple[int, dict]:
    r = requests.post(
        f"{base}/api/v1/properties/{entity_id}/images",
        headers=headers,
        files={"file": ("photo.jpg", io.BytesIO(data), "image/jpeg")},
        timeout=60,
    )
    assert r.status_code == 202, r.text
    job = wait_for_job(base, headers, r.json()["job"]["status_url"])
    return job["images"][0]["id"], job


def _cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_lifted_photo_is_flagged_and_the_agents_own_copies_are_not(
    live_server, celery_worker, make_token, settings_env, session
):
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    listing, own_other, scam = new_entity_id(), new_entity_id(), new_entity_id()
    agent = bearer(make_token, 7001, f"properties:{listing}", f"properties:{own_other}")
    scammer = bearer(make_token, 7002, f"properties:{scam}")
    admin = bearer(make_token, 1, admin=True)
    photo = unique_photo()
    findings_before = REGISTRY.get_sample_value("imagepipe_reuse_findings_total") or 0

    original_id, job = post_photo(live_server, agent, listing, jpeg(photo))
    assert job["status"] == "succeeded", job
    # the agent's own second listing: the same photo, no finding (they may write both)
    own_id, job = post_photo(live_server, agent, own_other, lifted(photo))
    assert job["status"] == "succeeded", job
    own = requests.get(f"{live_server}/api/v1/images/{own_id}", headers=agent, timeout=10).json()
    assert own["reuse"] == []

    # another user's listing: flagged, and still processed (the platform decides)
    copy_id, job = post_photo(live_server, scammer, scam, lifted(photo))
    assert job["status"] == "succeeded", job
    full = requests.get(f"{live_server}/api/v1/images/{copy_id}", headers=scammer, timeout=10).json()
    matched = {m["image_id"]: m for m in full["reuse"]}
    assert set(matched) == {original_id, own_id}
    assert matched[original_id]["entity"] == {"type": "properties", "id": listing}
    assert 0 <= matched[original_id]["distance"] <= 31  # REUSE_MAX_DISTANCE
    public = requests.get(f"{live_server}/api/v1/images/{copy_id}", timeout=10).json()
    assert public["status"] == "ready" and "reuse" not in public
    assert (REGISTRY.get_sample_value("imagepipe_reuse_findings_total") or 0) - findings_before == 2

    listed = requests.get(f"{live_server}/api/v1/admin/reuse", params={"since": since}, headers=admin, timeout=10)
    assert listed.status_code == 200
    mine = [f for f in listed.json()["findings"] if f["image_id"] == copy_id]
    assert {f["other_image_id"] for f in mine} == {original_id, own_id}
    assert all(f["entity"] == {"type": "properties", "id": scam} and f["uploader_id"] == 7002 for f in mine)
    assert requests.get(f"{live_server}/api/v1/admin/reuse", headers=scammer, timeout=10).status_code == 403

    out = _cli("reuse", "list", "--since", since, env=settings_env)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {r["other_image_id"] for r in rows if r["image_id"] == copy_id} == {original_id, own_id}

    # an image processed before hashes were kept gets one from `imagepipe reuse backfill`
    kept = session.get(ImageHash, original_id).pdq
    session.execute(delete(ImageHash).where(ImageHash.image_id == original_id))
    session.commit()
    out = _cli("reuse", "backfill", env=settings_env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["hashed"] >= 1
    session.expire_all()
    assert session.get(ImageHash, original_id).pdq == kept


def test_a_taken_down_photo_cannot_come_back_and_every_action_is_audited(
    live_server, celery_worker, make_token, store, session, settings_env
):
    listing, elsewhere = new_entity_id(), new_entity_id()
    agent = bearer(make_token, 7101, f"properties:{listing}")
    other = bearer(make_token, 7102, f"properties:{elsewhere}")
    admin = bearer(make_token, 1, admin=True)
    photo = unique_photo()
    image_id, job = post_photo(live_server, agent, listing, jpeg(photo))
    assert job["status"] == "succeeded", job
    row = session.get(Image, image_id)
    keys = [row.s3_key, *(r.key for r in row.renditions)]
    assert all(store.exists(k) for k in keys)

    refused = requests.post(
        f"{live_server}/api/v1/admin/images/{image_id}/takedown", json={"reason": "x"}, headers=agent, timeout=30
    )
    assert refused.status_code == 403
    missing_reason = requests.post(f"{live_server}/api/v1/admin/images/{image_id}/takedown", json={}, headers=admin, timeout=30)
    assert missing_reason.status_code == 400 and missing_reason.json()["error"]["code"] == "invalid_parameter"
    r = requests.post(
        f"{live_server}/api/v1/admin/images/{image_id}/takedown",
        json={"reason": "photographer's complaint #4711"},
        headers={**admin, "X-Request-ID": "takedown-4711"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "deleted" and body["blocklist_entry"]["reason"] == "photographer's complaint #4711"
    entry_id = body["blocklist_entry"]["id"]
    assert not any(store.exists(k) for k in keys)
    assert requests.get(f"{live_server}/api/v1/images/{image_id}", headers=admin, timeout=10).status_code == 404

    # the same picture, recompressed, uploaded by someone else to another listing: refused
    # at processing, nothing written
    again, job = post_photo(live_server, other, elsewhere, lifted(photo))
    assert job["status"] == "failed", job
    assert job["images"][0]["error"]["code"] == "blocked_image"
    assert "taken down" in job["images"][0]["error"]["message"]
    assert list(store.list(f"public/properties/{elsewhere}/")) == []
    assert list(store.list(f"originals/properties/{elsewhere}/")) == []
    # mirrored, too
    _, job = post_photo(live_server, other, elsewhere, jpeg(photo.fliphor(), 80))
    assert job["images"][0]["error"]["code"] == "blocked_image"
    # a different picture is not
    _, job = post_photo(live_server, other, elsewhere, jpeg(unique_photo()))
    assert job["status"] == "succeeded", job

    listed = requests.get(f"{live_server}/api/v1/admin/blocklist", params={"limit": 1000}, headers=admin, timeout=10).json()
    assert entry_id in {e["id"] for e in listed["entries"]}
    out = _cli("blocklist", "list", env=settings_env)
    assert out.returncode == 0 and any(json.loads(line)["id"] == entry_id for line in out.stdout.splitlines()), out.stderr
    removed = requests.delete(f"{live_server}/api/v1/admin/blocklist/{entry_id}", headers=admin, timeout=10)
    assert removed.status_code == 204
    assert requests.delete(f"{live_server}/api/v1/admin/blocklist/{entry_id}", headers=admin, timeout=10).status_code == 404
    back, job = post_photo(live_server, other, elsewhere, lifted(photo))
    assert job["status"] == "succeeded", job

    # a writer's delete, and an admin's cover change
    assert requests.delete(
        f"{live_server}/api/v1/images/{back}", headers={**other, "X-Request-ID": "delete-0001"}, timeout=30
    ).status_code in (
        202,
        204,
    )
    second, _ = post_photo(live_server, agent, listing, jpeg(unique_photo()))
    cover = requests.patch(f"{live_server}/api/v1/images/{second}", json={"is_primary": True}, headers=admin, timeout=10)
    assert cover.status_code == 200

    audit = requests.get(f"{live_server}/api/v1/admin/audit", params={"image_id": image_id}, headers=admin, timeout=10).json()
    actions = {e["action"]: e for e in audit["entries"]}
    assert set(actions) == {"takedown", "blocklist_add", "blocklist_remove"}
    assert actions["takedown"]["actor"] == "user:1" and actions["takedown"]["request_id"] == "takedown-4711"
    assert actions["takedown"]["detail"]["reason"] == "photographer's complaint #4711"
    assert actions["takedown"]["entity"] == {"type": "properties", "id": listing}
    deleted = requests.get(f"{live_server}/api/v1/admin/audit", params={"image_id": back}, headers=admin, timeout=10).json()
    assert [(e["action"], e["actor"], e["request_id"]) for e in deleted["entries"]] == [("delete", "user:7102", "delete-0001")]
    covers = requests.get(
        f"{live_server}/api/v1/admin/audit",
        params={"action": "cover_change", "entity": "properties", "entity_id": listing},
        headers=admin,
        timeout=10,
    ).json()
    assert [e["image_id"] for e in covers["entries"]] == [second]
    out = _cli("audit", "--image", str(image_id), env=settings_env)
    assert out.returncode == 0, out.stderr
    assert {json.loads(line)["action"] for line in out.stdout.splitlines()} == {"takedown", "blocklist_add", "blocklist_remove"}

    # the operator's command does the same, as cli:<login>
    second_keys = [k for k in (session.get(Image, second).s3_key, *(r.key for r in session.get(Image, second).renditions))]
    out = _cli("takedown", str(second), "--reason", "duplicate listing fraud", env=settings_env)
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert done["status"] == "deleted" and done["blocklist_entry"]["created_by"].startswith("cli:")
    assert not any(store.exists(k) for k in second_keys)
    out = _cli("audit", "--image", str(second), "--action", "takedown", env=settings_env)
    [row] = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["actor"].startswith("cli:") and row["detail"]["reason"] == "duplicate listing fraud"
    out = _cli("blocklist", "remove", str(done["blocklist_entry"]["id"]), env=settings_env)
    assert out.returncode == 0 and json.loads(out.stdout) == {"removed": done["blocklist_entry"]["id"]}, out.stderr


def test_the_audit_log_cannot_be_changed_on_postgresql(session):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    session.execute(text("INSERT INTO audit_log (at, actor, action) VALUES (now(), 'test', 'delete')"))
    session.commit()
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        session.rollback()
