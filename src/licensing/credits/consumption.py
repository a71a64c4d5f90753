"""Consuming credits (SPEC 4).

Eligible grants are those valid at the consumption moment (``valid_from <= t < expires_at``) with
credits remaining, in the consumption's business unit or in no unit; a consumption without a
unit may use only unrestricted grants. They are drawn earliest ``expires_at`` first,
never-expiring last, ties by earliest ``valid_from`` then grant id. Each draw is a ledger entry.
There is no silent overdraft: too few credits refuses the whole consumption.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, literal_column, or_
from sqlmodel import Session, col, select

from licensing.accounts.models import Account, BusinessUnit, Member
from licensing.accounts.services import check_not_overdue
from licensing.books.journal import LOCK_DATE, known_lock_date, post_pending
from licensing.catalog.models import CreditPrice
from licensing.credits import ledger
from licensing.credits.balance import remaining_of
from licensing.credits.debt import change_debt, debts_of
from licensing.credits.expiry import expire_grant, record_due_expiries
from licensing.credits.kinds import LedgerKind
from licensing.credits.models import Consumption, Grant, LedgerEntry
from licensing.credits.rollover import future_cuts, rollover_due
from licensing.db import driver
from licensing.db.bulk import insert_row, pipelined, reading, update_rows
from licensing.db.repository import as_id, as_loaded, get_or_404, get_reference, loaded, lock
from licensing.db.types import UTCDateTime
from licensing.errors import (
    Conflict,
    InsufficientCredits,
    NotFound,
    UnknownReference,
    ValidationFailed,
)
from licensing.events import record_event
from licensing.money import MAX_LINE_CREDITS, ZERO, round_credits


@dataclass(frozen=True, slots=True)
class Draw:
    grant_id: int
    credits: Decimal


# A booking reads this many grants first: it usually needs one or two, and an account may
# hold thousands (the rest is read only when these do not cover the booking). Each row read is
# a dozen values converted in Python: 16 rows cost a booking 0.15 ms more than 4.
FIRST_READ = 4


@lru_cache(maxsize=8)
def _eligible_statement(with_unit: bool, with_due: bool = False, unit_only: bool = False, limited: bool = False):
    """Built once: the query runs for every booking. ``with_due`` adds the grants that expired by
    ``now`` with credits left; in expiry order they come first, so one query both tells whether
    expiries are due and, in the usual case that none are, streams the grants to draw on.
    ``unit_only`` keeps to the unit's own grants (a transfer out of a unit); ``limited`` reads
    the first ``FIRST_READ`` only."""
    if unit_only:
        unit_filter = Grant.business_unit_id == bindparam("unit_id")
    elif with_unit:
        unit_filter = or_(Grant.business_unit_id == bindparam("unit_id"), Grant.business_unit_id.is_(None))  # type: ignore[union-attr]
    else:
        unit_filter = Grant.business_unit_id.is_(None)  # type: ignore[union-attr]
    at = bindparam("at", type_=UTCDateTime())
    eligible = and_(
        Grant.valid_from <= at,
        or_(Grant.expires_at.is_(None), col(Grant.expires_at) > at),  # type: ignore[union-attr]
        unit_filter,
    )
    if with_due:
        eligible = or_(eligible, col(Grant.expires_at) <= bindparam("now", type_=UTCDateTime()))
    statement = (
        select(Grant.id, Grant.business_unit_id, Grant.remaining, Grant.used, Grant.expires_at, Grant.held, Grant.credits, Grant.value)
        # A literal 0 (not a parameter), so that the planner may use the partial index ix_grants_drawable.
        .where(Grant.account_id == bindparam("account_id"), col(Grant.remaining) > literal_column("0"), eligible)
        .order_by(col(Grant.expires_at).asc().nulls_last(), Grant.valid_from, Grant.id)
    )
    return statement.limit(FIRST_READ) if limited else statement


def eligible_grants(session: Session, account_id: int, business_unit_id: int | None, at: datetime, *, unit_only: bool = False):
    """Grants a consumption at ``at`` may draw on, in the order it draws on them, as rows of
    (id, business_unit_id, remaining, used): a consumption reads many grants and changes few.
    Core rows, read as the caller iterates: a consumption stops reading once it has its credits."""
    parameters = {"account_id": account_id, "at": at, "unit_id": business_unit_id}
    return reading(session).execute(_eligible_statement(business_unit_id is not None, unit_only=unit_only), parameters)


class Available(NamedTuple):
    """An eligible grant with what a booking may draw from it (less a cut to come)."""

    id: int
    business_unit_id: int | None
    remaining: Decimal
    used: Decimal
    expires_at: datetime | None
    held: Decimal
    credits: Decimal
    value: Decimal


def after_future_cuts(session: Session, account: Account, candidates, *, now: datetime, at: datetime) -> tuple[object, dict[int, Decimal]]:
    """The candidates less the rollover cuts that will happen between now and ``at``, and the
    stored remaining credits of the grants so reduced (empty when none is)."""
    if at <= now or account.rollover_due_at is None or account.rollover_due_at > at:
        return candidates, {}
    cuts = future_cuts(session, account, now=now, until=at)
    if not cuts:
        return candidates, {}
    rows = list(candidates)
    stored = {row.id: row.remaining for row in rows if row.id in cuts}
    reduced = [
        Available(row.id, row.business_unit_id, row.remaining - cuts.get(row.id, ZERO), row.used, row.expires_at, row.held, row.credits, row.value)
        for row in rows
    ]
    return [row for row in reduced if row.remaining > 0], stored


def refuse(
    session: Session, account: Account, amount: Decimal, available: Decimal, *, business_unit_id: int | None, at: datetime,
    now: datetime, unit_only: bool = False,
) -> InsufficientCredits:
    """The refusal of a draw, naming the pool asked (a business unit with the unrestricted
    credits, or the unrestricted pool alone) and what the account holds elsewhere, which this
    draw may not use (an account may show 114 remaining of which 20 are its unrestricted pool)."""
    if business_unit_id is None:
        pool = "the account's unrestricted pool (no business unit)"
    else:
        name = session.get(BusinessUnit, business_unit_id).name
        pool = f"business unit {name!r}" + ("" if unit_only else " and the account's unrestricted pool")
    held_elsewhere = remaining_of(session, [account.id], at, unexpired_at=max(at, now))[account.id] - available
    detail = f"{amount:.2f} credits asked for, {available:.2f} available in {pool}"
    if held_elsewhere > 0:
        detail += f"; the account's other pools hold {held_elsewhere:.2f} more, which this may not use"
    return InsufficientCredits(detail, credits_requested=f"{amount:.2f}", credits_available=f"{available:.2f}")


@dataclass(frozen=True, slots=True)
class DrawPlan:
    """Draws planned for an amount: (grant row, credits) soonest-expiring first; the credits
    ``available`` to it (when fewer than asked, the draws are all of them); and the stored
    ``remaining`` of the grants a rollover cut to come reduces (the counters the move starts from)."""

    draws: list[tuple[Any, Decimal]]
    available: Decimal
    stored: dict[int, Decimal]


def first_grants_read(account_id: int, business_unit_id: int | None, *, at: datetime, now: datetime, unit_only: bool = False):
    """The draw's first read (statement and parameters): the first ``FIRST_READ`` grants eligible
    at ``at``, after any that expired by ``now`` with credits left."""
    parameters = {"account_id": account_id, "at": at, "unit_id": business_unit_id, "now": now}
    return _eligible_statement(business_unit_id is not None, with_due=True, unit_only=unit_only, limited=True), parameters


def plan_draw(
    session: Session, account: Account, amount: Decimal, *, business_unit_id: int | None, at: datetime, now: datetime,
    unit_only: bool = False, short_ok: bool = False, first_grants: list | None = None,
) -> DrawPlan:
    """The one draw path of consumptions, holds, deductions and transfers (the caller holds the
    account's lock): record the expiries and rollover cuts due by ``now`` (SPEC 7), read the
    grants eligible at ``at`` soonest-expiring first (the first ``FIRST_READ``; all of them only
    when those do not cover ``amount``), less the cuts to come by ``at``, and plan. Too few
    credits: ``InsufficientCredits`` naming the pool, unless ``short_ok`` (an overdraft).
    ``first_grants``: the rows of ``first_grants_read`` if the caller read them with the lock."""
    # The account's lock (taken first by every use case that moves its credits) already keeps
    # these grants still; the moves lock the rows actually drawn from. Locking every eligible
    # row would write a lock into hundreds of rows per booking on PostgreSQL.
    if rollover_due(account, now):
        record_due_expiries(session, account, now=now)
        first_grants = None  # read before the cuts: read again
    if first_grants is None:
        statement, parameters = first_grants_read(account.id, business_unit_id, at=at, now=now, unit_only=unit_only)
        rows = driver.fetch(reading(session), statement, parameters)
    else:
        rows = first_grants
    if rows and rows[0].expires_at is not None and rows[0].expires_at <= now:
        # Due expiries come first in that order: record them, then read the grants again.
        record_due_expiries(session, account, now=now)
        rows = eligible_grants(session, account.id, business_unit_id, at, unit_only=unit_only).all()
    plan = _plan(session, account, rows, amount, now=now, at=at)
    if plan.available < amount and len(rows) == FIRST_READ:
        # The first grants do not cover it: read them all (the draws, or the refusal's figure).
        rows = eligible_grants(session, account.id, business_unit_id, at, unit_only=unit_only).all()
        plan = _plan(session, account, rows, amount, now=now, at=at)
    if plan.available < amount and not short_ok:
        raise refuse(session, account, amount, plan.available, business_unit_id=business_unit_id, at=at, now=now, unit_only=unit_only)
    return plan


def _plan(session: Session, account: Account, rows, amount: Decimal, *, now: datetime, at: datetime) -> DrawPlan:
    candidates, stored = after_future_cuts(session, account, rows, now=now, at=at)
    draws, available = plan_draws(candidates, amount)
    return DrawPlan(draws, available, stored)


def plan_draws(grants, credits: Decimal) -> tuple[list[tuple[object, Decimal]], Decimal]:
    """Take ``credits`` from ``grants`` in their order. Returns the draws and the credits
    available; when too few are available the draws are incomplete and must not be applied.
    Reading stops as soon as the credits are found."""
    draws = []
    left = credits
    available = ZERO
    for grant in grants:
        available += grant.remaining
        if left > 0:
            take = min(grant.remaining, left)
            draws.append((grant, take))
            left -= take
            if left == 0:
                return draws, available
    return draws, available


def resolve_credits(
    session: Session, credits: Decimal | None, credit_price_id: str | int | None, quantity: Decimal | None
) -> tuple[Decimal, CreditPrice | None]:
    """Credits asked for: given directly, or a credit-priced service x quantity (rounded half-up
    to two places: 'Meeting room, 2 credits per hour' x 1.5 hours = 3.00)."""
    if credit_price_id is not None:
        if credits is not None:
            raise ValidationFailed("give either credits or credit_price_id with quantity, not both", field="credits")
        if quantity is None:
            raise ValidationFailed("quantity is required with credit_price_id", field="quantity")
        price = get_reference(session, CreditPrice, credit_price_id, "credit_price_id")
        credits = round_credits(price.credits_per_unit * quantity)
        if credits <= 0:
            raise ValidationFailed("the consumption comes to zero credits", field="quantity")
        if credits > MAX_LINE_CREDITS:
            raise ValidationFailed(f"the consumption comes to {credits:,.2f} credits, more than {MAX_LINE_CREDITS:,}", field="quantity")
        return credits, price
    if credits is None:
        raise ValidationFailed("credits, or credit_price_id with quantity, is required", field="credits")
    return credits, None


def check_unit_and_member(session: Session, account: Account, business_unit_id, member_id) -> tuple[int | None, int | None]:
    unit_id = member = None
    if business_unit_id is not None:
        unit = get_reference(session, BusinessUnit, business_unit_id, "business_unit_id")
        if unit.account_id != account.id:
            raise UnknownReference(f"business unit {business_unit_id} is not a unit of account {account.id}", field="business_unit_id")
        unit_id = unit.id
    if member_id is not None:
        found = get_reference(session, Member, member_id, "member_id")
        if found.account_id != account.id:
            raise UnknownReference(f"member {member_id} is not a member of account {account.id}", field="member_id")
        member = found.id
    return unit_id, member


@lru_cache(maxsize=2)
def _lock_statement(with_consumption_id: bool = False):
    """The account locked, with the owner of the business unit asked for (NULL for none) and the
    books' lock date, which the booking's journal entry needs at the end of the transaction;
    ``with_consumption_id`` (PostgreSQL): and the id of the booking's consumption, from its
    sequence, so that its insert can go into the booking's pipeline."""
    accounts = Account.__table__
    owner = select(BusinessUnit.account_id).where(BusinessUnit.id == bindparam("unit_id")).scalar_subquery()
    columns = [accounts, owner.label("unit_account_id"), LOCK_DATE.scalar_subquery().label("lock_date")]
    if with_consumption_id:
        columns.append(literal_column(f"nextval(pg_get_serial_sequence('{Consumption.__tablename__}', 'id'))").label("consumption_id"))
    return select(*columns).where(accounts.c.id == bindparam("id")).with_for_update(of=accounts)


class Locked(NamedTuple):
    account: Account
    unit_id: int | None
    consumption_id: int | None  # PostgreSQL, when asked for; None on SQLite (the insert gives it)
    first_grants: list | None  # with ``draw_at``: the rows of ``first_grants_read``


def lock_account_and_unit(session: Session, account_id: str | int, business_unit_id: str | int | None, *,
                          consumption_id: bool = False, draw_at: datetime | None = None, now: datetime | None = None) -> Locked:
    """Lock the account, check that the business unit (if any) is one of its units, read the
    books' lock date for the journal and, with ``consumption_id`` on PostgreSQL, take the id of
    the consumption to come, in one round trip: every booking does this first (on the driver,
    the account made the session's ORM object by ``repository.loaded``). With ``draw_at``, the
    draw's first grants are read right after the lock, in the same round trip inside a held
    pipeline (``driver.hold_pipeline``): the server runs the read once the lock is granted, so it
    sees the grants as the booking before this one left them."""
    account_key = as_id(account_id, "account", NotFound)
    unit_key = None if business_unit_id is None else as_id(business_unit_id, "business_unit_id", UnknownReference)
    connection = reading(session)
    reserve = consumption_id and connection.dialect.name == "postgresql"
    reads = [(_lock_statement(reserve), {"id": account_key, "unit_id": unit_key})]
    if draw_at is not None:
        reads.append(first_grants_read(account_key, unit_key, at=draw_at, now=now))
    rows, *first = driver.fetch_together(connection, reads)
    if not rows:
        raise NotFound(f"account {account_id} does not exist")
    row = rows[0]
    account, owner = loaded(session, Account, row), row.unit_account_id
    known_lock_date(session, row.lock_date)
    reserved = row.consumption_id if reserve else None
    grants = first[0] if first else None
    if unit_key is None:
        return Locked(account, None, reserved, grants)
    if owner is None:
        raise UnknownReference(f"business_unit_id {business_unit_id} does not exist", field="business_unit_id")
    if owner != account.id:
        raise UnknownReference(f"business unit {business_unit_id} is not a unit of account {account.id}", field="business_unit_id")
    return Locked(account, unit_key, reserved, grants)


def consume(
    session: Session,
    account_id: str | int,
    *,
    credits: Decimal | None = None,
    credit_price_id: str | int | None = None,
    quantity: Decimal | None = None,
    business_unit_id: str | int | None = None,
    member_id: str | int | None = None,
    description: str | None = None,
    reference: str | None = None,
    occurred_at: datetime | None = None,
    allow_overdraft: bool = False,
    now: datetime,
    actor: str,
) -> tuple[Consumption, list[Draw]]:
    """Draw credits for a booking. Refused, with nothing written, when too few are eligible,
    unless ``allow_overdraft``: then it draws what is available and records the shortfall as
    debt of the consumption's place (its business unit, or the account's pool)."""
    moment = occurred_at or now
    driver.hold_pipeline(session)  # PostgreSQL: two waits on the server, the second with the COMMIT
    account, unit_id, consumption_id, first_grants = lock_account_and_unit(
        session, account_id, business_unit_id, consumption_id=True, draw_at=moment, now=now,
    )
    check_not_overdue(account, now)
    amount, price = resolve_credits(session, credits, credit_price_id, quantity)
    if amount <= 0:
        raise ValidationFailed("credits must be greater than zero", field="credits")
    _unit, member = check_unit_and_member(session, account, None, member_id)
    plan = plan_draw(session, account, amount, business_unit_id=unit_id, at=moment, now=now, short_ok=allow_overdraft,
                     first_grants=first_grants)
    planned, stored = plan.draws, plan.stored
    shortfall = max(amount - plan.available, ZERO)

    values = {
        "account_id": account.id, "business_unit_id": unit_id, "member_id": member,
        "credit_price_id": price.id if price else None, "quantity": quantity if price else None,
        "credits": amount, "description": description, "reference": reference, "occurred_at": moment,
        "created_at": now, "reversed_at": None, "actor": actor, "debt": shortfall, "hold_id": None,
    }
    if shortfall > 0:
        change_debt(session, account, unit_id, shortfall)  # ORM changes: flushed at commit, after the pipeline
    with pipelined(session):
        consumption_id = insert_row(session, Consumption.__table__, values, id_=consumption_id)
        consumption = as_loaded(Consumption, values | {"id": consumption_id})
        update_rows(session, Grant.__table__, [
            {"id": grant.id} | ledger.moved(_Counters(stored.get(grant.id, grant.remaining), grant.used), LedgerKind.CONSUME, -take)
            for grant, take in planned
        ])
        entries = []
        balance = account.balance
        currency = account.currency
        for grant, take in planned:
            balance -= take
            valued = ledger.Valued(grant.credits, grant.value, currency)
            # The draw takes effect when it is recorded (like a hold): the credits are promised from
            # now on, whichever moment the booking is for (docs/decisions.md).
            entries.append(ledger.entry_row(
                account.id, balance_after=balance, kind="consume", credits=-take, grant_id=grant.id,
                business_unit_id=grant.business_unit_id, source_type="consumption", source_id=consumption.id,
                actor=actor, occurred_at=now, recorded_at=now, currency=currency,
                value=ledger.value_moved(valued, stored.get(grant.id, grant.remaining) + grant.held, LedgerKind.CONSUME, -take),
            ))
        if shortfall > 0:
            balance -= shortfall
            entries.append(ledger.entry_row(
                account.id, balance_after=balance, kind="debt", credits=-shortfall, grant_id=None,
                business_unit_id=unit_id, source_type="consumption", source_id=consumption.id,
                actor=actor, occurred_at=now, recorded_at=now, currency=currency,
            ))
        ledger.append(session, entries)
        ledger.store_balances(session, [(account, balance)])
        draws = [Draw(grant.id, take) for grant, take in planned]
        consumed_event(session, account, consumption, draws, now=now)
        post_pending(session)  # the journal entry in the same round trip, not at the commit
    return consumption, draws


class _Counters(NamedTuple):
    """The counters a booking moves, as the grant stands (before a cut to come)."""

    remaining: Decimal
    used: Decimal


def consumed_event(session: Session, account: Account, consumption: Consumption, draws: list[Draw], *, now: datetime) -> None:
    record_event(
        session, "credits.consumed",
        {"account_id": str(account.id), "consumption_id": str(consumption.id), "credits": f"{consumption.credits:.2f}",
         "debt": f"{consumption.debt:.2f}", "draws": [{"grant_id": str(d.grant_id), "credits": f"{d.credits:.2f}"} for d in draws]},
        at=now,
    )


def draws_of(session: Session, consumption_id: int) -> list[Draw]:
    entries = session.exec(
        select(LedgerEntry)
        .where(LedgerEntry.source_type == "consumption", LedgerEntry.source_id == str(consumption_id), LedgerEntry.kind == "consume")
        .order_by(LedgerEntry.id)
    ).all()
    return [Draw(entry.grant_id, -entry.credits) for entry in entries]


def reverse_consumption(session: Session, consumption_id: str | int, *, now: datetime, actor: str) -> tuple[Consumption, list[Draw]]:
    """Return a consumption's credits to the very grants they came from.

    Credits returned to a grant that has expired by now expire at once, recorded as such.
    Reversing a reversed consumption returns it unchanged.
    """
    consumption = get_or_404(session, Consumption, consumption_id, "consumption")
    account = lock(session, Account, consumption.account_id, "account")
    consumption = lock(session, Consumption, consumption.id, "consumption")
    draws = draws_of(session, consumption.id)
    if consumption.reversed_at is not None:
        return consumption, draws
    record_due_expiries(session, account, now=now)
    if consumption.debt > 0:
        owed = debts_of(session, account).get(consumption.business_unit_id, ZERO)
        if owed < consumption.debt:
            raise Conflict(
                f"consumption {consumption.id} overdrew {consumption.debt:.2f} credits and a later grant has already settled "
                f"{consumption.debt - owed:.2f} of them: correct it with an adjustment",
                debt=f"{consumption.debt:.2f}", debt_outstanding=f"{owed:.2f}",
            )
        ledger.post(
            session, account, kind="debt", credits=consumption.debt, business_unit_id=consumption.business_unit_id,
            source_type="consumption", source_id=consumption.id, actor=actor, occurred_at=now, recorded_at=now,
        )
        change_debt(session, account, consumption.business_unit_id, -consumption.debt)
    for draw in draws:
        grant = lock(session, Grant, draw.grant_id, "grant")
        ledger.move(
            session, account, grant, LedgerKind.CONSUME_REVERSAL, draw.credits,
            source_type="consumption", source_id=consumption.id, actor=actor, occurred_at=now, recorded_at=now,
        )
        if grant.expires_at is not None and grant.expires_at <= now:
            expire_grant(session, account, grant, now=now, occurred_at=now)
    consumption.reversed_at = now
    session.add(consumption)
    record_event(
        session, "credits.reversed",
        {"account_id": str(account.id), "consumption_id": str(consumption.id), "credits": f"{consumption.credits:.2f}"},
        at=now,
    )
    return consumption, draws
