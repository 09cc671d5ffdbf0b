"""Who may do what, route by route: anonymous callers, another user, a writer of the listing (the
token grants it), the uploader whose token no longer grants it, and an admin, against every
route and method of the OpenAPI document (the local backend, so /media is there too)."""

from __future__ import annotations

import io
from urllib.parse import urlparse

import pytest

from api.openapi import spec
from db.session import make_session_factory
from db.unit import unit_of_work
from services.images import process
from services.images.serialisers import PUBLIC_FIELDS
from tests.conftest import corpus, new_entity_id
from tests.support.queues import RecordingQueue

PRIVATE_FIELDS = {
    "filename",
    "sha256",
    "declared_content_type",
    "content_type_mismatch",
    "uploader_id",
    "error",
    "file_size",
    "mime_type",
    "created_at",
    "legacy_url",
}


@pytest.fixture(scope="module")
def world(settings, engine, contract, make_token, tmp_path_factory):
    """A listing with a ready image, a pending one and a direct upload, made by user 42 while
    their token granted the listing."""
    from api.app import create_app

    local = settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path_factory.mktemp("store"))
    queue = RecordingQueue()
    app = contract.attach(create_app(local, queue=queue))
    client = app.test_client()
    entity_id = new_entity_id()
    listing = f"properties:{entity_id}"

    def bearer(user, **kw):
        return {"Authorization": f"Bearer {make_token(user, **kw)}"}

    actors = {
        "anonymous": {},
        "other": bearer(7),
        "writer": bearer(9, entities=(listing,)),
        "former": bearer(42, entities=("projects:*",)),  # the uploader, no longer granted this listing
        "admin": bearer(1, admin=True),
    }
    uploader = bearer(42, entities=(listing,))
    photo = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()

    def upload(data, name):
        r = client.post(f"/api/v1/properties/{entity_id}/images", headers=uploader, data={"file": (io.BytesIO(data), name)})
        assert r.status_code == 202, r.get_json()
        return r.get_json()

    ready = upload(photo, "ready.jpg")
    sessions = make_session_factory(engine)
    store = app.extensions["imagepipe"].store
    assert process.run(lambda: unit_of_work(sessions), store, local, queue, ready["images"][0]["id"]) == "ready"
    pending = upload(photo + b"\x00", "pending.jpg")  # other bytes: not a duplicate
    direct = client.post(
        "/api/v1/uploads",
        headers=uploader,
        json={"entity": "properties", "entity_id": entity_id, "content_type": "image/jpeg", "size": len(photo)},
    ).get_json()
    extra = [upload(photo + bytes([n, n]), f"delete-{n}.jpg")["images"][0]["id"] for n in range(6)]
    from services.storage_admin.orphans import create_scan

    with unit_of_work(sessions) as session:
        scan = create_scan(session, dry_run=True, grace_s=86400, requested_by="test").id
    return {
        "scan": scan,
        "client": client,
        "store": store,
        "actors": actors,
        "entity_id": entity_id,
        "photo": photo,
        "ready": ready["images"][0]["id"],
        "pending": pending["images"][0]["id"],
        "job": ready["job"]["id"],
        "upload": direct["upload_id"],
        "deletable": extra,
    }


