"""Placeholders (BlurHash, dominant colour), animation frame count, capture metadata kept
out of public files, and the index duplicate detection looks up.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = [
    ("blurhash", sa.String(100)),
    ("dominant_color", sa.String(7)),
    ("frames", sa.Integer),
    ("captured_at", sa.String(32)),  # EXIF DateTimeOriginal, ISO 8601, camera-local unless it has an offset
    ("camera", sa.String(200)),
    ("copyright", sa.String(200)),
]


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_index("ix_images_entity_sha256", "images", ["entity_type", "entity_id", "sha256"])


def downgrade() -> None:
    op.drop_index("ix_images_entity_sha256", table_name="images")
    with op.batch_alter_table("images") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
