"""Debt: credits consumed past the balance with ``allow_overdraft`` (SPEC 4).

Debt is owed by a place: the account's unrestricted pool or one of its business units. The
account row holds the total (``Account.debt``), each unit its own part (``BusinessUnit.debt``);
the pool's part is the difference. The next credits granted in a place settle its debt first:
the grant writes its ``grant`` entry, then a ``debt_settlement`` entry drawn from it.

A ``debt`` entry lowers the running balance by the shortfall (balance = remaining - debt). A
``debt_settlement`` entry moves credits from the new grant to the debt: the grant's remaining
falls and the debt falls by the same amount, so the running balance does not change.
"""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session, select

from licensing.accounts.models import Account, BusinessUnit
from licensing.money import ZERO


def debts_of(session: Session, account: Account) -> dict[int | None, Decimal]:
    """What each place of the account owes: ``None`` is the unrestricted pool."""
    if account.debt == 0:
        return {}
    units = dict(session.exec(select(BusinessUnit.id, BusinessUnit.debt).where(BusinessUnit.account_id == account.id, BusinessUnit.debt > 0)).all())
    pool = account.debt - sum(units.values(), ZERO)
    return ({None: pool} if pool > 0 else {}) | units


def change_debt(session: Session, account: Account, business_unit_id: int | None, credits: Decimal) -> None:
    """Add ``credits`` (negative: settle) to the debt of a place of the account."""
    account.debt += credits
    session.add(account)
    if business_unit_id is not None:
        unit = session.get(BusinessUnit, business_unit_id, with_for_update=True)
        unit.debt += credits
        session.add(unit)
