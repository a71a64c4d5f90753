"""drawable grants index covers remaining: an account's credits are summed from the index alone

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 15:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

DRAWABLE = sa.text("remaining > 0")


def upgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index("ix_grants_drawable", postgresql_where=DRAWABLE, sqlite_where=DRAWABLE)
        batch_op.create_index(
            "ix_grants_drawable", ["account_id", "expires_at", "valid_from", "id", "remaining"], unique=False,
            postgresql_where=DRAWABLE, sqlite_where=DRAWABLE,
        )


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index("ix_grants_drawable", postgresql_where=DRAWABLE, sqlite_where=DRAWABLE)
        batch_op.create_index(
            "ix_grants_drawable", ["account_id", "expires_at", "valid_from", "id"], unique=False,
            postgresql_where=DRAWABLE, sqlite_where=DRAWABLE,
        )
