"""Accounts, their business units and members."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from licensing.accounts.models import Account, BusinessUnit, Member
from licensing.clock import local_date
from licensing.config import Settings, get_settings
from licensing.db.repository import apply, get_or_404
from licensing.errors import AccountOverdue, Conflict, ValidationFailed
from licensing.money import is_currency

ACCOUNT_FIELDS = ("name", "email", "currency", "address", "country", "tax_id", "tax_exempt")


def _check_account(values: dict[str, Any]) -> None:
    currency = values.get("currency")
    if currency is not None and not is_currency(currency):
        raise ValidationFailed(f"unknown currency {currency!r} (ISO 4217)", field="currency")


def create_account(session: Session, *, at: datetime, **values: Any) -> Account:
    _check_account(values)
    account = Account(created_at=at, **{key: value for key, value in values.items() if key in ACCOUNT_FIELDS and value is not None})
    session.add(account)
    session.flush()
    return account


def update_account(session: Session, account_id: str | int, **changes: Any) -> Account:
    account = get_or_404(session, Account, account_id, "account")
    _check_account(changes)
    if "currency" in changes and changes["currency"] != account.currency and account.balance != 0:
        raise Conflict("the currency of an account that holds credits cannot change")
    apply(account, {key: value for key, value in changes.items() if key in ACCOUNT_FIELDS})
    session.add(account)
    session.flush()
    return account


def create_business_unit(session: Session, account_id: str | int, *, name: str, at: datetime) -> BusinessUnit:
    account = get_or_404(session, Account, account_id, "account")
    existing = session.exec(select(BusinessUnit).where(BusinessUnit.account_id == account.id, BusinessUnit.name == name)).first()
    if existing is not None:
        raise Conflict(f"account {account.id} already has a business unit named {name!r}")
    unit = BusinessUnit(account_id=account.id, name=name, created_at=at)
    session.add(unit)
    session.flush()
    return unit


def create_member(session: Session, account_id: str | int, *, name: str, email: str | None, at: datetime) -> Member:
    account = get_or_404(session, Account, account_id, "account")
    member = Member(account_id=account.id, name=name, email=email, created_at=at)
    session.add(member)
    session.flush()
    return member


def check_not_overdue(account: Account, now: datetime, settings: Settings | None = None) -> None:
    """With ``LICENSING_BLOCK_CONSUMPTION_AFTER_DAYS`` set, refuse a booking or a hold for an
    account whose oldest open invoice is that many days past its due date (at least one: an
    invoice is overdue from the day after its due date), in the operator's zone."""
    settings = settings or get_settings()
    after = settings.block_consumption_after_days
    if after is None or account.overdue_since is None:
        return
    late = (local_date(now, settings.zone) - account.overdue_since).days
    if late >= max(after, 1):
        raise AccountOverdue(
            f"account {account.id} has an invoice {late} days past its due date ({account.overdue_since.isoformat()}): "
            f"bookings are refused from {max(after, 1)} days; record its payment first",
            overdue_since=account.overdue_since.isoformat(), days_overdue=late,
        )
