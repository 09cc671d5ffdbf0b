"""One cover per listing, held by the database: a partial unique index on (entity_type, entity_id)
where is_primary. Two overlapping "make cover" PATCHes used to leave two covers (the demote and the
set of one did not see the other's); the service now also takes a per-listing lock first, so the
second waits instead of failing. Listings that already have several covers keep the first in
gallery order (position, then id).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE images SET is_primary = :no WHERE is_primary = :yes AND id NOT IN ("
            " SELECT first_id FROM ("
            "  SELECT (SELECT i2.id FROM images i2 WHERE i2.entity_type = i1.entity_type AND"
            "          i2.entity_id = i1.entity_id AND i2.is_primary = :yes"
            "          ORDER BY COALESCE(i2.position, 0), i2.id LIMIT 1) AS first_id"
            "  FROM images i1 WHERE i1.is_primary = :yes GROUP BY i1.entity_type, i1.entity_id) AS firsts)"
        ).bindparams(yes=True, no=False)
    )
    op.create_index(
        "uq_images_one_cover",
        "images",
        ["entity_type", "entity_id"],
        unique=True,
        postgresql_where=sa.text("is_primary"),
        sqlite_where=sa.text("is_primary"),
    )


def downgrade() -> None:
    op.drop_index("uq_images_one_cover", "images")
