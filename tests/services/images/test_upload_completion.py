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
    new = create_upload(
        session,
        store,
        settings,
        entity_type="properties",
        entity_id=new_entity_id(),
        user_id=7,
        filename="a.jpg",
        content_type="image/jpeg",
        size=len(first),
    )
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
