"""the books: the value of ledger entries, the journal, the books' settings

* ``ledger_entries.value``: the change of value of each entry (``credits.ledger.value_moved``),
  computed for the entries written before this revision from the grants and the ledger
  (``credits.revalue``);
* ``journal_entries`` and ``journal_postings`` (SPEC 11), empty: ``licensing journal rebuild``
  posts the entries of what happened before;
* ``books_settings``: the chart of accounts and the lock date.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 03:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlmodel import Session

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place (no batch copy: nothing may refer to a copied table), as scaled integers.
    op.add_column("ledger_entries", sa.Column("value", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source_type", sa.String(length=30), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("document", sa.String(length=40), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_journal_entries_date", "journal_entries", ["date", "id"])
    op.create_index("ix_journal_entries_account_id", "journal_entries", ["account_id"])
    op.create_table(
        "journal_postings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("tax_rate", sa.BigInteger(), nullable=True),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("credit", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("debit >= 0 and credit >= 0 and (debit = 0 or credit = 0)", name="posting_one_side"),
        sa.ForeignKeyConstraint(["entry_id"], ["journal_entries.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_journal_postings_entry", "journal_postings", ["entry_id"])
    op.create_table(
        "books_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chart", sa.Text(), nullable=True),
        sa.Column("lock_date", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    from licensing.credits.revalue import revalue

    revalue(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_table("books_settings")
    op.drop_index("ix_journal_postings_entry", table_name="journal_postings")
    op.drop_table("journal_postings")
    op.drop_index("ix_journal_entries_account_id", table_name="journal_entries")
    op.drop_index("ix_journal_entries_date", table_name="journal_entries")
    op.drop_table("journal_entries")
    op.execute("alter table ledger_entries drop column value")
