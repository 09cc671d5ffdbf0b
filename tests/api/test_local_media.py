"""STORAGE_BACKEND=local: the API serves public/ to anyone and private keys only when signed."""

from __future__ import annotations

from urllib.parse import urlparse

from api.app import create_app
from tests.support.queues import RecordingQueue


def test_local_store_serves_public_and_signed_objects_only(settings, tmp_path):
    local = settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path / "store")
    app = create_app(local, queue=RecordingQueue())
    store = app.extensions["imagepipe"].store
    store.put(
        "public/properties/1/5/thumbnail_w300_q80.webp",
        b"RIFF....WEBP",
        content_type="image/webp",
        cache_control="public, max-age=31536000, immutable",
    )
    store.put("originals/properties/1/5.jpg", b"\xff\xd8\xffprivate", content_type="image/jpeg")
    client = app.test_client()

    pub = client.get("/media/public/properties/1/5/thumbnail_w300_q80.webp")
    assert pub.status_code == 200 and pub.content_type == "image/webp" and pub.data == b"RIFF....WEBP"
    assert pub.headers["Cache-Control"] == "public, max-age=31536000, immutable"

    private = client.get("/media/originals/properties/1/5.jpg")
    assert private.status_code == 403 and private.get_json()["error"]["code"] == "forbidden"

    signed = urlparse(store.presigned_get_url("originals/properties/1/5.jpg", 60))
    ok = client.get(f"{signed.path}?{signed.query}")
    assert ok.status_code == 200 and ok.data == b"\xff\xd8\xffprivate"
    tampered = client.get(f"{signed.path.replace('5.jpg', '6.jpg')}?{signed.query}")
    assert tampered.status_code == 403
    assert client.get("/media/public/../originals/properties/1/5.jpg").status_code in (403, 404)
