"""Perceptual hashes (PDQ) of images, as 16 indexed slots of 16 bits for multi-index lookups;
reuse findings (a photo matching another listing's); the uploader's grants at upload time; the
takedown blocklist; the CDN invalidation outbox; the audit log (append-only: on PostgreSQL a
trigger refuses UPDATE and DELETE).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SLOTS = 16


def upgrade() -> None:
    op.add_column("images", sa.Column("uploader_grants", sa.Text(), nullable=True))
    op.create_table(
        "image_hashes",
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("pdq", sa.String(64), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *[sa.Column(f"s{i}", sa.Integer(), nullable=False) for i in range(SLOTS)],
    )
    for i in range(SLOTS):
        op.create_index(f"ix_image_hashes_s{i}", "image_hashes", [f"s{i}"])
    op.create_table(
        "reuse_findings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("other_image_id", sa.Integer(), sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("other_entity_type", sa.String(20), nullable=False),
        sa.Column("other_entity_id", sa.BigInteger(), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reuse_findings_created_at", "reuse_findings", ["created_at"])
    op.create_index("ix_reuse_findings_image_id", "reuse_findings", ["image_id"])
    op.create_table(
        "blocklist",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pdq", sa.String(64), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source_image_id", sa.Integer(), nullable=True),
        sa.Column("entity_type", sa.String(20), nullable=True),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite's rowid is an INTEGER key
    op.create_table(
        "cdn_invalidations",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("path", sa.String(1100), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalidation_id", sa.String(64), nullable=True),
    )
    op.create_index(
        "ix_cdn_invalidations_pending",
        "cdn_invalidations",
        ["queued_at"],
        sqlite_where=sa.text("sent_at IS NULL"),
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_index("ix_cdn_invalidations_batch_id", "cdn_invalidations", ["batch_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=True),
        sa.Column("entity_type", sa.String(20), nullable=True),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.String(100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"])
    op.create_index("ix_audit_log_image_id", "audit_log", ["image_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_table("audit_log")
    op.drop_table("cdn_invalidations")
    op.drop_table("blocklist")
    op.drop_table("reuse_findings")
    op.drop_table("image_hashes")
    op.drop_column("images", "uploader_grants")
