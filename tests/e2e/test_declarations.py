"""Domain words are declared once: one more rendition size or one more entity kind in its
declaration (pipeline/specs.py RENDITIONS, services/entities.py ENTITY_KINDS) is rendered, recorded,
regenerated, served, granted and documented with no other change (issue 21's xlarge case)."""

from __future__ import annotations

import pytest
import pyvips
import requests
from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.orm import selectinload

import pipeline.specs
import services.entities
from db.models import Image
from pipeline.specs import RENDITIONS, RenditionSize
from services.entities import ENTITY_KINDS, EntityKind
from services.images import renditions
from services.infra.tokens import check_grant, decode_token, issue_token
from tests.conftest import corpus, new_entity_id
from tests.support.http import upload, wait_for_job

pytestmark = pytest.mark.e2e

XLARGE = RenditionSize("xlarge", 2400)


@pytest.fixture
def with_xlarge(monkeypatch):
    monkeypatch.setattr(pipeline.specs, "RENDITIONS", (*RENDITIONS, XLARGE))


def _image(session, image_id: int) -> Image:
    session.expire_all()
    return session.scalars(select(Image).where(Image.id == image_id).options(selectinload(Image.renditions))).one()


def _validate(live_server: str, body: dict, schema: str) -> None:
    """Against the contract the API serves now (so it must derive from the declarations too)."""
    document = requests.get(f"{live_server}/api/v1/openapi.json", timeout=10).json()
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    errors = list(Draft202012Validator(root).iter_errors(body))
    assert not errors, [e.message[:200] for e in errors[:3]]


def test_an_extra_rendition_size_is_rendered_recorded_and_served(with_xlarge, live_server, celery_worker, auth, store, session):
    entity_id = new_entity_id()
    photo = corpus("photos", "iphone6_3264x2448.jpg")
    r = upload(live_server, auth, "properties", entity_id, photo)
    assert r.status_code == 202, r.text
    job = wait_for_job(live_server, auth, r.json()["job"]["status_url"], 120)
    assert job["status"] == "succeeded", job
    image_id = r.json()["images"][0]["id"]
    body = requests.get(f"{live_server}/api/v1/images/{image_id}", headers=auth, timeout=10).json()
    assert list(body["renditions"]) == ["thumbnail", "medium", "large", "xlarge"]  # by width
    _validate(live_server, body, "Image")
    for fmt, rendition in body["renditions"]["xlarge"].items():
        got = requests.get(rendition["url"], timeout=10)
        assert got.status_code == 200 and got.headers["Content-Type"] == f"image/{fmt}"
        decoded = pyvips.Image.new_from_buffer(got.content, "")
        assert (decoded.width, decoded.height) == (2400, 1800) == (rendition["width"], rendition["height"])
    row = _image(session, image_id)
    keys = sorted(o.key for o in store.list(f"public/properties/{entity_id}/"))
    assert keys == sorted(r.key for r in row.renditions) and len(keys) == 8  # nothing written unrecorded
    assert row.large_url and "large_w1600" in row.large_url  # the legacy columns are the declared ones'
    signed = requests.get(f"{live_server}/api/v1/images/{image_id}/url", params={"rendition": "xlarge"}, headers=auth, timeout=10)
    assert signed.status_code == 200 and requests.get(signed.json()["url"], timeout=10).status_code == 200


def test_an_extra_rendition_size_is_rolled_out_to_images_made_before(
    live_server, celery_worker, auth, store, session, settings, monkeypatch
):
    entity_id = new_entity_id()
    r = upload(live_server, auth, "properties", entity_id, corpus("photos", "canon-sx60_orient6_2048x1536.jpg"))
    assert wait_for_job(live_server, auth, r.json()["job"]["status_url"], 120)["status"] == "succeeded"
    image_id = r.json()["images"][0]["id"]
    assert renditions.count_stale(session, settings.encoder, ("properties", entity_id)) == 0

    monkeypatch.setattr(pipeline.specs, "RENDITIONS", (*RENDITIONS, XLARGE))
    assert renditions.count_stale(session, settings.encoder, ("properties", entity_id)) == 1
    from sqlalchemy.orm import sessionmaker

    from db.unit import unit_of_work

    sessions = sessionmaker(session.get_bind(), expire_on_commit=False)
    units = lambda: unit_of_work(sessions)  # noqa: E731
    for _ in range(2):  # a second attempt finds nothing to do and leaves nothing behind
        renditions.regenerate(units, store, settings, image_id)
    assert renditions.count_stale(session, settings.encoder, ("properties", entity_id)) == 0
    row = _image(session, image_id)
    assert {(r.name, r.format) for r in row.renditions if r.name == "xlarge"} == {("xlarge", "jpeg"), ("xlarge", "webp")}
    xl = next(r for r in row.renditions if r.name == "xlarge" and r.format == "jpeg")
    assert (xl.width, xl.height) == (1536, 2048)  # an upright 1536 px wide photo: never upscaled
    keys = sorted(o.key for o in store.list(f"public/properties/{entity_id}/"))
    assert keys == sorted(r.key for r in row.renditions) and len(keys) == 8


def test_an_extra_entity_kind_is_granted_routed_and_documented(live_server, celery_worker, settings, monkeypatch):
    monkeypatch.setattr(services.entities, "ENTITY_KINDS", (*ENTITY_KINDS, EntityKind("offices")))
    assert check_grant("offices:5") == "offices:5"
    who = decode_token(settings.jwt_secret, issue_token(settings.jwt_secret, 9, entities=["offices:5"]))
    assert who.may_write("offices", 5) and not who.may_write("offices", 6)
    assert not who.may_write("avatars", 10) and who.may_write("avatars", 9)  # the owner rule, declared
    headers = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 9, entities=['offices:5'])}"}
    r = upload(live_server, headers, "offices", 5, corpus("photos", "nikon-p6000_small_640x480.jpg"))
    assert r.status_code == 202, r.text
    assert wait_for_job(live_server, headers, r.json()["job"]["status_url"], 120)["status"] == "succeeded"
    listing = requests.get(f"{live_server}/api/v1/offices/5/images", timeout=10).json()
    assert [i["id"] for i in listing["images"]] == [r.json()["images"][0]["id"]]
    assert listing["images"][0]["renditions"]["medium"]["jpeg"]["url"].split("/public/")[1].startswith("offices/5/")
    document = requests.get(f"{live_server}/api/v1/openapi.json", timeout=10).json()
    entity = document["paths"]["/api/v1/{entity}/{entity_id}/images"]["parameters"][0]
    assert "offices" in entity["schema"]["enum"]
