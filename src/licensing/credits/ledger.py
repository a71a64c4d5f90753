"""The ledger: append-only movements of credits, each with the account's running balance.

``balance_after`` is the running total of the account's ledger in recording order: the
remaining credits of all its grants not yet expired (valid or pending), less debt. The account
row caches that total; it is locked by the caller before any entry is written.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from licensing.accounts.models import Account
from licensing.credits.models import Grant, LedgerEntry


def post(
    session: Session,
    account: Account,
    *,
    kind: str,
    credits: Decimal,
    grant: Grant | None,
    source_type: str,
    source_id: str | int,
    actor: str,
    occurred_at: datetime,
    recorded_at: datetime,
    business_unit_id: int | None = None,
) -> LedgerEntry:
    """Append one entry of signed ``credits`` and move the account's running balance."""
    account.balance = account.balance + credits
    entry = LedgerEntry(
        account_id=account.id,
        grant_id=grant.id if grant is not None else None,
        business_unit_id=grant.business_unit_id if grant is not None else business_unit_id,
        kind=kind,
        credits=credits,
        balance_after=account.balance,
        source_type=source_type,
        source_id=str(source_id),
        actor=actor,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
    )
    session.add(account)
    session.add(entry)
    return entry