def _cells(w):
    """(method, OpenAPI path) -> (concrete request, {actor: expected status})."""
    e, ready, pending = w["entity_id"], w["ready"], w["pending"]
    no_one = {"anonymous": 401, "other": 404, "writer": 200, "former": 404, "admin": 200}
    admin_only = {"anonymous": 401, "other": 403, "writer": 403, "former": 403, "admin": 200}
    upload_form = lambda: {"file": (io.BytesIO(w["photo"] + b"\x01" + bytes(8)), "x.jpg")}  # noqa: E731
    raw_photo = lambda: w["photo"] + b"\x02" + bytes(8)  # noqa: E731
    return {
        ("post", "/api/v1/{entity}/{entity_id}/images"): (
            dict(path=f"/api/v1/properties/{e}/images", data=upload_form),
            {"anonymous": 401, "other": 403, "writer": 202, "former": 403, "admin": 202},
        ),
        ("get", "/api/v1/{entity}/{entity_id}/images"): (dict(path=f"/api/v1/properties/{e}/images"), dict.fromkeys(no_one, 200)),
        ("put", "/api/v1/{entity}/{entity_id}/images/{filename}"): (
            dict(path=f"/api/v1/properties/{e}/images/front.jpg", data=raw_photo, headers={"Content-Type": "image/jpeg"}),
            {"anonymous": 401, "other": 403, "writer": 202, "former": 403, "admin": 202},
        ),
        ("get", "/api/v1/{entity}/{entity_id}/compliance"): (
            dict(path=f"/api/v1/properties/{e}/compliance"),
            {"anonymous": 401, "other": 403, "writer": 200, "former": 403, "admin": 200},
        ),
        ("post", "/api/v1/{entity}/{entity_id}/imports"): (  # an address the worker refuses: nothing fetched
            dict(path=f"/api/v1/properties/{e}/imports", json={"items": [{"url": "http://192.0.2.1/a.jpg"}]}),
            {"anonymous": 401, "other": 403, "writer": 202, "former": 403, "admin": 202},
        ),
        ("post", "/api/v1/uploads"): (
            dict(
                path="/api/v1/uploads", json={"entity": "properties", "entity_id": e, "content_type": "image/jpeg", "size": 1000}
            ),
            {"anonymous": 401, "other": 403, "writer": 201, "former": 403, "admin": 201},
        ),
        ("post", "/api/v1/uploads/{upload_id}/complete"): (
            dict(path=f"/api/v1/uploads/{w['upload']}/complete"),  # nothing was posted: 409 past the check
            {"anonymous": 401, "other": 404, "writer": 409, "former": 404, "admin": 409},
        ),
        ("get", "/api/v1/jobs/{job_id}"): (dict(path=f"/api/v1/jobs/{w['job']}"), no_one),
        ("get", "/api/v1/images/{image_id}"): (dict(path=f"/api/v1/images/{ready}"), dict.fromkeys(no_one, 200)),
        ("patch", "/api/v1/images/{image_id}"): (dict(path=f"/api/v1/images/{ready}", json={"alt_text": "Living room"}), no_one),
        ("delete", "/api/v1/images/{image_id}"): (
            dict(path="/api/v1/images/{deletable}"),
            {"anonymous": 401, "other": 404, "writer": 204, "former": 404, "admin": 204},
        ),
        ("get", "/api/v1/images/{image_id}/url"): (dict(path=f"/api/v1/images/{ready}/url"), no_one),
        ("get", "/api/v1/admin/images"): (
            dict(path="/api/v1/admin/images"),
            {"anonymous": 401, "other": 403, "writer": 403, "former": 403, "admin": 200},
        ),
        ("get", "/api/v1/admin/storage/stats"): (dict(path="/api/v1/admin/storage/stats"), admin_only),
        ("post", "/api/v1/admin/storage/cleanup-orphaned"): (
            dict(path="/api/v1/admin/storage/cleanup-orphaned", json={"entity": "properties", "entity_id": e}),
            {**admin_only, "admin": 202},
        ),
        ("get", "/api/v1/admin/storage/scans/{scan_id}"): (dict(path=f"/api/v1/admin/storage/scans/{w['scan']}"), admin_only),
        ("get", "/api/v1/admin/storage/scans/{scan_id}/report"): (  # queued, never run: no report yet
            dict(path=f"/api/v1/admin/storage/scans/{w['scan']}/report"),
            {**admin_only, "admin": 409},
        ),
        ("get", "/api/v1/admin/reuse"): (dict(path="/api/v1/admin/reuse"), admin_only),
        ("post", "/api/v1/admin/images/{image_id}/takedown"): (  # an id nobody has: no side effect
            dict(path="/api/v1/admin/images/2147483000/takedown", json={"reason": "test"}),
            {**admin_only, "admin": 404},
        ),
        ("get", "/api/v1/admin/blocklist"): (dict(path="/api/v1/admin/blocklist"), admin_only),
        ("delete", "/api/v1/admin/blocklist/{entry_id}"): (
            dict(path="/api/v1/admin/blocklist/2147483000"),
            {**admin_only, "admin": 404},
        ),
        ("get", "/api/v1/admin/audit"): (dict(path="/api/v1/admin/audit"), admin_only),
        ("get", "/api/v1/openapi.json"): (dict(path="/api/v1/openapi.json"), dict.fromkeys(no_one, 200)),
        ("post", "/api/v1/rum"): (  # a visitor's browser: no token needed, nobody refused
            dict(path="/api/v1/rum", json={"loads": []}),
            dict.fromkeys(no_one, 204),
        ),
        ("get", "/api/v1/reso/Media"): (dict(path="/api/v1/reso/Media?$top=5"), dict.fromkeys(no_one, 200)),  # public media only
        ("get", "/healthz"): (dict(path="/healthz"), dict.fromkeys(no_one, 200)),
        ("get", "/metrics"): (dict(path="/metrics"), dict.fromkeys(no_one, 200)),  # no METRICS_TOKEN configured
        ("get", "/readyz"): (dict(path="/readyz"), dict.fromkeys(no_one, 200)),
        ("get", "/uploads/{legacy_path}"): (  # public: an old link, never migrated
            dict(path="/uploads/properties/1/never-migrated.jpg"),
            dict.fromkeys(no_one, 404),
        ),
        ("get", "/media/{key}"): (  # a private object: a signature is required, whoever asks
            dict(path=f"/media/originals/properties/{e}/{ready}.jpg"),
            dict.fromkeys(no_one, 403),
        ),
        ("post", "/media/upload"): (  # no valid policy: refused, whoever asks
            dict(
                path="/media/upload",
                data=lambda: {
                    "key": "staging/x",
                    "policy": "e30",
                    "signature": "00",
                    "file": (io.BytesIO(b"\xff\xd8\xff"), "f.jpg"),
                },
            ),
            dict.fromkeys(no_one, 403),
        ),
        ("pending", "/api/v1/images/{image_id}"): (  # not an OpenAPI method: the same route, a pending image
            dict(path=f"/api/v1/images/{pending}", method="get"),
            {"anonymous": 404, "other": 404, "writer": 200, "former": 404, "admin": 200},
        ),
    }


