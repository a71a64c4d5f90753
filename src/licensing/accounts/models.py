from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from licensing.db.types import Credits, UTCDateTime


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    currency: str = Field(max_length=3)
    address: str = Field(default="", max_length=2000)
    country: str | None = Field(default=None, max_length=2)
    tax_id: str | None = Field(default=None, max_length=64)
    tax_exempt: bool = False
    # Running total of the ledger (balance_after of the last entry): a cache the ledger recomputes.
    balance: Decimal = Field(default=Decimal("0"), sa_column=Column(Credits(), nullable=False, default=0))
    # Credits owed by the whole account (its pool and its units): overdrafts not yet settled.
    debt: Decimal = Field(default=Decimal("0"), sa_column=Column(Credits(), nullable=False, default=0))
    # The earliest moment a rollover cap of one of its grants is due to be applied (None: none).
    rollover_due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # The due date of the account's oldest approved invoice with something still due (None: none
    # is open), kept by invoicing with every approval, payment, credit note and void: what
    # LICENSING_BLOCK_CONSUMPTION_AFTER_DAYS compares with, read from the row a booking locks anyway.
    overdue_since: date | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class BusinessUnit(SQLModel, table=True):
    __tablename__ = "business_units"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    name: str = Field(max_length=200)
    # The part of the account's debt owed by this unit.
    debt: Decimal = Field(default=Decimal("0"), sa_column=Column(Credits(), nullable=False, default=0))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Member(SQLModel, table=True):
    __tablename__ = "members"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
