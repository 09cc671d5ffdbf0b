"""The ObjectStore contract, run against the local store, SeaweedFS and moto's S3 server."""

from __future__ import annotations

import hashlib
import io
import secrets

import pytest
import requests

from storage import ObjectNotFound, PermanentStorageError, TransientStorageError
from storage.local import LocalObjectStore
from storage.s3 import S3ObjectStore
from tests.support.flaky_proxy import FlakyProxy


def _s3(endpoint: str, bucket: str, key_id="testing", secret="testing", **kw) -> S3ObjectStore:
    return S3ObjectStore(bucket, endpoint_url=endpoint, access_key_id=key_id, secret_access_key=secret, **kw)


@pytest.fixture(params=["local", "seaweedfs", "moto"])
def any_store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store", signing_secret="s" * 32)
    if request.param == "seaweedfs":
        return request.getfixturevalue("store")
    s = _s3(request.getfixturevalue("moto_server"), f"contract-{secrets.token_hex(4)}")
    s.ensure_bucket()
    return s


def test_put_head_get_roundtrip_with_metadata(any_store):
    key = f"public/properties/1/{secrets.token_hex(4)}/thumbnail_w300_q82.jpg"
    info = any_store.put(
        key,
        b"\xff\xd8\xffdata",
        content_type="image/jpeg",
        cache_control="public, max-age=60",
        metadata={"image_id": 7, "user-id": 3},
    )
    assert info.size == 7
    head = any_store.head(key)
    assert (head.size, head.content_type, head.cache_control) == (7, "image/jpeg", "public, max-age=60")
    assert head.metadata == {"image-id": "7", "user-id": "3"}
    assert any_store.get(key) == b"\xff\xd8\xffdata"
    assert any_store.exists(key)


def test_copy_keeps_the_headers_or_replaces_them_when_given(any_store):
    source = f"staging/{secrets.token_hex(8)}"
    payload = secrets.token_bytes(300_000)
    any_store.put(source, payload, content_type="image/png", metadata={"upload": "u1"})
    kept, replaced = f"x/{secrets.token_hex(4)}/kept", f"originals/properties/1/{secrets.token_hex(4)}.jpg"
    any_store.copy(source, kept)
    any_store.copy(source, replaced, content_type="image/jpeg", cache_control="private, max-age=0", metadata={"image_id": 9})
    assert any_store.get(kept) == payload and any_store.get(replaced) == payload
    head = any_store.head(kept)
    assert (head.content_type, head.metadata) == ("image/png", {"upload": "u1"})
    head = any_store.head(replaced)
    assert (head.content_type, head.cache_control, head.metadata) == ("image/jpeg", "private, max-age=0", {"image-id": "9"})
    assert any_store.head(source).content_type == "image/png"  # the source is untouched


def test_put_streams_a_file_object(any_store):
    key = f"staging/{secrets.token_hex(8)}"
    payload = secrets.token_bytes(3 * 1024 * 1024)
    any_store.put(key, io.BytesIO(payload), content_type="image/png")
    assert any_store.get(key) == payload


def test_missing_objects_raise_object_not_found(any_store):
    for call in (any_store.get, any_store.head):
        with pytest.raises(ObjectNotFound):
            call(f"staging/missing-{secrets.token_hex(4)}")
    assert not any_store.exists("staging/nothing-here")
    any_store.delete("staging/nothing-here")  # deleting a missing key is not an error


def test_list_by_prefix_and_delete_many(any_store):
    prefix = f"public/projects/{secrets.token_hex(4)}/"
    keys = [f"{prefix}{i}/large_w1600_q82.jpg" for i in range(5)]
    for k in keys:
        any_store.put(k, b"x", content_type="image/jpeg")
    any_store.put(f"originals/other-{secrets.token_hex(4)}", b"y", content_type="image/jpeg")
    assert sorted(o.key for o in any_store.list(prefix)) == sorted(keys)
    result = any_store.delete_many(keys)
    assert sorted(result.deleted) == sorted(keys) and result.errors == {}
    assert list(any_store.list(prefix)) == []


def test_delete_many_batches_past_one_thousand_keys(moto_server):
    s = _s3(moto_server, f"batch-{secrets.token_hex(4)}")
    s.ensure_bucket()
    keys = [f"public/avatars/1/{i}.webp" for i in range(1203)]
    for k in keys:
        s.client.put_object(Bucket=s.bucket, Key=k, Body=b"z")
    result = s.delete_many(keys + keys[:10])  # duplicates are sent once
    assert len(result.deleted) == 1203 and result.errors == {}
    assert list(s.list("public/")) == []


def test_presigned_get_works_and_anonymous_get_of_private_key_does_not(store):
    key = f"originals/properties/9/{secrets.token_hex(4)}.jpg"
    store.put(key, b"private bytes", content_type="image/jpeg")
    assert requests.get(store.public_url(key), timeout=10).status_code == 403
    signed = store.presigned_get_url(key, expires_in_s=60)
    r = requests.get(signed, timeout=10)
    assert r.status_code == 200 and r.content == b"private bytes"


def test_local_presigned_urls_verify_and_expire(tmp_path):
    s = LocalObjectStore(tmp_path, public_base_url="http://x/media", signing_secret="k" * 32)
    url = s.presigned_get_url("originals/a.jpg", 60)
    from urllib.parse import parse_qs, urlparse

    q = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    assert s.verify_signature("originals/a.jpg", q["expires"], q["signature"])
    assert not s.verify_signature("originals/b.jpg", q["expires"], q["signature"])
    assert not s.verify_signature("originals/a.jpg", "1", q["signature"])


