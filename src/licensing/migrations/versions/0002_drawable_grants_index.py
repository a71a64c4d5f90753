"""drawable grants index: the grants a booking may draw on, in drawing order (partial: remaining > 0)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 15:08:30.582088
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_grants_drawable", ["account_id", "expires_at", "valid_from", "id"], unique=False,
            postgresql_where=sa.text("remaining > 0"), sqlite_where=sa.text("remaining > 0"),
        )


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index("ix_grants_drawable", postgresql_where=sa.text("remaining > 0"), sqlite_where=sa.text("remaining > 0"))
