"""Moving legacy photos into the store: migration runs, one item per legacy image (with what
rollback needs), and the index the legacy-URL redirects look images up by.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "migration_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source_dir", sa.String(1000), nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "migration_items",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("migration_runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("source_path", sa.String(1000), nullable=True),
        sa.Column("source_bytes", sa.BigInteger, nullable=True),
        sa.Column("source_sha256", sa.String(64), nullable=True),
        sa.Column("bytes_written", sa.BigInteger, nullable=True),
        sa.Column("error_code", sa.String(50), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("before", sa.Text, nullable=False),  # the image row as it was, JSON: what rollback restores
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_migration_items_run_status", "migration_items", ["run_id", "status"])
    op.create_index("ix_migration_items_image", "migration_items", ["image_id"])
    op.create_index("ix_images_url", "images", ["url"])


def downgrade() -> None:
    op.drop_index("ix_images_url", "images")
    op.drop_table("migration_items")
    op.drop_table("migration_runs")
