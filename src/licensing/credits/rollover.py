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
after T still counts as remaining at T. A booking or hold for a moment past a cut that is not
due yet draws only on what the cut will leave (``future_cuts``).

10 credits a month, lifetime P3M, cap 5: February's grant cuts January's 10 to 5; March's
grant finds 5 + 10 and cuts 10 (January's 5, then 5 of February's): 5 + 10 = 15 remain.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.credits import ledger
from licensing.credits.kinds import LedgerKind
from licensing.credits.models import Grant
from licensing.money import ZERO

SYSTEM = "system"


def rollover_due(account: Account, now: datetime) -> bool:
    return account.rollover_due_at is not None and account.rollover_due_at <= now


def _earlier_grants(session: Session, account: Account, new: Grant, *, lock: bool):
    """The capped service's grants that the new grant's cap applies to, soonest-expiring first."""
    moment = new.valid_from
    statement = (
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
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.exec(statement).all()


def cuts_of(cap: Decimal, earlier: list[tuple[int, Decimal]]) -> list[tuple[int, Decimal]]:
    """The cut a cap makes: (grant id, credits) soonest-expiring first, from the (grant id,
    remaining) of the earlier grants in that order. Pure."""
    excess = sum((remaining for _id, remaining in earlier), ZERO) - cap
    cuts = []
    for grant_id, remaining in earlier:
        if excess <= 0:
            break
        cut = min(remaining, excess)
        if cut > 0:
            cuts.append((grant_id, cut))
            excess -= cut
    return cuts


def future_cuts(session: Session, account: Account, *, now: datetime, until: datetime) -> dict[int, Decimal]:
    """Credits that the caps pending between ``now`` and ``until`` will cut from each grant, as
    things stand: a booking for a later moment must not draw on credits cut before it (SPEC 3).
    Empty (and no query) when no cap is pending by ``until``."""
    if account.rollover_due_at is None or account.rollover_due_at > until:
        return {}
    pending = session.exec(
        select(Grant)
        .where(Grant.account_id == account.id, col(Grant.rollover_pending).is_(True), Grant.valid_from > now, Grant.valid_from <= until)
        .order_by(Grant.valid_from, Grant.id)
    ).all()
    cut: dict[int, Decimal] = {}
    for new in pending:
        earlier = [(grant.id, grant.remaining - cut.get(grant.id, ZERO)) for grant in _earlier_grants(session, account, new, lock=False)]
        for grant_id, credits in cuts_of(new.rollover_cap, [(grant_id, left) for grant_id, left in earlier if left > 0]):
            cut[grant_id] = cut.get(grant_id, ZERO) + credits
    return cut


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
        earlier = {grant.id: grant for grant in _earlier_grants(session, account, new, lock=True)}
        for grant_id, cut in cuts_of(new.rollover_cap, [(grant.id, grant.remaining) for grant in earlier.values()]):
            grant = earlier[grant_id]
            cut_total += cut
            ledger.move(
                session, account, grant, LedgerKind.ROLLOVER_CUT, -cut, source_type="grant", source_id=new.id,
                actor=SYSTEM, occurred_at=new.valid_from, recorded_at=now,
            )
        new.rollover_pending = False
        session.add(new)
    session.flush()
    account.rollover_due_at = session.exec(
        select(func.min(Grant.valid_from)).where(Grant.account_id == account.id, col(Grant.rollover_pending).is_(True))
    ).one()
    session.add(account)
    return cut_total
