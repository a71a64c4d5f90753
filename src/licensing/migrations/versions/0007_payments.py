"""payments: money received, where each part of it went, and what is left to pay on invoices

* ``payments`` and ``payment_allocations`` (SPEC 12), ``statement_entries`` (camt.053 imports);
* ``invoices.amount_paid`` and ``invoices.amount_credited`` (caches of the allocations and of
  the approved credit notes), the latter filled from the credit notes approved so far.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place (no batch copy: other tables refer to invoices), amounts as scaled integers.
    op.add_column("invoices", sa.Column("amount_paid", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("invoices", sa.Column("amount_credited", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "update invoices set amount_credited = coalesce((select sum(gross) from credit_notes"
        " where credit_notes.invoice_id = invoices.id and credit_notes.status = 'approved'), 0)"
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversal_reason", sa.Text(), nullable=True),
        sa.Column("reversed_by", sa.String(length=200), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name="payment_amount_positive"),
        sa.CheckConstraint("method in ('bank_transfer', 'card', 'cash', 'direct_debit', 'other')", name="payment_method"),
        sa.CheckConstraint("status in ('received', 'reversed')", name="payment_status"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payments_account_id", "payments", ["account_id"])
    op.create_index("ix_payments_invoice_id", "payments", ["invoice_id"])
    op.create_table(
        "payment_allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount <> 0", name="allocation_amount_nonzero"),
        sa.CheckConstraint("kind in ('payment', 'settlement', 'reversal')", name="allocation_kind"),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payment_allocations_payment_id", "payment_allocations", ["payment_id"])
    op.create_index("ix_payment_allocations_invoice_id", "payment_allocations", ["invoice_id"])
    op.create_index("ix_payment_allocations_unapplied", "payment_allocations", ["account_id", "invoice_id"])
    # When a credit pack grants its credits: on approval (every pack so far) or on payment.
    op.add_column("products", sa.Column("grant_on", sa.String(length=20), nullable=False, server_default="approval"))
    # The oldest open due date of each account (see accounts.models.Account.overdue_since).
    op.add_column("accounts", sa.Column("overdue_since", sa.Date(), nullable=True))
    op.execute(
        "update accounts set overdue_since = (select min(due_date) from invoices"
        " where invoices.account_id = accounts.id and invoices.status = 'approved')"
    )
    op.create_table(
        "payment_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("stage_days", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status in ('pending', 'sent', 'failed', 'skipped')", name="payment_reminder_status"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invoice_id", "stage_days", name="uq_payment_reminder_stage"),
    )
    op.create_index("ix_payment_reminders_invoice_id", "payment_reminders", ["invoice_id"])
    op.create_index("ix_payment_reminders_due", "payment_reminders", ["status", "next_attempt_at"])
    op.create_table(
        "mandates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column("debtor_name", sa.String(length=200), nullable=False),
        sa.Column("mandate_reference", sa.String(length=35), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("scheme", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("first_collected_on", sa.Date(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scheme in ('CORE', 'B2B')", name="mandate_scheme"),
        sa.CheckConstraint("status in ('active', 'revoked')", name="mandate_status"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mandate_reference"),
    )
    op.create_index("ix_mandates_account_id", "mandates", ["account_id"])
    op.create_table(
        "direct_debits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_date", sa.Date(), nullable=False),
        sa.Column("message_id", sa.String(length=35), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "direct_debit_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direct_debit_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("mandate_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.String(length=4), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=False),
        sa.ForeignKeyConstraint(["direct_debit_id"], ["direct_debits.id"]),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.ForeignKeyConstraint(["mandate_id"], ["mandates.id"]),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invoice_id"),
    )
    op.create_index("ix_direct_debit_items_direct_debit_id", "direct_debit_items", ["direct_debit_id"])
    op.create_table(
        "statement_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_key", sa.String(length=400), nullable=False),
        sa.Column("statement_id", sa.String(length=200), nullable=False),
        sa.Column("account_iban", sa.String(length=40), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("remittance", sa.Text(), nullable=True),
        sa.Column("debtor_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=400), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status in ('matched', 'unmatched')", name="statement_entry_status"),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_key"),
    )


def downgrade() -> None:
    op.drop_table("statement_entries")
    op.drop_table("direct_debit_items")
    op.drop_table("direct_debits")
    op.drop_table("mandates")
    op.drop_table("payment_reminders")
    op.execute("alter table accounts drop column overdue_since")
    op.execute("alter table products drop column grant_on")
    op.drop_table("payment_allocations")
    op.drop_table("payments")
    op.execute("alter table invoices drop column amount_credited")
    op.execute("alter table invoices drop column amount_paid")
