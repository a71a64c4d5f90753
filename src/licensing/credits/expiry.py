"""Expiry: credits stop being usable at ``expires_at``, whether or not the sweep has run.

Consumption never draws on a grant past its expiry (eligibility is checked against the moment);
the sweep, and every use case that touches an account, records one ``expire`` entry per grant
for what remained (the breakage), effective at the expiry instant.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.credits import ledger
from licensing.credits.kinds import LedgerKind
from licensing.credits.models import Grant
from licensing.credits.rollover import record_due_cuts, rollover_due
from licensing.db import Database
from licensing.db.bulk import reading
from licensing.db.repository import get_or_404, lock
from licensing.db.types import UTCDateTime
from licensing.events import record_event

SYSTEM = "system"


def expire_grant(
    session: Session, account: Account, grant: Grant, *, now: datetime, occurred_at: datetime | None = None
) -> None:
    """Write the breakage of one expired grant (the caller holds the account's lock), effective at
    the expiry instant unless ``occurred_at`` says otherwise (credits returned after expiry)."""
    breakage = grant.remaining
    if breakage <= 0:
        return
    ledger.move(
        session, account, grant, LedgerKind.EXPIRE, -breakage, source_type="grant",
        source_id=grant.id, actor=SYSTEM, occurred_at=occurred_at or grant.expires_at, recorded_at=now,
    )
    record_event(
        session, "credits.expired",
        {"account_id": str(account.id), "grant_id": str(grant.id), "credits": f"{breakage:.2f}",
         "expired_at": grant.expires_at.isoformat()},
        at=now,
    )


def record_due_expiries(session: Session, account: Account, *, now: datetime) -> int:
    """Record the expiry of every grant of the account that expired by ``now`` with credits left."""
    return record_due_expiries_of(session, {account.id: account}, now=now)


@lru_cache(maxsize=1)
def _anything_due():
    return select(Grant.id).where(
        Grant.account_id == bindparam("account_id"), Grant.expires_at <= bindparam("now", type_=UTCDateTime()), Grant.remaining > 0
    ).limit(1)


def record_due_expiries_of(session: Session, accounts: dict[int, Account], *, now: datetime) -> int:
    """``record_due_expiries`` for several accounts at once (the caller holds their locks).
    Due rollover cuts come first: they happened at their moments, before any later expiry."""
    for account in accounts.values():
        if rollover_due(account, now):
            record_due_cuts(session, account, now=now)
    if len(accounts) == 1:  # the common case, every booking: one cheap indexed look first
        [account_id] = accounts
        if reading(session).execute(_anything_due(), {"account_id": account_id, "now": now}).first() is None:
            return 0
    due = session.exec(
        select(Grant)
        .where(col(Grant.account_id).in_(list(accounts)), Grant.expires_at <= now, Grant.remaining > 0)
        .order_by(Grant.account_id, Grant.expires_at, Grant.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for grant in due:
        expire_grant(session, accounts[grant.account_id], grant, now=now)
    return len(due)


def settle_expiries(database: Database, account_id: str | int, *, now: datetime) -> Account:
    """Record the account's due expiries before its credits are read (SPEC 7): a cheap look in a
    read transaction, and a write transaction only when something is due. Returns the account."""
    with database.read() as session:
        account = get_or_404(session, Account, account_id, "account")
        due = rollover_due(account, now) or session.connection().execute(_anything_due(), {"account_id": account.id, "now": now}).first()
    if not due:
        return account
    with database.write() as session:
        account = lock(session, Account, account.id, "account")
        record_due_expiries(session, account, now=now)
        return account


def accounts_with_due_expiries(session: Session, *, now: datetime) -> list[int]:
    """Accounts with an expiry or a rollover cut due."""
    expiring = session.exec(select(Grant.account_id).where(col(Grant.expires_at) <= now, Grant.remaining > 0).distinct()).all()
    cutting = session.exec(select(Account.id).where(col(Account.rollover_due_at) <= now)).all()
    return sorted(set(expiring) | set(cutting))


def sweep_expiries(database: Database, *, now: datetime) -> int:
    """The expiry sweep (with the rollover cuts due): one small transaction per account.
    Returns the grants expired."""
    with database.read() as session:
        account_ids = accounts_with_due_expiries(session, now=now)
    expired = 0
    for account_id in account_ids:
        with database.write() as session:
            account = lock(session, Account, account_id, "account")
            expired += record_due_expiries(session, account, now=now)
    return expired