def test_local_store_refuses_keys_that_escape_its_root(tmp_path):
    s = LocalObjectStore(tmp_path / "root")
    for key in ("../outside", "/etc/passwd", ".meta/x", "a/../../b", "public/../originals/x", "public//x", "./x"):
        with pytest.raises(PermanentStorageError):
            s.put(key, b"x", content_type="text/plain")


def test_transient_errors_are_retried_then_succeed(seaweed, store):
    with FlakyProxy(seaweed.endpoint_url) as proxy:
        s = _s3(
            proxy.url, store.bucket, seaweed.credentials.access_key_id, seaweed.credentials.secret_access_key, max_backoff_s=0.05
        )
        key = f"staging/{secrets.token_hex(6)}"
        proxy.fail_next = 2
        s.put(key, io.BytesIO(b"retried body"), content_type="image/jpeg")
        assert store.get(key) == b"retried body"
        proxy.mode, proxy.fail_next = "reset", 1
        assert s.get(key) == b"retried body"


def test_retries_are_bounded_and_errors_normalised(seaweed, store):
    with FlakyProxy(seaweed.endpoint_url) as proxy:
        s = _s3(
            proxy.url,
            store.bucket,
            seaweed.credentials.access_key_id,
            seaweed.credentials.secret_access_key,
            max_attempts=3,
            max_backoff_s=0.05,
        )
        proxy.fail_next = 100
        before = proxy.requests
        with pytest.raises(TransientStorageError):
            s.get("staging/whatever")
        assert proxy.requests - before == 3  # one layer of retries, no botocore retries on top
        proxy.mode = "403"
        before = proxy.requests
        with pytest.raises(PermanentStorageError):
            s.put("staging/x", b"x", content_type="image/jpeg")
        assert proxy.requests - before == 1  # a permanent error is not retried


def test_unreachable_endpoint_is_transient():
    s = _s3("http://127.0.0.1:9", "nobucket", max_attempts=2, max_backoff_s=0.01, connect_timeout_s=0.5)
    with pytest.raises(TransientStorageError):
        s.ping()


class _Body:
    """A response body for botocore's before-send hook (an answer given in the server's place)."""

    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_):
        yield self.data


def test_ranged_get_and_the_stored_checksum(any_store):
    key = f"staging/{secrets.token_hex(6)}"
    data = secrets.token_bytes(5000)
    any_store.put(key, data, content_type="image/jpeg")
    assert any_store.get_range(key, 0, 16) == data[:16]
    assert any_store.get_range(key, 4990, 100) == data[4990:]  # past the end: what there is
    assert any_store.head(key).sha256 is None  # only asked for
    stored = any_store.head(key, checksum=True).sha256
    # The local store hashes its file; an S3 store reports the checksum an upload carried, or none.
    assert stored in (hashlib.sha256(data).hexdigest(), None)
    if isinstance(any_store, LocalObjectStore):
        assert stored == hashlib.sha256(data).hexdigest()


def test_the_body_is_signed_over_plain_http_and_left_to_tls_over_https():
    """What the store's client would put on the wire (botocore's before-send hook answers in the
    server's place): over HTTPS the body is not hashed into the signature, over HTTP it is."""
    from botocore.awsrequest import AWSResponse

    sent: dict[str, str] = {}

    def answer(request, **_):
        sent[request.url.split(":", 1)[0]] = request.headers["x-amz-content-sha256"]
        return AWSResponse(request.url, 200, {"ETag": '"x"'}, _Body(b""))

    for endpoint in ("https://s3.example.test", "http://127.0.0.1:9"):
        s = _s3(endpoint, "bucket")
        s.client.meta.events.register("before-send.s3.PutObject", answer)
        s.put("staging/x", b"abc", content_type="image/jpeg")
    assert sent["https"] == b"UNSIGNED-PAYLOAD"
    assert sent["http"] == hashlib.sha256(b"abc").hexdigest().encode()


def test_a_copy_is_one_copyobject_and_too_large_a_source_takes_the_multipart_copy(settings):
    """S3 refuses CopyObject for a source over 5 GB (InvalidRequest): the store then copies it with
    the managed (multipart) copy. Here the first CopyObject is answered with that refusal in the
    server's place (botocore's before-send hook); every other request goes to SeaweedFS."""
    from botocore.awsrequest import AWSResponse

    from services.infra.stores import make_store

    store = make_store(settings)
    source, plain, large = (f"staging/{secrets.token_hex(6)}" for _ in range(3))
    store.put(source, b"\xff\xd8\xff" + secrets.token_bytes(2000), content_type="image/jpeg")
    sent: list[str] = []

    refusal = (
        b"<Error><Code>InvalidRequest</Code><Message>The specified copy source is larger than the maximum"
        b" allowable size for a copy source: 5368709120</Message></Error>"
    )

    refuse = [False]

    def on_send(request, **_):
        if refuse[0] and request.headers.get("x-amz-copy-source"):
            refuse[0] = False
            sent.append("CopyObject refused")
            return AWSResponse(request.url, 400, {}, _Body(refusal))
        sent.append("CopyObject" if request.headers.get("x-amz-copy-source") else request.method)
        return None

    store.client.meta.events.register("before-send.s3.*", on_send)
    store.copy(source, plain)
    assert sent == ["CopyObject"]  # one request, no HEAD of the source, no transfer threads
    sent.clear()
    refuse[0] = True
    store.copy(source, large)
    assert sent == ["CopyObject refused", "HEAD", "CopyObject"]  # then s3transfer's managed copy
    assert store.get(plain) == store.get(large) == store.get(source)
