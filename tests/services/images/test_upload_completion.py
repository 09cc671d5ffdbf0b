"""Completing a direct upload judges one set of bytes: the presigned POST stays valid until it
expires, so the client can replace the object while the API completes it."""

from __future__ import annotations

import hashlib

from db.models import Image
from db.unit import commit
from services.images.uploads import complete_upload, create_upload
from tests.conftest import corpus, new_entity_id
from tests.support.queues import RecordingQueue


class _PostsAgainAfterTheFirstRead:
    """The store, where the client's second POST to the upload's key lands right after the API's
    first read of anything."""

    def __init__(self, store, upload_key, replacement):
        self._store, self._key, self._replacement, self.fired = store, upload_key, replacement, False

    def get(self, key):
        data = self._store.get(key)
        if not self.fired:
            self.fired = True
            self._store.put(self._key, self._replacement, content_type="image/jpeg")
        return data

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_what_is_checked_and_hashed_is_what_is_processed(session, store, settings):
    first = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    second = corpus("photos", "canon-sx60_orient6_2048x1536.jpg").read_bytes()
    new = _direct(session, store, settings, first, None)
    store.put(new.upload.staging_key, first, content_type="image/jpeg")
    racing = _PostsAgainAfterTheFirstRead(store, new.upload.staging_key, second)

    result = complete_upload(session, racing, settings, RecordingQueue(), new.upload)
    image = result.images[0]
    assert racing.fired
    staged = store.get(image.staging_key)
    assert image.sha256 == hashlib.sha256(staged).hexdigest()  # the hash is of the bytes the worker will read
    assert staged == first
    commit(session)  # and what waits for the commit
    assert session.get(Image, image.id).sha256 == hashlib.sha256(first).hexdigest()
    assert not store.exists(new.upload.staging_key)  # the client's key is discarded once completed


class _Reads:
    """The store, counting what completion reads of each object."""

    def __init__(self, store):
        self._store, self.whole, self.ranges = store, [], []

    def get(self, key):
        self.whole.append(key)
        return self._store.get(key)

    def get_range(self, key, start, length):
        self.ranges.append((key, start, length))
        return self._store.get_range(key, start, length)

    def __getattr__(self, name):
        return getattr(self._store, name)


def _direct(session, store, settings, data: bytes, sha256: str | None):
    return create_upload(
        session,
        store,
        settings,
        entity_type="properties",
        entity_id=new_entity_id(),
        user_id=7,
        filename="a.jpg",
        content_type="image/jpeg",
        size=len(data),
        sha256=sha256,
    )


def test_a_declared_sha256_is_pinned_by_the_store_and_completion_reads_only_the_sniff(session, store, settings):
    import requests

    from pipeline.sniff import SNIFF_BYTES

    data = corpus("photos", "canon-sx60_orient6_2048x1536.jpg").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    new = _direct(session, store, settings, data, digest)
    post = new.post

    def send(body: bytes):
        return requests.post(post.url, data=post.fields, files={"file": ("f", body, "image/jpeg")}, timeout=30)

    other = data[:-1] + bytes([data[-1] ^ 1])  # the declared size, one bit different
    refused = send(other)
    assert refused.status_code == 400 and "BadDigest" in refused.text  # SeaweedFS checks the checksum itself
    assert not store.exists(new.upload.staging_key)
    assert send(data).status_code in (200, 201, 204)

    reads = _Reads(store)
    result = complete_upload(session, reads, settings, RecordingQueue(), new.upload)
    image = result.images[0]
    assert reads.whole == [] and reads.ranges == [(image.staging_key, 0, SNIFF_BYTES)]  # not the whole file
    assert image.sha256 == digest and store.get(image.staging_key) == data
    commit(session)


def test_without_the_stores_checksum_completion_reads_and_hashes_the_whole_file(session, store, settings):
    """The object put behind the policy's back, with no checksum (a store that keeps none): the
    declared hash is not trusted; the bytes are read and hashed as without one."""
    data = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes()
    new = _direct(session, store, settings, data, "ab" * 32)  # a wrong declaration
    store.put(new.upload.staging_key, data, content_type="image/jpeg")
    reads = _Reads(store)
    result = complete_upload(session, reads, settings, RecordingQueue(), new.upload)
    image = result.images[0]
    assert reads.whole == [image.staging_key]
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    commit(session)
