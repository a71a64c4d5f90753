from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from licensing.db.types import UTCDateTime


class Delivery(SQLModel, table=True):
    """One e-mail carrying one approved document to the account's billing address. The unique
    key (document type, document id) is what keeps a member from getting the same document twice."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("document_type", "document_id", name="uq_delivery_document"),
        CheckConstraint("document_type in ('invoice', 'credit_note')", name="delivery_document_type"),
        CheckConstraint("status in ('pending', 'sent', 'failed')", name="delivery_status"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    document_type: str = Field(max_length=20)
    document_id: int
    account_id: int = Field(foreign_key="accounts.id", index=True)
    recipient: str = Field(max_length=320)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    next_attempt_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # While a sender works on it: other senders leave it alone until then (a crashed sender's
    # claim runs out and the mail is tried again, with the same Message-ID).
    claimed_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    message_id: str | None = Field(default=None, max_length=200)
    sent_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PaymentReminder(SQLModel, table=True):
    """One stage of reminding an overdue invoice (``stage_days`` past its due date), mailed once:
    the unique key on (invoice, stage) is what keeps a member from getting a stage twice. Stage 0
    records the day the invoice was first seen overdue (no mail); a stage passed while no reminder
    job ran is recorded ``skipped`` when a later one is due at once (one mail, the latest)."""

    __tablename__ = "payment_reminders"
    __table_args__ = (
        UniqueConstraint("invoice_id", "stage_days", name="uq_payment_reminder_stage"),
        CheckConstraint("status in ('pending', 'sent', 'failed', 'skipped')", name="payment_reminder_status"),
        Index("ix_payment_reminders_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoices.id", index=True)
    account_id: int = Field(foreign_key="accounts.id")
    stage_days: int
    recipient: str = Field(max_length=320)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    next_attempt_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    message_id: str | None = Field(default=None, max_length=200)
    sent_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    # What the mail of a reminder carries: the invoice (``documents.delivery.load_document``).
    @property
    def document_type(self) -> str:
        return "invoice"

    @property
    def document_id(self) -> int:
        return self.invoice_id
