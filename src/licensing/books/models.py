from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, Column, Date, Index, Text
from sqlmodel import Field, SQLModel

from licensing.db.types import Amount, UTCDateTime


class JournalEntry(SQLModel, table=True):
    """One balanced entry of the journal: the postings of one financial event (SPEC 11).

    ``date`` is the day it posts on: the event's day in the operator's zone, or the day it was made when that day is closed
    by the lock date."""

    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_entries_date", "date", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    date: dt.date = Field(sa_column=Column(Date(), nullable=False))
    event: str = Field(max_length=40)
    currency: str = Field(max_length=3)
    source_type: str = Field(max_length=30)
    source_id: str = Field(max_length=40)
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    document: str | None = Field(default=None, max_length=40)
    description: str = Field(sa_column=Column(Text, nullable=False))
    recorded_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class JournalPosting(SQLModel, table=True):
    """One side of an entry: ``debit`` or ``credit`` (the other is 0) to a role of the chart."""

    __tablename__ = "journal_postings"
    __table_args__ = (
        CheckConstraint("debit >= 0 and credit >= 0 and (debit = 0 or credit = 0)", name="posting_one_side"),
        Index("ix_journal_postings_entry", "entry_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="journal_entries.id")
    role: str = Field(max_length=40)
    tax_rate: Decimal | None = Field(default=None, sa_column=Column(Amount(), nullable=True))
    debit: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    credit: Decimal = Field(sa_column=Column(Amount(), nullable=False))


class BooksSettings(SQLModel, table=True):
    """The operator's settings of the books (one row, id 1): the chart of accounts (JSON, see
    ``books.chart``; null: the default preset) and the lock date."""

    __tablename__ = "books_settings"

    id: int | None = Field(default=None, primary_key=True)
    chart: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    lock_date: dt.date | None = Field(default=None, sa_column=Column(Date(), nullable=True))
    updated_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
