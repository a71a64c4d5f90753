"""Holds: credits reserved for a booking made ahead (SPEC 4).

A hold draws, in consumption order, from the grants that will be valid at the event's moment,
and records ``hold`` entries: the credits leave ``remaining`` for ``held`` and nothing else can
use them. Capturing the hold (the event happened) turns it into a consumption that keeps those
very draws: per draw a ``hold_release`` and a ``consume`` entry, no second deduction. Releasing
it (the booking was cancelled) returns them (``hold_release`` entries); credits returned to a
grant that has expired by then expire at once. A hold neither captured nor released by its
deadline is settled as the operator's setting ``LICENSING_HOLD_DEADLINE_POLICY`` says
(``release``, the default, or ``capture``). Hold and release entries take effect when made.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.accounts.services import check_not_overdue
from licensing.config import Settings, get_settings
from licensing.credits import ledger
from licensing.credits.consumption import (
    Draw,
    check_unit_and_member,
    consumed_event,
    plan_draw,
    resolve_credits,
)
from licensing.credits.expiry import expire_grant, record_due_expiries
from licensing.credits.kinds import LedgerKind
from licensing.credits.models import Consumption, Grant, Hold, LedgerEntry
from licensing.db import Database
from licensing.db.bulk import insert_rows
from licensing.db.repository import get_or_404, lock
from licensing.errors import HoldNotOpen, ValidationFailed
from licensing.events import record_event

SYSTEM = "system"


def hold_draws(session: Session, hold_id: int) -> list[Draw]:
    entries = session.exec(
        select(LedgerEntry.grant_id, LedgerEntry.credits)
        .where(LedgerEntry.source_type == "hold", LedgerEntry.source_id == str(hold_id), LedgerEntry.kind == "hold")
        .order_by(LedgerEntry.id)
    ).all()
    return [Draw(grant_id, -credits) for grant_id, credits in entries]


def place_hold(
    session: Session,
    account_id: str | int,
    *,
    event_at: datetime,
    credits: Decimal | None = None,
    credit_price_id: str | int | None = None,
    quantity: Decimal | None = None,
    business_unit_id: str | int | None = None,
    member_id: str | int | None = None,
    description: str | None = None,
    reference: str | None = None,
    deadline: datetime | None = None,
    now: datetime,
    actor: str,
    settings: Settings | None = None,
) -> tuple[Hold, list[Draw]]:
    """Reserve credits for an event at ``event_at``. Refused, with nothing written, when too few
    credits will be eligible at that moment."""
    settings = settings or get_settings()
    account = lock(session, Account, account_id, "account")
    check_not_overdue(account, now, settings)
    amount, price = resolve_credits(session, credits, credit_price_id, quantity)
    if amount <= 0:
        raise ValidationFailed("credits must be greater than zero", field="credits")
    unit_id, member = check_unit_and_member(session, account, business_unit_id, member_id)
    deadline = deadline or event_at + timedelta(hours=settings.hold_deadline_hours)
    if deadline < event_at:
        raise ValidationFailed("deadline is before event_at", field="deadline")
    planned = plan_draw(session, account, amount, business_unit_id=unit_id, at=event_at, now=now).draws
    values = {
        "account_id": account.id, "business_unit_id": unit_id, "member_id": member,
        "credit_price_id": price.id if price else None, "quantity": quantity if price else None, "credits": amount,
        "description": description, "reference": reference, "event_at": event_at, "deadline": deadline,
        "status": "open", "consumption_id": None, "created_at": now, "closed_at": None, "actor": actor,
    }
    [hold_id] = insert_rows(session, Hold.__table__, [values], return_ids=True)
    for row, take in planned:
        grant = lock(session, Grant, row.id, "grant")
        ledger.move(
            session, account, grant, LedgerKind.HOLD, -take, source_type="hold", source_id=hold_id,
            actor=actor, occurred_at=now, recorded_at=now,
        )
    session.flush()
    return session.get(Hold, hold_id), [Draw(row.id, take) for row, take in planned]


def capture_hold(session: Session, hold_id: str | int, *, now: datetime, actor: str) -> tuple[Hold, list[Draw]]:
    """The event happened: the hold becomes a consumption at ``event_at`` with the same draws.
    Capturing a captured hold returns it unchanged; a released one cannot be captured."""
    hold, account = _lock_hold(session, hold_id)
    draws = hold_draws(session, hold.id)
    if hold.status == "captured":
        return hold, draws
    if hold.status != "open":
        raise HoldNotOpen(f"hold {hold.id} is {hold.status} and cannot be captured", hold_status=hold.status)
    record_due_expiries(session, account, now=now)
    values = {
        "account_id": account.id, "business_unit_id": hold.business_unit_id, "member_id": hold.member_id,
        "credit_price_id": hold.credit_price_id, "quantity": hold.quantity, "credits": hold.credits,
        "description": hold.description, "reference": hold.reference, "occurred_at": hold.event_at,
        "created_at": now, "reversed_at": None, "actor": actor, "debt": 0, "hold_id": hold.id,
    }
    [consumption_id] = insert_rows(session, Consumption.__table__, [values], return_ids=True)
    for draw in draws:
        grant = lock(session, Grant, draw.grant_id, "grant")
        # The held credits become used: released from the hold and consumed, in two entries.
        ledger.move(
            session, account, grant, LedgerKind.HOLD_RELEASE, draw.credits, source_type="hold", source_id=hold.id,
            actor=actor, occurred_at=now, recorded_at=now,
        )
        ledger.move(
            session, account, grant, LedgerKind.CONSUME, -draw.credits, source_type="consumption",
            source_id=consumption_id, actor=actor, occurred_at=now, recorded_at=now,
        )
    hold.status, hold.consumption_id, hold.closed_at = "captured", consumption_id, now
    session.add(hold)
    session.flush()
    consumed_event(session, account, session.get(Consumption, consumption_id), draws, now=now)
    return hold, draws


def release_hold(session: Session, hold_id: str | int, *, now: datetime, actor: str) -> tuple[Hold, list[Draw]]:
    """The booking was cancelled: the held credits go back to their grants (and expire at once
    where the grant has expired). Releasing a released hold returns it unchanged."""
    hold, account = _lock_hold(session, hold_id)
    draws = hold_draws(session, hold.id)
    if hold.status == "released":
        return hold, draws
    if hold.status != "open":
        raise HoldNotOpen(f"hold {hold.id} is {hold.status} and cannot be released", hold_status=hold.status)
    record_due_expiries(session, account, now=now)
    for draw in draws:
        grant = lock(session, Grant, draw.grant_id, "grant")
        ledger.move(
            session, account, grant, LedgerKind.HOLD_RELEASE, draw.credits, source_type="hold", source_id=hold.id,
            actor=actor, occurred_at=now, recorded_at=now,
        )
        if grant.expires_at is not None and grant.expires_at <= now:
            expire_grant(session, account, grant, now=now, occurred_at=now)
    hold.status, hold.closed_at = "released", now
    session.add(hold)
    record_event(session, "credits.reversed", {"account_id": str(account.id), "hold_id": str(hold.id), "credits": f"{hold.credits:.2f}"}, at=now)
    session.flush()
    return hold, draws


def _lock_hold(session: Session, hold_id: str | int) -> tuple[Hold, Account]:
    hold = get_or_404(session, Hold, hold_id, "hold")
    account = lock(session, Account, hold.account_id, "account")
    return lock(session, Hold, hold.id, "hold"), account


def settle_hold_deadlines(database: Database, *, now: datetime, settings: Settings | None = None) -> int:
    """Capture or release (as the operator's setting says) every open hold past its deadline,
    one transaction per hold. Returns how many were settled."""
    settings = settings or get_settings()
    with database.read() as session:
        due = session.exec(select(Hold.id).where(Hold.status == "open", col(Hold.deadline) <= now).order_by(Hold.id)).all()
    settle = capture_hold if settings.hold_deadline_policy == "capture" else release_hold
    for hold_id in due:
        with database.write() as session:
            settle(session, hold_id, now=now, actor=SYSTEM)
    return len(due)
