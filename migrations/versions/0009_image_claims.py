"""How many times a worker has claimed each image. The latest claim owns the image's processing:
a message delivered twice (the Redis transport puts a running task's message back when its
connection drops) runs two attempts at once, and only the one holding the latest claim may record
the image or remove what it wrote.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("claims", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("claims")
