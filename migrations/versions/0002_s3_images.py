"""S3 columns (seed 6.1/6.2), in one `images` table keyed by (entity_type, entity_id).

The three legacy tables are folded into `images`: every legacy row keeps its local `url`, gets
status `legacy` and remembers where it came from (`legacy_table`, `legacy_id`) so the
downgrade can put it back under its old id.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# (legacy table, entity type, entity id column, has is_primary, has position)
LEGACY = [
    ("property_images", "properties", "property_id", True, True),
    ("project_images", "projects", "project_id", False, True),
    ("user_avatars", "avatars", "user_id", False, False),
]


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("entity_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("uploader_id", sa.BigInteger),
        sa.Column("original_filename", sa.String(255)),
        sa.Column("declared_content_type", sa.String(100)),
        sa.Column("staging_key", sa.String(500)),
        sa.Column("url", sa.String(500)),
        sa.Column("s3_key", sa.String(500)),
        sa.Column("s3_bucket", sa.String(100)),
        sa.Column("thumbnail_url", sa.String(500)),
        sa.Column("medium_url", sa.String(500)),
        sa.Column("large_url", sa.String(500)),
        sa.Column("file_size", sa.BigInteger),
        sa.Column("mime_type", sa.String(50)),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("sha256", sa.String(64)),
        sa.Column("has_alpha", sa.Boolean),
        sa.Column("error_code", sa.String(50)),
        sa.Column("error_message", sa.Text),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("legacy_table", sa.String(30)),
        sa.Column("legacy_id", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_images_entity", "images", ["entity_type", "entity_id", "created_at"])
    op.create_index("ix_images_s3_key", "images", ["s3_key"])
    op.create_index("ix_images_status", "images", ["status"])

    for table, entity, id_col, has_primary, has_position in LEGACY:
        primary = "is_primary" if has_primary else sa.false().compile(dialect=op.get_bind().dialect)
        position = "position" if has_position else "0"
        op.execute(
            f"INSERT INTO images (entity_type, entity_id, status, url, is_primary, position,"
            f" legacy_table, legacy_id, created_at, updated_at)"
            f" SELECT '{entity}', {id_col}, 'legacy', url, {primary}, {position},"
            f" '{table}', id, uploaded_at, uploaded_at FROM {table} ORDER BY id"
        )
        op.drop_table(table)


def downgrade() -> None:
    bind = op.get_bind()
    _create_legacy_tables()
    for table, entity, id_col, has_primary, has_position in LEGACY:
        cols = [id_col, "url", "uploaded_at"] + (["is_primary"] if has_primary else []) + (["position"] if has_position else [])
        src = (
            ["entity_id", "COALESCE(url, large_url, medium_url, thumbnail_url)", "created_at"]
            + (["is_primary"] if has_primary else [])
            + (["position"] if has_position else [])
        )
        where = f"entity_type = '{entity}' AND COALESCE(url, large_url, medium_url, thumbnail_url) IS NOT NULL"
        if table == "user_avatars":
            # One avatar per user in the legacy schema: keep the newest.
            where += (
                " AND id IN (SELECT MAX(id) FROM images WHERE entity_type = 'avatars'"
                " AND COALESCE(url, large_url, medium_url, thumbnail_url) IS NOT NULL GROUP BY entity_id)"
            )
        # Rows that came from this table return under their old ids...
        op.execute(
            f"INSERT INTO {table} (id, {', '.join(cols)}) SELECT legacy_id, {', '.join(src)} FROM images"
            f" WHERE {where} AND legacy_table = '{table}' ORDER BY legacy_id"
        )
        if bind.dialect.name == "postgresql":
            op.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        # ...rows uploaded since get new ones, pointing at their largest rendition.
        op.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(src)} FROM images"
            f" WHERE {where} AND legacy_table IS NULL ORDER BY id"
        )
    op.drop_table("images")


def _create_legacy_tables() -> None:
    # A frozen copy of revision 0001's tables: revisions must not change when later code does.
    op.create_table(
        "property_images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("property_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
    )
    op.create_table(
        "project_images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
    )
    op.create_table(
        "user_avatars",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
    )
