"""Timestamps come back timezone-aware in UTC from either database, so the API always writes
RFC 3339 date-times with an offset (SQLite, the embedded default, keeps none by itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from db.models import Image, Upload
from db.schema import upgrade
from db.session import make_engine, make_session_factory
from services.images.serialisers import image_json


@pytest.fixture(params=["postgresql", "sqlite"])
def sessions(request, pg, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 't.db'}"
        if request.param == "sqlite"
        else pg.create(f"imagepipe_ts_{tmp_path.name[-12:].lower().replace('-', '_')}")
    )
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def test_timestamps_are_aware_utc_and_keep_their_instant(sessions, store):
    with sessions() as s:
        image = Image(entity_type="properties", entity_id=1, status="ready")
        s.add(image)
        s.commit()
        image_id = image.id
        # An aware value in another zone is stored as the same instant.
        tokyo = datetime(2026, 11, 28, 21, 30, tzinfo=timezone(timedelta(hours=9)))
        s.add(
            Upload(
                id="u" * 32,
                entity_type="properties",
                entity_id=1,
                user_id=1,
                content_type="image/jpeg",
                size=10,
                staging_key="staging/x",
                expires_at=tokyo,
            )
        )
        s.commit()
    with sessions() as s:
        image = s.get(Image, image_id)
        assert image.created_at.tzinfo is not None and image.created_at.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - image.created_at) < timedelta(minutes=5)
        upload = s.scalar(select(Upload))
        assert upload.expires_at == datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
        # Comparisons with aware times work on both databases, in Python and in SQL.
        assert upload.expires_at < datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
        assert s.scalar(select(Upload.id).where(Upload.expires_at > datetime(2026, 11, 28, 12, 0, tzinfo=UTC)))
        created = image_json(image, store, full=True)["created_at"]
        assert created.endswith("+00:00") and datetime.fromisoformat(created) == image.created_at
