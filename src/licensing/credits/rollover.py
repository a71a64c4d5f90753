"""Rollover caps (SPEC 3).

A service may cap how many of its credits roll over: ``max_rollover``. When a new period's
grant of that service becomes valid (its ``valid_from``, moment T), the credits still remaining
on the service's earlier grants that are still valid at T are cut down to the cap, the cut
taken soonest-expiring first and recorded as ``rollover_cut`` entries effective at T.

The cap is copied onto the grant when it is made (``Grant.rollover_cap``) and the grant stays
``rollover_pending`` until the cut is applied. Like expiry, the cut holds from T whether or not
the scheduler has run: every use case that reads or moves an account's credits first records
the cuts due (``Account.rollover_due_at`` says, without a query, whether any is due), and they
are recorded before due expiries, in the order of their moments, so that a grant that expired
after T still counts as remaining at T.

10 credits a month, lifetime P3M, cap 5: February's grant cuts January's 10 to 5; March's
grant finds 5 + 10 and cuts 10 (January's 5, then 5 of February's): 5 + 10 = 15 remain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.credits import ledger
from licensing.credits.models import Grant
from licensing.money import ZERO

SYSTEM = "system"


def rollover_due(account: Account, now: datetime) -> bool:
    return account.rollover_due_at is not None and account.rollover_due_at <= now


def record_due_cuts(session: Session, account: Account, *, now: datetime) -> int:
    """Apply every rollover cap of the account whose moment has come (the caller holds the
    account's lock). Returns the credits cut."""
    if not rollover_due(account, now):
        return 0
    cut_total = ZERO
    pending = session.exec(
        select(Grant)
        .where(Grant.account_id == account.id, col(Grant.rollover_pending).is_(True), Grant.valid_from <= now)
        .order_by(Grant.valid_from, Grant.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for new in pending:
        moment = new.valid_from
        earlier = session.exec(
            select(Grant)
            .where(
                Grant.account_id == account.id,
                Grant.contract_service_id == new.contract_service_id,
                Grant.id != new.id,
                Grant.valid_from < moment,
                or_(col(Grant.expires_at).is_(None), col(Grant.expires_at) > moment),
                Grant.remaining > 0,
            )
            .order_by(col(Grant.expires_at).is_(None), Grant.expires_at, Grant.valid_from, Grant.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        excess = sum((grant.remaining for grant in earlier), ZERO) - new.rollover_cap
        for grant in earlier:
            if excess <= 0:
                break
            cut = min(grant.remaining, excess)
            excess -= cut
            cut_total += cut
            grant.remaining -= cut
            grant.removed += cut
            session.add(grant)
            ledger.post(
                session, account, kind="rollover_cut", credits=-cut, grant=grant, source_type="grant", source_id=new.id,
                actor=SYSTEM, occurred_at=moment, recorded_at=now,
            )
        new.rollover_pending = False
        session.add(new)
    session.flush()
    account.rollover_due_at = session.exec(
        select(func.min(Grant.valid_from)).where(Grant.account_id == account.id, col(Grant.rollover_pending).is_(True))
    ).one()
    session.add(account)
    return cut_total
