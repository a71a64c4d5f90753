"""Builders for the tests: a realistic space in a few calls, through the real use cases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from licensing.accounts.services import (
    create_account,
    create_business_unit,
    create_member,
)
from licensing.catalog.services import create_credit_price, create_product
from licensing.db import Database
from licensing.licences.services import add_service, create_licence

SETUP_TIME = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def account(database: Database, name: str = "Acme Ltd", currency: str = "EUR", **values):
    with database.write() as session:
        return create_account(session, name=name, email="billing@acme.test", currency=currency, at=SETUP_TIME, **values)


def business_unit(database: Database, account_id: int, name: str):
    with database.write() as session:
        return create_business_unit(session, account_id, name=name, at=SETUP_TIME)


def member(database: Database, account_id: int, name: str = "Ada Lovelace"):
    with database.write() as session:
        return create_member(session, account_id, name=name, email="ada@acme.test", at=SETUP_TIME)


def credit_pack(
    database: Database,
    credits: str = "10",
    lifetime: str | None = "P1M",
    price: str = "100.00",
    currency: str = "EUR",
    tax_rate: str = "20",
    name: str | None = None,
    grant_on: str = "approval",
):
    with database.write() as session:
        return create_product(
            session,
            kind="credit_pack",
            grant_on=grant_on,
            name=name or f"{credits} credits ({lifetime})",
            price=Decimal(price),
            currency=currency,
            tax_rate=Decimal(tax_rate),
            credits=Decimal(credits),
            lifetime=lifetime,
            at=SETUP_TIME,
        )


def plain_service(database: Database, price: str = "310.00", currency: str = "EUR", tax_rate: str = "20", name: str = "Dedicated desk"):
    with database.write() as session:
        return create_product(session, kind="service", name=name, price=Decimal(price), currency=currency, tax_rate=Decimal(tax_rate), at=SETUP_TIME)


def credit_price(database: Database, name: str = "Meeting room (per hour)", credits_per_unit: str = "2"):
    with database.write() as session:
        return create_credit_price(session, name=name, credits_per_unit=Decimal(credits_per_unit), at=SETUP_TIME)


def licence(database: Database, account_id: int, start: date, end: date | None = None, **values):
    with database.write() as session:
        return create_licence(session, account_id=account_id, start_date=start, end_date=end, at=SETUP_TIME, **values)


def service(database: Database, licence_id: int, product_id: int, schedule: str = "monthly", **values):
    values.setdefault("quantity", Decimal(1))
    with database.write() as session:
        return add_service(session, licence_id, product_id=product_id, schedule=schedule, at=SETUP_TIME, **values)
