"""hardening: API keys expire and may be scoped to accounts; issued documents keep their parties

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        # Comma-separated account ids a bookings or read key is limited to (null: every account).
        batch_op.add_column(sa.Column("account_ids", sa.Text(), nullable=True))
    for table in ("invoices", "credit_notes"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            # The seller's and the buyer's details as issued (JSON), written on approval.
            batch_op.add_column(sa.Column("seller_details", sa.Text(), nullable=True))
            batch_op.add_column(sa.Column("buyer_details", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in ("credit_notes", "invoices"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("buyer_details")
            batch_op.drop_column("seller_details")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("account_ids")
        batch_op.drop_column("expires_at")
