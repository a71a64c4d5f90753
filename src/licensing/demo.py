"""``licensing demo``: a small realistic space in an empty database.

Two customers of a coworking space: a hospital whose departments share meeting-room credits
(business units), and a freelancer with a hot desk. Three months of invoices are generated and
approved month by month, bookings consume credits along the way and unused credits expire, so
that a newcomer sees invoices, balances and a ledger at once.

The demo fills an empty database only: one that already holds accounts, products, credit prices
or invoices is refused (``DatabaseNotEmpty``) and left untouched. API keys do not count: an
operator may create one before loading the demo.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlmodel import select

from licensing.accounts.models import Account
from licensing.accounts.services import (
    create_account,
    create_business_unit,
    create_member,
)
from licensing.catalog.models import CreditPrice, Product
from licensing.catalog.services import create_credit_price, create_product
from licensing.credits.consumption import consume
from licensing.credits.expiry import sweep_expiries
from licensing.dates import month_shift
from licensing.db import Database
from licensing.errors import InsufficientCredits, LicensingError
from licensing.invoicing.billing import run_billing
from licensing.licences.services import add_service, create_licence

ACTOR = "demo"


def _at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


class DatabaseNotEmpty(LicensingError):
    code = "database_not_empty"
    title = "The database already holds data"


def holds_data(database: Database) -> str | None:
    """What the database already holds ("accounts", ...), or None when the demo may fill it."""
    from licensing.invoicing.models import Invoice

    with database.read() as session:
        for model, what in ((Account, "accounts"), (Product, "products"), (CreditPrice, "credit prices"), (Invoice, "invoices")):
            if session.exec(select(model.id).limit(1)).first() is not None:
                return what
    return None


def load_demo(database: Database, *, now: datetime) -> str:
    held = holds_data(database)
    if held is not None:
        raise DatabaseNotEmpty(f"the database already holds {held}: the demo only fills an empty database (nothing was changed)")
    year, month = month_shift(now.year, now.month, -2)
    start = date(year, month, 1)
    setup = _at(start - timedelta(days=3))
    with database.write() as session:
        hospital = create_account(
            session, name="St. Mary's Hospital", email="accounts@stmarys.example", currency="EUR",
            address="12 Harbour Road\n75011 Paris", country="FR", tax_id="FR40303265045", at=setup,
        )
        cardiology = create_business_unit(session, hospital.id, name="Cardiology", at=setup)
        neurology = create_business_unit(session, hospital.id, name="Neurology", at=setup)
        create_member(session, hospital.id, name="Dr. Amélie Roux", email="a.roux@stmarys.example", at=setup)
        freelancer = create_account(
            session, name="Ada Lovelace", email="ada@lovelace.example", currency="EUR",
            address="3 Rue des Arts\n69001 Lyon", country="FR", at=setup,
        )
        create_member(session, freelancer.id, name="Ada Lovelace", email="ada@lovelace.example", at=setup)
        hot_desk = create_product(session, kind="service", name="Hot desk", price=Decimal("250.00"), currency="EUR", tax_rate=Decimal("20"), at=setup)
        office = create_product(
            session, kind="service", name="Private office (4 desks)", price=Decimal("1800.00"), currency="EUR", tax_rate=Decimal("20"), at=setup
        )
        monthly_credits, rolling_credits, welcome = (
            create_product(
                session, kind="credit_pack", name=name, price=Decimal(price), currency="EUR", tax_rate=Decimal("20"),
                credits=Decimal(credits), lifetime=lifetime, at=setup,
            )
            for name, price, credits, lifetime in (
                ("Meeting credits (monthly)", "90.00", "20", "P1M"),
                ("Meeting credits (rolling two months)", "200.00", "40", "P2M"),
                ("Welcome allowance", "0.00", "10", "P12M"),
            )
        )
        meeting_room = create_credit_price(session, name="Meeting room (per hour)", credits_per_unit=Decimal("2"), at=setup)
        create_credit_price(session, name="Boardroom (per hour)", credits_per_unit=Decimal("5"), at=setup)

        hospital_licence = create_licence(session, account_id=hospital.id, start_date=start, auto_approve=True, at=setup)
        for product, unit in ((office, None), (rolling_credits, cardiology), (monthly_credits, neurology), (monthly_credits, None)):
            add_service(
                session, hospital_licence.id, product_id=product.id, quantity=Decimal(1), schedule="monthly",
                business_unit_id=unit.id if unit else None, at=setup,
            )

        freelance_start = start + timedelta(days=14)
        freelance_licence = create_licence(session, account_id=freelancer.id, start_date=freelance_start, auto_approve=True, at=setup)
        for product, schedule in ((hot_desk, "monthly"), (monthly_credits, "monthly"), (welcome, "one_off")):
            add_service(session, freelance_licence.id, product_id=product.id, quantity=Decimal(1), schedule=schedule, at=setup)
        ids = (hospital.id, cardiology.id, neurology.id, freelancer.id, meeting_room.id)

    hospital_id, cardiology_id, neurology_id, freelancer_id, meeting_room_id = ids
    bookings = 0
    for offset in range(3):
        period_start = date(*month_shift(year, month, offset), 1)
        if _at(period_start, 1) > now:
            break
        run_billing(database, as_of=period_start, now=_at(period_start, 1), actor=ACTOR)
        if period_start < freelance_start <= period_start + timedelta(days=27):
            run_billing(database, as_of=freelance_start, now=_at(freelance_start, 1), actor=ACTOR)
        for day, account_id, unit_id, hours in (
            (3, hospital_id, cardiology_id, "3"), (9, hospital_id, neurology_id, "2"), (16, hospital_id, cardiology_id, "4.5"),
            (17, freelancer_id, None, "2"), (23, hospital_id, None, "1.5"), (24, freelancer_id, None, "1"),
        ):
            moment = _at(period_start + timedelta(days=day - 1), 14)
            if moment > now:
                continue
            try:
                with database.write() as session:
                    consume(
                        session, account_id, credit_price_id=meeting_room_id, quantity=Decimal(hours),
                        business_unit_id=unit_id, description="Meeting room booking", now=moment, actor=ACTOR,
                    )
                bookings += 1
            except InsufficientCredits:
                pass
    sweep_expiries(database, now=now)
    return f"demo space loaded: 2 accounts, 2 licences, invoices for the last months, {bookings} bookings"
