"""an account's unpaid invoices by due date: its overdue date read from one index entry

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UNPAID = sa.text("status = 'approved'")


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index("ix_invoices_unpaid_due", ["account_id", "due_date"], unique=False, postgresql_where=UNPAID, sqlite_where=UNPAID)


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_unpaid_due", postgresql_where=UNPAID, sqlite_where=UNPAID)