def test_every_route_of_the_contract_is_in_the_matrix(world):
    documented = {(m, p) for p, item in spec()["paths"].items() for m in item if m in ("get", "post", "put", "patch", "delete")}
    assert documented - set(_cells(world)) == set()


def test_only_the_allowed_cells_succeed_and_the_public_view_shows_no_private_field(world):
    client, failures = world["client"], []
    deletable = iter(world["deletable"])
    for (method, route), (req, expected) in _cells(world).items():
        for actor, status in expected.items():
            path = req["path"].replace("{deletable}", str(next(deletable))) if "{deletable}" in req["path"] else req["path"]
            kwargs = {"headers": {**world["actors"][actor], **req.get("headers", {})}}
            if "json" in req:
                kwargs["json"] = req["json"]
            if "data" in req:
                kwargs["data"] = req["data"]()
            r = client.open(path, method=req.get("method", method).upper(), **kwargs)
            if r.status_code != status:
                failures.append(
                    f"{actor} {method.upper()} {route}: {r.status_code}, expected {status}: {r.get_data(as_text=True)[:200]}"
                )
            elif route == "/api/v1/images/{image_id}" and method in ("get", "pending") and status == 200:
                body = r.get_json()
                full = actor in ("writer", "admin")
                if full != bool(PRIVATE_FIELDS & set(body)):
                    failures.append(f"{actor} GET image: {'missing' if full else 'leaked'} private fields")
                if not full and (set(body) - set(PUBLIC_FIELDS) or body["status"] != "ready"):
                    failures.append(f"{actor} GET image: not the public view: {sorted(body)}")
    assert failures == []


def test_the_public_gallery_lists_ready_images_only_and_no_private_field(world):
    client, e = world["client"], world["entity_id"]
    for actor in ("anonymous", "other", "former"):
        body = client.get(f"/api/v1/properties/{e}/images", headers=world["actors"][actor]).get_json()
        assert body["images"] and all(i["status"] == "ready" for i in body["images"])
        assert all(not (PRIVATE_FIELDS & set(i)) for i in body["images"])
        assert world["pending"] not in [i["id"] for i in body["images"]]
    writer = client.get(f"/api/v1/properties/{e}/images", headers=world["actors"]["writer"]).get_json()
    ids = [i["id"] for i in writer["images"]]
    assert world["pending"] in ids and world["ready"] in ids
    assert all("sha256" in i for i in writer["images"])


def test_a_user_cannot_upload_to_another_users_avatar_or_take_its_cover(settings, make_token, contract):
    """The review's reproduction: user 2 uploaded to avatars/1 and made it the cover."""
    from api.app import create_app

    app = contract.attach(create_app(settings, queue=RecordingQueue()))
    client = app.test_client()
    photo = corpus("photos", "tree_1024x772.webp").read_bytes()
    user = 10**9 + new_entity_id() % 10**9
    own = {"Authorization": f"Bearer {make_token(user)}"}
    r = client.post(f"/api/v1/avatars/{user}/images", headers=own, data={"file": (io.BytesIO(photo), "me.webp")})
    assert r.status_code == 202  # everyone writes their own avatar, no grant needed
    theirs = client.post(f"/api/v1/avatars/{user + 1}/images", headers=own, data={"file": (io.BytesIO(photo), "me.webp")})
    assert theirs.status_code == 403 and theirs.get_json()["error"]["code"] == "entity_forbidden"
    image_id = r.get_json()["images"][0]["id"]
    intruder = {"Authorization": f"Bearer {make_token(user + 1)}"}
    assert client.patch(f"/api/v1/images/{image_id}", headers=intruder, json={"is_primary": True}).status_code == 404


def test_ids_beyond_the_columns_are_refused_not_500(app, auth):
    client = app.test_client()
    big = 2**70
    assert client.get(f"/api/v1/images/{big}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/images/{big}").status_code == 404
    assert client.patch(f"/api/v1/images/{big}", headers=auth, json={}).status_code == 404
    assert client.delete(f"/api/v1/images/{big}", headers=auth).status_code == 404
    r = client.post(f"/api/v1/properties/{big}/images", headers=auth, data={"file": (io.BytesIO(b"x"), "a.jpg")})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_parameter"
    assert client.get(f"/api/v1/properties/{big}/images").status_code == 400
    r = client.post(
        "/api/v1/uploads", headers=auth, json={"entity": "properties", "entity_id": big, "content_type": "image/jpeg", "size": 10}
    )
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_parameter"
    assert client.get(f"/api/v1/properties/1/images?cursor=0.{big}").status_code == 400


def test_a_signed_url_signature_is_checked_without_tripping_on_odd_digits(world):
    client = world["client"]
    r = client.get("/media/staging/abc?expires=%C2%B2&signature=aa")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    signed = urlparse(world["store"].presigned_get_url(f"originals/properties/{world['entity_id']}/x.jpg", 60))
    assert client.get(f"{signed.path}?{signed.query}").status_code == 404  # valid signature, no such object
