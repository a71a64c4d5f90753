"""void reason: a void invoice keeps why it was voided (shown on its document)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-11 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        # Why the invoice was voided, as the operator wrote it (null: voided without a reason).
        batch_op.add_column(sa.Column("void_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("void_reason")
