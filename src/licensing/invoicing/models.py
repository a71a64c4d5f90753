from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from licensing.db.types import Amount, Credits, UTCDateTime


class Invoice(SQLModel, table=True):
    """A bill to an account: one billing period of one licence (or a supplementary one), or a top-up."""

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("status in ('draft', 'approved', 'paid', 'void')", name="invoice_status"),
        CheckConstraint("kind in ('period', 'supplementary', 'top_up')", name="invoice_kind"),
        Index("ix_invoices_licence_period", "licence_id", "period_start"),
        # An account's unpaid invoices by due date: its ``overdue_since`` is the first of them
        # (``payments.refresh_overdue``). Without it, inside a billing run's transaction (no
        # statistics yet on the invoices just written) PostgreSQL met both conditions by ANDing the
        # status index, every approved invoice, with the account's: quadratic in a run (issue 17).
        Index("ix_invoices_unpaid_due", "account_id", "due_date",
              postgresql_where=text("status = 'approved'"), sqlite_where=text("status = 'approved'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    licence_id: int | None = Field(default=None, foreign_key="licences.id")
    kind: str = Field(default="period", max_length=20)
    status: str = Field(default="draft", max_length=20, index=True)
    number: str | None = Field(default=None, max_length=40, unique=True)
    currency: str = Field(max_length=3)
    issue_date: dt.date
    due_date: dt.date
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    net: Decimal = Field(default=Decimal("0"), sa_column=Column(Amount(), nullable=False, default=0))
    tax: Decimal = Field(default=Decimal("0"), sa_column=Column(Amount(), nullable=False, default=0))
    gross: Decimal = Field(default=Decimal("0"), sa_column=Column(Amount(), nullable=False, default=0))
    # What has reduced what is due: payments applied to it (``payments``) and the gross of its
    # approved credit notes. Both are caches of their rows, written with them.
    amount_paid: Decimal = Field(default=Decimal("0"), sa_column=Column(Amount(), nullable=False, default=0, server_default="0"))
    amount_credited: Decimal = Field(default=Decimal("0"), sa_column=Column(Amount(), nullable=False, default=0, server_default="0"))
    approved_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    approved_by: str | None = Field(default=None, max_length=200)
    voided_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    voided_by: str | None = Field(default=None, max_length=200)
    void_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # why it was voided, shown on it
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The seller's and the buyer's details as issued (JSON), written on approval: an approved
    # document never changes when the operator's settings or the account change later.
    seller_details: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    buyer_details: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class InvoiceLine(SQLModel, table=True):
    """One billable line. ``billing_slot`` names what it bills (a service's period, week or
    one-off), and the unique key on (service, slot) makes each billable line billed once."""

    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("contract_service_id", "billing_slot", name="uq_line_service_slot"),)

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoices.id", index=True)
    contract_service_id: int | None = Field(default=None, foreign_key="contract_services.id")
    product_id: int = Field(foreign_key="products.id")
    business_unit_id: int | None = Field(default=None, foreign_key="business_units.id")
    billing_slot: str = Field(max_length=40)
    description: str = Field(max_length=2000)
    period_start: dt.date
    period_end: dt.date
    # The anchor date the line's period would have started on had it been whole (grants' expiry).
    nominal_start: dt.date
    schedule: str = Field(max_length=20)
    quantity: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    unit_price: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    tax_rate: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    net: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    tax: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    credits: Decimal | None = Field(default=None, sa_column=Column(Credits(), nullable=True))


class NumberSeries(SQLModel, table=True):
    """The last number given in a gapless series (``INV``, ``CN``) for one year."""

    __tablename__ = "number_series"

    series: str = Field(primary_key=True, max_length=10)
    year: int = Field(primary_key=True)
    last: int = 0


class CreditNote(SQLModel, table=True):
    """Credits (part of) an approved invoice; numbered in its own series (``CN``) on approval."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        CheckConstraint("status in ('draft', 'approved')", name="credit_note_status"),
        CheckConstraint("credit_policy in ('strict', 'cap_to_remaining')", name="credit_note_policy"),
    )

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoices.id", index=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    status: str = Field(default="draft", max_length=20)
    number: str | None = Field(default=None, max_length=40, unique=True)
    reason: str = Field(default="", max_length=2000)
    credit_policy: str = Field(default="strict", max_length=20)
    currency: str = Field(max_length=3)
    issue_date: dt.date
    net: Decimal = Field(default=Decimal("0"), sa_column=Column(Amount(), nullable=False, default=0))
    tax: Decimal = Field(default=Decimal("0"), sa_column=Column(Amount(), nullable=False, default=0))
    gross: Decimal = Field(default=Decimal("0"), sa_column=Column(Amount(), nullable=False, default=0))
    approved_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    approved_by: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    actor: str = Field(max_length=200)
    seller_details: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    buyer_details: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class CreditNoteLine(SQLModel, table=True):
    """The share of one invoice line that a credit note credits (positive amounts)."""

    __tablename__ = "credit_note_lines"

    id: int | None = Field(default=None, primary_key=True)
    credit_note_id: int = Field(foreign_key="credit_notes.id", index=True)
    invoice_line_id: int = Field(foreign_key="invoice_lines.id", index=True)
    description: str = Field(max_length=2000)
    quantity: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    unit_price: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    tax_rate: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    net: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    tax: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    # Credits the line takes back from the invoice line's grant: null until approved.
    credits_taken_back: Decimal | None = Field(default=None, sa_column=Column(Credits(), nullable=True))


class Payment(SQLModel, table=True):
    """Money received from an account (SPEC 12), recorded against an invoice. What of it the
    invoice could not take (an allowed overpayment) is the account's unapplied cash until later
    invoices take it; its ``PaymentAllocation`` rows say where every part of it went."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="payment_amount_positive"),
        CheckConstraint("method in ('bank_transfer', 'card', 'cash', 'direct_debit', 'other')", name="payment_method"),
        CheckConstraint("status in ('received', 'reversed')", name="payment_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    invoice_id: int = Field(foreign_key="invoices.id", index=True)
    currency: str = Field(max_length=3)
    amount: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    method: str = Field(max_length=20)
    received_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reference: str | None = Field(default=None, max_length=200)
    status: str = Field(default="received", max_length=20)
    reversed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    reversal_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    reversed_by: str | None = Field(default=None, max_length=200)
    recorded_by: str = Field(max_length=200)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PaymentAllocation(SQLModel, table=True):
    """Where a part of a payment went: to an invoice, or (``invoice_id`` null) to the account's
    unapplied cash. Append-only: settling unapplied cash moves it with a negative row and a
    positive one, a reversal adds the negative of what is left on each invoice."""

    __tablename__ = "payment_allocations"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="allocation_amount_nonzero"),
        CheckConstraint("kind in ('payment', 'settlement', 'reversal')", name="allocation_kind"),
        Index("ix_payment_allocations_unapplied", "account_id", "invoice_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    payment_id: int = Field(foreign_key="payments.id", index=True)
    account_id: int = Field(foreign_key="accounts.id")
    invoice_id: int | None = Field(default=None, foreign_key="invoices.id", index=True)
    amount: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    kind: str = Field(max_length=20)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StatementEntry(SQLModel, table=True):
    """A credit entry of an imported bank statement (camt.053), recorded once however often its
    statement is imported (``entry_key``), with the payment it became or why it matched nothing."""

    __tablename__ = "statement_entries"
    __table_args__ = (CheckConstraint("status in ('matched', 'unmatched')", name="statement_entry_status"),)

    id: int | None = Field(default=None, primary_key=True)
    entry_key: str = Field(max_length=400, unique=True)  # the bank's reference of the entry, or the statement's id and the entry's place
    statement_id: str = Field(max_length=200)
    account_iban: str | None = Field(default=None, max_length=40)  # the operator's account the statement is of
    amount: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    currency: str = Field(max_length=3)
    booked_on: dt.date
    reference: str | None = Field(default=None, max_length=200)  # structured creditor reference (RF ...)
    remittance: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # unstructured remittance text
    debtor_name: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=20)
    invoice_id: int | None = Field(default=None, foreign_key="invoices.id")
    payment_id: int | None = Field(default=None, foreign_key="payments.id")
    reason: str | None = Field(default=None, max_length=400)  # why it matched nothing
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Mandate(SQLModel, table=True):
    """A SEPA direct debit mandate: the account's permission to collect its invoices from a bank
    account (EUR accounts only)."""

    __tablename__ = "mandates"
    __table_args__ = (
        CheckConstraint("scheme in ('CORE', 'B2B')", name="mandate_scheme"),
        CheckConstraint("status in ('active', 'revoked')", name="mandate_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    iban: str = Field(max_length=34)
    bic: str | None = Field(default=None, max_length=11)
    debtor_name: str = Field(max_length=200)  # the account holder, as the mandate names them
    mandate_reference: str = Field(max_length=35, unique=True)
    signed_on: dt.date
    scheme: str = Field(default="CORE", max_length=4)
    status: str = Field(default="active", max_length=20)
    first_collected_on: dt.date | None = None  # the first collection (FRST), after which they are RCUR
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class DirectDebit(SQLModel, table=True):
    """A collection: one pain.008 file covering approved, unpaid EUR invoices of accounts with an
    active mandate, each invoice once (``DirectDebitItem``)."""

    __tablename__ = "direct_debits"

    id: int | None = Field(default=None, primary_key=True)
    collection_date: dt.date
    message_id: str = Field(max_length=35)
    count: int
    total: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    xml: str = Field(sa_column=Column(Text, nullable=False))  # the pain.008.001.02 file as written
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=200)


class DirectDebitItem(SQLModel, table=True):
    """One invoice collected by a direct debit (an invoice is collected once), and its payment."""

    __tablename__ = "direct_debit_items"

    id: int | None = Field(default=None, primary_key=True)
    direct_debit_id: int = Field(foreign_key="direct_debits.id", index=True)
    invoice_id: int = Field(foreign_key="invoices.id", unique=True)
    mandate_id: int = Field(foreign_key="mandates.id")
    payment_id: int = Field(foreign_key="payments.id")
    amount: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    sequence: str = Field(max_length=4)  # FRST or RCUR
    end_to_end_id: str = Field(max_length=35)
