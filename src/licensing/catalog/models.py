from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Column, String
from sqlmodel import Field, SQLModel

from licensing.db.types import Amount, Credits, UTCDateTime


class Product(SQLModel, table=True):
    """A catalog item: a plain ``service`` or a ``credit_pack`` (credits, price, lifetime)."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("kind in ('service', 'credit_pack')", name="product_kind"),
        CheckConstraint("price >= 0", name="product_price_not_negative"),
        CheckConstraint("credits is null or credits > 0", name="product_credits_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    name: str = Field(max_length=200)
    price: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    currency: str = Field(max_length=3)
    tax_rate: Decimal = Field(sa_column=Column(Amount(), nullable=False, default=0))
    credits: Decimal | None = Field(default=None, sa_column=Column(Credits(), nullable=True))
    lifetime: str | None = Field(default=None, max_length=40)
    # When a credit pack's credits are granted: on the invoice's ``approval``, or on its
    # ``payment`` in full (SPEC 12).
    grant_on: str = Field(default="approval", sa_column=Column(String(20), nullable=False, server_default="approval"))
    active: bool = True
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class CreditPrice(SQLModel, table=True):
    """A credit-priced service for consumption, e.g. 'Meeting room, 2 credits per hour'."""

    __tablename__ = "credit_prices"
    __table_args__ = (CheckConstraint("credits_per_unit > 0", name="credit_price_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    credits_per_unit: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
