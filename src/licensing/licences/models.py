from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Column, false
from sqlmodel import Field, SQLModel

from licensing.db.types import Amount, Credits, UTCDateTime


class Licence(SQLModel, table=True):
    """A contract between the operator and an account."""

    __tablename__ = "licences"
    __table_args__ = (
        CheckConstraint("billing_anchor_day between 1 and 31", name="licence_anchor_day"),
        CheckConstraint("end_date is null or end_date >= start_date", name="licence_dates_ordered"),
        CheckConstraint("status in ('active', 'terminated', 'ended')", name="licence_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    start_date: dt.date
    end_date: dt.date | None = None
    auto_renew: bool = False
    renewal_term: str | None = Field(default=None, max_length=40)
    billing_anchor_day: int = 1
    auto_approve: bool = False
    status: str = Field(default="active", max_length=20)
    terminated_on: dt.date | None = None
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ContractService(SQLModel, table=True):
    """A line on a licence: a product on a schedule between two dates."""

    __tablename__ = "contract_services"
    __table_args__ = (
        CheckConstraint("schedule in ('one_off', 'weekly', 'monthly')", name="service_schedule"),
        CheckConstraint("quantity > 0", name="service_quantity_positive"),
        CheckConstraint("to_date is null or to_date >= from_date", name="service_dates_ordered"),
    )

    id: int | None = Field(default=None, primary_key=True)
    licence_id: int = Field(foreign_key="licences.id", index=True)
    product_id: int = Field(foreign_key="products.id")
    quantity: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    unit_price: Decimal | None = Field(default=None, sa_column=Column(Amount(), nullable=True))
    schedule: str = Field(max_length=20)
    from_date: dt.date
    to_date: dt.date | None = None
    business_unit_id: int | None = Field(default=None, foreign_key="business_units.id")
    max_rollover: Decimal | None = Field(default=None, sa_column=Column(Credits(), nullable=True))
    prorate: bool = True
    prorate_credits: bool = False
    # Set by the billing run with the service's first invoice line, never unset (a void invoice
    # still billed it): what a billed service may no longer change (its weekly start, the
    # licence's anchor day) is decided by this flag, so the licences know nothing of invoices.
    billed: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False, server_default=false()))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
