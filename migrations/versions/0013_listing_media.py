"""Listing media as MLSs speak it: RESO Media fields on images (category, image_of, caption,
description, permission, alteration, original_of), the URL an imported image came from, and the
RESO feeds replicated (feeds, feed_media: each feed record's key and timestamps, and its image).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("category", sa.String(30), nullable=True))
    op.add_column("images", sa.Column("image_of", sa.String(40), nullable=True))
    op.add_column("images", sa.Column("caption", sa.String(50), nullable=True))
    op.add_column("images", sa.Column("description", sa.String(1024), nullable=True))
    op.add_column("images", sa.Column("permission", sa.String(20), nullable=False, server_default="Public"))
    op.add_column("images", sa.Column("alteration", sa.String(400), nullable=True))
    op.add_column("images", sa.Column("original_of", sa.Integer(), nullable=True))
    op.add_column("images", sa.Column("source_url", sa.String(2048), nullable=True))
    op.create_index("ix_images_original_of", "images", ["original_of"])
    op.create_index("ix_images_updated", "images", ["updated_at", "id"])
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False, unique=True),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("full_compare_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_report", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feed_media",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("feed_id", sa.Integer(), sa.ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("media_key", sa.String(255), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=True),
        sa.Column("resource_record_key", sa.String(255), nullable=True),
        sa.Column("media_url", sa.String(2048), nullable=True),
        sa.Column("media_modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("system", "media_key", name="uq_feed_media_system_key"),
    )
    op.create_index("ix_feed_media_feed", "feed_media", ["feed_id"])
    op.create_index("ix_feed_media_image", "feed_media", ["image_id"])


def downgrade() -> None:
    op.drop_table("feed_media")
    op.drop_table("feeds")
    op.drop_index("ix_images_updated", "images")
    op.drop_index("ix_images_original_of", "images")
    with op.batch_alter_table("images") as batch:
        for column in ("source_url", "original_of", "alteration", "permission", "description", "caption", "image_of", "category"):
            batch.drop_column(column)
