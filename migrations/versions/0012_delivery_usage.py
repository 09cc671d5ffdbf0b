"""Delivery usage from access logs: the log files already read (so an ingest is incremental and
two at once never count a file twice) and the egress rollup (delta rows per file and
day × source × entity type × rendition × format, merged by the usage sweep).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "access_log_files",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("location", sa.String(300), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("counted", sa.Integer(), nullable=False),
        sa.Column("malformed", sa.Integer(), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("location", "name", name="uq_access_log_files_location_name"),
    )
    op.create_index("ix_access_log_files_ingested_at", "access_log_files", ["ingested_at"])
    op.create_table(
        "egress_usage",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("name", sa.String(30), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_egress_usage_day", "egress_usage", ["day"])


def downgrade() -> None:
    op.drop_table("egress_usage")
    op.drop_table("access_log_files")
