"""ledger kinds: a CHECK constraint keeps ledger_entries.kind to the kinds of credits.kinds

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:20:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The kinds as this revision knows them (a later kind needs a migration of its own).
KINDS = (
    "grant", "consume", "consume_reversal", "expire", "rollover_cut", "credit_note_reversal", "adjust_add",
    "adjust_deduct", "transfer_out", "transfer_in", "hold", "hold_release", "debt", "debt_settlement",
)


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_check_constraint("ledger_kind", "kind in (" + ", ".join(f"'{kind}'" for kind in KINDS) + ")")


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_constraint("ledger_kind", type_="check")
