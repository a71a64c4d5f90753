"""The ledger: append-only movements of credits, each with the account's running balance.

``balance_after`` is the running total of the account's ledger in recording order: the
remaining credits of all its grants not yet expired (valid or pending), less debt. The account
row caches that total; it is locked by the caller before any entry is written.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from licensing.accounts.models import Account
from licensing.credits.kinds import COUNTER, LedgerKind
from licensing.credits.models import Grant, LedgerEntry
from licensing.db.bulk import insert_rows, update_rows


def entry_row(
    account_id: int,
    *,
    balance_after: Decimal,
    kind: str,
    credits: Decimal,
    grant_id: int | None,
    business_unit_id: int | None,
    source_type: str,
    source_id: str | int,
    actor: str,
    occurred_at: datetime,
    recorded_at: datetime,
) -> dict[str, Any]:
    """A ledger entry as a row; ``balance_after`` is the account's running total after it."""
    return {
        "account_id": account_id,
        "grant_id": grant_id,
        "business_unit_id": business_unit_id,
        "kind": kind,
        "credits": credits,
        "balance_after": balance_after,
        "source_type": source_type,
        "source_id": str(source_id),
        "actor": actor,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
    }


def append(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write entries made by ``entry_row``, in the order they were made."""
    if rows:
        insert_rows(session, LedgerEntry.__table__, rows)


def store_balances(session: Session, balances: list[tuple[Account, Decimal]]) -> None:
    """Write the accounts' running balances with one plain multi-row UPDATE: cheaper than the
    ORM's flush of each account, and it may go into a pipeline, where the ORM's own update
    (which checks its row count) cannot. The accounts are left as if loaded with these values."""
    update_rows(session, Account.__table__, [{"id": account.id, "balance": balance} for account, balance in balances])
    for account, balance in balances:
        set_committed_value(account, "balance", balance)


def move(session: Session, account: Account, grant: Grant, kind: LedgerKind, credits: Decimal, **values: Any) -> None:
    """The one way to move a grant's credits: ``credits`` (signed) into ``remaining`` and out of
    the counter of ``kind`` (``kinds.COUNTER``), and the ledger entry that records it, with the
    account's running balance. The caller holds the account's lock and the grant's row."""
    for name, value in moved(grant, kind, credits).items():
        setattr(grant, name, value)
    session.add(grant)
    post(session, account, kind=kind.value, credits=credits, grant=grant, **values)


def moved(grant, kind: LedgerKind, credits: Decimal) -> dict[str, Decimal]:
    """The counters of ``grant`` (an ORM object or a row) after moving ``credits`` by ``kind``:
    what ``move`` sets, and what a batch writes with one multi-row update."""
    counter = COUNTER[kind]
    return {"remaining": grant.remaining + credits, counter: getattr(grant, counter) - credits}


def post(session: Session, account: Account, *, grant=None, business_unit_id: int | None = None, **values: Any) -> None:
    """Append one entry against ``grant`` (or none) and move the account's running balance."""
    account.balance = account.balance + values["credits"]
    append(
        session,
        [
            entry_row(
                account.id,
                balance_after=account.balance,
                grant_id=grant.id if grant is not None else None,
                business_unit_id=grant.business_unit_id if grant is not None else business_unit_id,
                **values,
            )
        ],
    )
    session.add(account)
