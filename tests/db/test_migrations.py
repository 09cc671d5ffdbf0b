"""Alembic history on databases that hold legacy (pre-S3) rows: up, down and up again."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from db.schema import downgrade, upgrade

LEGACY_ROWS = """
INSERT INTO property_images (id, property_id, url, is_primary, position) VALUES
  (5, 17, '/uploads/properties/17/a.jpg', true, 0),
  (9, 17, '/uploads/properties/17/b.jpg', false, 1);
INSERT INTO project_images (id, project_id, url, position) VALUES (3, 4, '/uploads/projects/4/p.png', 0);
INSERT INTO user_avatars (id, user_id, url) VALUES (11, 42, '/uploads/avatars/42.jpg');
"""


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_db(request, pg, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return pg.create(f"{pg.created[0] if pg.created else 'imagepipe_test'}_mig")


def _rows(engine, sql):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_legacy_rows_survive_upgrade_and_downgrade(empty_db):
    upgrade(empty_db, "0001")
    engine = create_engine(empty_db)
    sqlite = empty_db.startswith("sqlite")
    with engine.begin() as conn:
        for stmt in LEGACY_ROWS.strip().split(";"):
            if stmt.strip():
                conn.execute(text(stmt.replace("true", "1").replace("false", "0") if sqlite else stmt))

    upgrade(empty_db, "head")
    rows = _rows(
        engine,
        "SELECT entity_type, entity_id, status, url, legacy_table, legacy_id, position "
        "FROM images ORDER BY entity_type, legacy_id",
    )
    assert rows == [
        ("avatars", 42, "legacy", "/uploads/avatars/42.jpg", "user_avatars", 11, 0),
        ("projects", 4, "legacy", "/uploads/projects/4/p.png", "project_images", 3, 0),
        ("properties", 17, "legacy", "/uploads/properties/17/a.jpg", "property_images", 5, 0),
        ("properties", 17, "legacy", "/uploads/properties/17/b.jpg", "property_images", 9, 1),
    ]
    assert _rows(engine, "SELECT s3_key, width, file_size FROM images WHERE legacy_id = 5") == [(None, None, None)]
    # a new S3-era upload after the migration
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO images (entity_type, entity_id, status, large_url, s3_key) "
                "VALUES ('properties', 17, 'ready', 'https://cdn/x/large.jpg', 'originals/properties/17/99.jpg')"
            )
        )

    downgrade(empty_db, "0001")
    assert _rows(engine, "SELECT id, property_id, url FROM property_images ORDER BY id") == [
        (5, 17, "/uploads/properties/17/a.jpg"),
        (9, 17, "/uploads/properties/17/b.jpg"),
        (10, 17, "https://cdn/x/large.jpg"),
    ]
    assert _rows(engine, "SELECT id, project_id, url FROM project_images") == [(3, 4, "/uploads/projects/4/p.png")]
    assert _rows(engine, "SELECT id, user_id, url FROM user_avatars") == [(11, 42, "/uploads/avatars/42.jpg")]
    with engine.begin() as conn:  # the id sequence continues after the restored ids
        conn.execute(text("INSERT INTO project_images (project_id, url) VALUES (4, '/n.jpg')"))
    assert _rows(engine, "SELECT MAX(id) FROM project_images") == [(4,)]

    upgrade(empty_db, "head")
    assert _rows(engine, "SELECT COUNT(*) FROM images") == [(6,)]  # 4 legacy + 1 S3-era + 1 added above
    engine.dispose()
