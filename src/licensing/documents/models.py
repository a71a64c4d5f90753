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
