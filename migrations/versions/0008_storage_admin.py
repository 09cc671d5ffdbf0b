"""Storage administration: orphan scans (and the listing they compare with the database), the
storage usage rollup the statistics read (kept by triggers, so every writer, including a
hand-written UPDATE, keeps it right), the entity type on each rendition row, and how often a
sweep re-queued an image.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("requeues", sa.Integer, nullable=False, server_default="0"))
    op.add_column("renditions", sa.Column("entity_type", sa.String(20), nullable=True))
    op.execute(
        "UPDATE renditions SET entity_type = (SELECT images.entity_type FROM images WHERE images.id = renditions.image_id)"
    )
    op.create_index("ix_images_staging_key", "images", ["staging_key"])
    op.create_index("ix_uploads_staging_key", "uploads", ["staging_key"])
    op.create_index("ix_uploads_expires", "uploads", ["expires_at"])
    op.create_table(
        "storage_scans",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=True),
        sa.Column("entity_id", sa.BigInteger, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(50), nullable=True),
        sa.Column("grace_s", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("objects_listed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes_listed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("expected_objects", sa.BigInteger, nullable=True),
        sa.Column("counts", sa.Text, nullable=True),
        sa.Column("samples", sa.Text, nullable=True),
        sa.Column("report_key", sa.String(500), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_storage_scans_created", "storage_scans", ["created_at"])
    op.create_table(
        "storage_scan_objects",
        sa.Column("scan_id", sa.String(32), sa.ForeignKey("storage_scans.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "storage_usage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=True),
        sa.Column("entity_type", sa.String(20), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("name", sa.String(30), nullable=False, server_default=""),
        sa.Column("format", sa.String(10), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False, server_default=""),
        sa.Column("objects", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    day = "(({t}.created_at AT TIME ZONE 'UTC')::date)" if postgres else "date({t}.created_at)"
    op.execute(f"""INSERT INTO storage_usage (day, entity_type, kind, name, format, status, objects, bytes)
        SELECT {day.format(t="images")}, entity_type, 'image', '', '', status, count(*), coalesce(sum(file_size), 0)
        FROM images GROUP BY 1, 2, 6""")
    op.execute(f"""INSERT INTO storage_usage (day, entity_type, kind, name, format, status, objects, bytes)
        SELECT {day.format(t="renditions")}, entity_type, 'rendition', name, format, '', count(*), sum(bytes)
        FROM renditions GROUP BY 1, 2, 4, 5""")
    for statement in _postgres_triggers() if postgres else _sqlite_triggers():
        op.execute(statement)


# What each row of a table contributes to storage_usage: (kind, name, format, status, bytes).
_CONTRIBUTION = {
    "images": ("'image'", "''", "''", "{r}.status", "coalesce({r}.file_size, 0)", ("status", "file_size")),
    "renditions": ("'rendition'", "{r}.name", "{r}.format", "''", "{r}.bytes", ("name", "format", "bytes")),
}


def _postgres_triggers() -> list[str]:
    """Statement-level triggers with transition tables: one aggregated INSERT per statement,
    whatever its row count (a bulk import adds a handful of usage rows, not one per image)."""
    out = []
    for table, (kind, name, fmt, status, size, watched) in _CONTRIBUTION.items():
        cols = (*watched, "entity_type", "created_at")
        changed = "WHERE (" + ", ".join(f"o.{c}" for c in cols) + ") IS DISTINCT FROM (" + ", ".join(f"n.{c}" for c in cols) + ")"

        def add(a: str, rows: str, sign: str, tail: str = "", c=(kind, name, fmt, status, size)) -> str:
            return (
                "INSERT INTO storage_usage (day, entity_type, kind, name, format, status, objects, bytes) "
                f"SELECT ({a}.created_at AT TIME ZONE 'UTC')::date, {a}.entity_type, {c[0]}, {c[1].format(r=a)}, "
                f"{c[2].format(r=a)}, {c[3].format(r=a)}, {sign}count(*), "
                f"{sign}coalesce(sum({c[4].format(r=a)}), 0) FROM {rows} {tail} GROUP BY 1, 2, 3, 4, 5, 6;"
            )

        out.append(f"""CREATE FUNCTION imagepipe_usage_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {add("n", "new_rows n", "")}
  ELSIF TG_OP = 'DELETE' THEN
    {add("o", "old_rows o", "-")}
  ELSE
    {add("o", "old_rows o", "-", "JOIN new_rows n ON n.id = o.id " + changed)}
    {add("n", "new_rows n", "", "JOIN old_rows o ON o.id = n.id " + changed)}
  END IF;
  RETURN NULL;
END $$""")
        out.append(
            f"CREATE TRIGGER usage_{table}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION imagepipe_usage_{table}()"
        )
        out.append(
            f"CREATE TRIGGER usage_{table}_update AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows "
            f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION imagepipe_usage_{table}()"
        )
        out.append(
            f"CREATE TRIGGER usage_{table}_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION imagepipe_usage_{table}()"
        )
    return out


def _sqlite_triggers() -> list[str]:
    out = []
    for table, (kind, name, fmt, status, size, watched) in _CONTRIBUTION.items():

        def row(r: str, sign: str, c=(kind, name, fmt, status, size)) -> str:
            return (
                f"INSERT INTO storage_usage (day, entity_type, kind, name, format, status, objects, bytes) VALUES "
                f"(date({r}.created_at), {r}.entity_type, {c[0]}, {c[1].format(r=r)}, {c[2].format(r=r)}, "
                f"{c[3].format(r=r)}, {sign}1, {sign}{c[4].format(r=r)});"
            )

        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in (*watched, "entity_type", "created_at"))
        out.append(f"CREATE TRIGGER usage_{table}_insert AFTER INSERT ON {table} BEGIN {row('NEW', '')} END")
        out.append(
            f"CREATE TRIGGER usage_{table}_update AFTER UPDATE ON {table} WHEN {changed} "
            f"BEGIN {row('OLD', '-')} {row('NEW', '')} END"
        )
        out.append(f"CREATE TRIGGER usage_{table}_delete AFTER DELETE ON {table} BEGIN {row('OLD', '-')} END")
    return out


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _CONTRIBUTION:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS usage_{table}_{event}" + (f" ON {table}" if postgres else ""))
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS imagepipe_usage_{table}()")
    op.drop_table("storage_usage")
    op.drop_table("storage_scan_objects")
    op.drop_index("ix_storage_scans_created", "storage_scans")
    op.drop_table("storage_scans")
    for name, table in (
        ("ix_uploads_expires", "uploads"),
        ("ix_uploads_staging_key", "uploads"),
        ("ix_images_staging_key", "images"),
    ):
        op.drop_index(name, table)
    with op.batch_alter_table("renditions") as batch:
        batch.drop_column("entity_type")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("requeues")
