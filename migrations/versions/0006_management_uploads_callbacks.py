"""Image management (alt text; gallery order uses position), direct uploads, job callbacks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("alt_text", sa.String(500), nullable=True))
    op.create_index("ix_images_entity_position", "images", ["entity_type", "entity_id", "position", "id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("callback_url", sa.String(2000), nullable=True))
        # pending -> sending -> delivered | failed; NULL when there is no callback
        batch.add_column(sa.Column("callback_state", sa.String(20), nullable=True))
        batch.add_column(sa.Column("callback_attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("callback_delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("entity_id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=True),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("staging_key", sa.String(500), nullable=False),
        sa.Column("callback_url", sa.String(2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="SET NULL"), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_uploads_user_id", "uploads", ["user_id"])


def downgrade() -> None:
    op.drop_table("uploads")
    with op.batch_alter_table("jobs") as batch:
        for name in ("callback_delivered_at", "callback_attempts", "callback_state", "callback_url"):
            batch.drop_column(name)
    op.drop_index("ix_images_entity_position", table_name="images")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("alt_text")
