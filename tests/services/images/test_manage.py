"""One cover per listing under concurrency (issue 22, L2), with two real transactions on PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from db.models import Image, ImageStatus
from services.images.manage import update_image
from tests.conftest import new_entity_id


def _listing(sessions, entity_id: int, count: int) -> list[int]:
    with sessions() as s:
        images = [Image(entity_type="properties", entity_id=entity_id, status=ImageStatus.READY, position=n)
                  for n in range(count)]  # fmt: skip
        s.add_all(images)
        s.commit()
        return [i.id for i in images]


def test_two_overlapping_make_cover_patches_leave_one_cover(engine):
    sessions = sessionmaker(engine, expire_on_commit=False)
    entity_id = new_entity_id()
    first, second = _listing(sessions, entity_id, 2)
    a_done, errors = threading.Event(), []

    def make_cover(image_id: int, hold_s: float, done: threading.Event | None) -> None:
        try:
            with sessions() as s:
                update_image(s, s.get_one(Image, image_id), is_primary=True)
                s.flush()
                if done is not None:
                    done.set()  # the other transaction starts now, while this one is open
                time.sleep(hold_s)
                s.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    a = threading.Thread(target=make_cover, args=(first, 1.0, a_done))
    a.start()
    assert a_done.wait(10)
    b = threading.Thread(target=make_cover, args=(second, 0.0, None))
    b.start()
    a.join(20)
    b.join(20)
    assert errors == []
    with sessions() as s:
        covers = s.scalars(select(Image.id).where(Image.entity_id == entity_id, Image.is_primary.is_(True))).all()
    assert covers == [second]  # the later PATCH wins, the earlier cover is demoted


def test_the_database_refuses_a_second_cover(engine):
    sessions = sessionmaker(engine, expire_on_commit=False)
    entity_id = new_entity_id()
    first, second = _listing(sessions, entity_id, 2)
    with sessions() as s:
        s.get_one(Image, first).is_primary = True
        s.get_one(Image, second).is_primary = True
        with pytest.raises(IntegrityError):
            s.commit()
