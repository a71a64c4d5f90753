"""The credit summary of an account at a moment (SPEC 7).

The summary is defined as a fold over the ledger: every entry effective at or before ``at``
(``occurred_at <= at``), grouped by grant, over the grants valid at ``at``. Per grant:

    granted = remaining + used + held + removed       (for a grant valid at ``at``)

where ``used`` counts consumptions, deductions and debt settlements net of reversals, ``held`` open holds, and
``removed`` credits taken back, cut or transferred out. Grants not yet valid are ``pending``;
grants past their expiry are not counted at all.

The grants' counters cache that fold, so when no entry of the account is effective after ``at``
(the usual case, ``at`` = now) the summary reads the grants alone and never scans the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from licensing.accounts.models import Account, BusinessUnit
from licensing.credits.kinds import CREATING, kinds_moving
from licensing.credits.models import Grant, LedgerEntry
from licensing.credits.rollover import future_cuts
from licensing.db import Database
from licensing.db.bulk import reading
from licensing.db.driver import fetch_one_autocommit
from licensing.money import ZERO

EXPIRING_WINDOW = timedelta(days=30)

# Which counter each kind of entry moves: the table of ``credits.kinds``.
USED_KINDS = kinds_moving("used")
HELD_KINDS = kinds_moving("held")
REMOVED_KINDS = kinds_moving("removed")
EXPIRED_KINDS = kinds_moving("expired")
CREATED_KINDS = frozenset(kind.value for kind in CREATING)


@dataclass(slots=True)
class GrantState:
    """One grant as the ledger stood at a moment."""

    grant_id: int
    business_unit_id: int | None
    valid_from: datetime
    expires_at: datetime | None
    credits: Decimal = ZERO
    used: Decimal = ZERO
    held: Decimal = ZERO
    removed: Decimal = ZERO
    expired: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return self.credits - self.used - self.held - self.removed - self.expired


@dataclass(slots=True)
class Figures:
    granted: Decimal = ZERO
    remaining: Decimal = ZERO
    used: Decimal = ZERO
    held: Decimal = ZERO
    removed: Decimal = ZERO
    debt: Decimal = ZERO

    def add(self, state: GrantState) -> None:
        self.granted += state.credits
        self.remaining += state.remaining
        self.used += state.used
        self.held += state.held
        self.removed += state.removed


@dataclass(slots=True)
class Summary:
    account_id: int
    at: datetime
    total: Figures
    unrestricted: Figures
    business_units: list[tuple[int, str, Figures]]
    expiring: list[tuple[Decimal, datetime]]
    pending: list[tuple[int, Decimal, datetime]] = field(default_factory=list)


def fold(entries: Iterable[LedgerEntry], grants: dict[int, Grant], at: datetime) -> dict[int, GrantState]:
    """Each grant's state at ``at`` from the ledger alone (entries with ``occurred_at <= at``)."""
    states: dict[int, GrantState] = {}
    for entry in entries:
        if entry.occurred_at > at or entry.grant_id is None:
            continue
        grant = grants[entry.grant_id]
        state = states.get(entry.grant_id)
        if state is None:
            state = states[entry.grant_id] = GrantState(entry.grant_id, grant.business_unit_id, grant.valid_from, grant.expires_at)
        if entry.kind in CREATED_KINDS:
            state.credits += entry.credits
        elif entry.kind in USED_KINDS:
            state.used -= entry.credits
        elif entry.kind in HELD_KINDS:
            state.held -= entry.credits
        elif entry.kind in REMOVED_KINDS:
            state.removed -= entry.credits
        elif entry.kind in EXPIRED_KINDS:
            state.expired -= entry.credits
    return states


def summarise(
    account_id: int, states: Iterable[GrantState], units: dict[int, str], at: datetime, debts: dict[int | None, Decimal] | None = None
) -> Summary:
    """Aggregate grant states into the summary: pure. ``debts`` is the debt of each place
    (``None``: the unrestricted pool)."""
    debts = debts or {}
    total, unrestricted = Figures(debt=sum(debts.values(), ZERO)), Figures(debt=debts.get(None, ZERO))
    per_unit: dict[int, Figures] = {unit_id: Figures(debt=debts.get(unit_id, ZERO)) for unit_id in units}
    expiring: dict[datetime, Decimal] = defaultdict(lambda: ZERO)
    pending = []
    horizon = at + EXPIRING_WINDOW
    for state in states:
        if state.expires_at is not None and state.expires_at <= at:
            continue
        if state.valid_from > at:
            if state.remaining > 0:
                pending.append((state.grant_id, state.remaining, state.valid_from))
            continue
        total.add(state)
        (unrestricted if state.business_unit_id is None else per_unit.setdefault(state.business_unit_id, Figures())).add(state)
        if state.expires_at is not None and state.expires_at <= horizon and state.remaining > 0:
            expiring[state.expires_at] += state.remaining
    return Summary(
        account_id=account_id,
        at=at,
        total=total,
        unrestricted=unrestricted,
        business_units=[(unit_id, units.get(unit_id, ""), figures) for unit_id, figures in sorted(per_unit.items())],
        expiring=sorted(((credits, instant) for instant, credits in expiring.items()), key=lambda item: item[1]),
        pending=sorted(pending, key=lambda item: (item[2], item[0])),
    )


def credit_summary(session: Session, account: Account, at: datetime, *, now: datetime | None = None) -> Summary:
    """The summary at ``at``: from the grants' counters when nothing in the ledger is effective
    after ``at``, else from the fold over the ledger. For a moment past ``now`` the rollover
    cuts pending between the two count as removed, as expiries do (SPEC 3: a cut holds from its
    moment, whether or not it has been recorded)."""
    cuts = future_cuts(session, account, now=now, until=at) if now is not None and at > now else {}
    units, unit_debts = {}, {}
    unit_rows = session.exec(select(BusinessUnit.id, BusinessUnit.name, BusinessUnit.debt).where(BusinessUnit.account_id == account.id))
    for unit_id, name, debt in unit_rows.all():
        units[unit_id] = name
        if debt:
            unit_debts[unit_id] = debt
    latest = session.exec(select(func.max(LedgerEntry.occurred_at)).where(LedgerEntry.account_id == account.id)).one()
    if latest is None or latest <= at:
        grants = session.exec(
            select(
                Grant.id, Grant.business_unit_id, Grant.valid_from, Grant.expires_at, Grant.credits, Grant.used,
                Grant.held, Grant.removed, Grant.expired,
            ).where(
                Grant.account_id == account.id,
                or_(Grant.expires_at.is_(None), col(Grant.expires_at) > at),  # type: ignore[union-attr]
                Grant.created_at <= at,
            )
        ).all()
        debts = unit_debts | {None: account.debt - sum(unit_debts.values(), ZERO)}
        return summarise(account.id, with_cuts((GrantState(*grant) for grant in grants), cuts), units, at, debts)
    return summary_from_ledger(session, account, at, units, cuts=cuts)


def with_cuts(states: Iterable[GrantState], cuts: dict[int, Decimal]) -> Iterable[GrantState]:
    """The grant states with the credits of pending rollover cuts moved from remaining to removed."""
    for state in states:
        cut = cuts.get(state.grant_id)
        if cut:
            state.removed += cut
        yield state


def summary_from_ledger(
    session: Session, account: Account, at: datetime, units: dict[int, str] | None = None, *, cuts: dict[int, Decimal] | None = None
) -> Summary:
    """The summary recomputed from the ledger alone (the definition the cache must equal), less
    the ``cuts`` of rollover caps pending by ``at`` that the ledger does not hold yet."""
    if units is None:
        units = dict(session.exec(select(BusinessUnit.id, BusinessUnit.name).where(BusinessUnit.account_id == account.id)).all())
    grants = {grant.id: grant for grant in session.exec(select(Grant).where(Grant.account_id == account.id)).all()}
    entries = session.exec(
        select(LedgerEntry).where(LedgerEntry.account_id == account.id, LedgerEntry.occurred_at <= at).order_by(LedgerEntry.id)
    ).all()
    states = with_cuts(fold(entries, grants, at).values(), cuts or {})
    return summarise(account.id, states, units, at, fold_debts(entries, at))


def fold_debts(entries: Iterable[LedgerEntry], at: datetime) -> dict[int | None, Decimal]:
    """The debt of each place at ``at`` from the ledger alone: a ``debt`` entry of -x owes x more
    (a positive one, from a reversal, owes less); a ``debt_settlement`` entry of -x owes x less."""
    debts: dict[int | None, Decimal] = defaultdict(lambda: ZERO)
    for entry in entries:
        if entry.occurred_at > at:
            continue
        if entry.kind == "debt":
            debts[entry.business_unit_id] -= entry.credits
        elif entry.kind == "debt_settlement":
            debts[entry.business_unit_id] += entry.credits
    return dict(debts)


def _remaining_where(grants):
    """The grants that count in the credits remaining at ``at``: valid then, not expired by
    ``unexpired_at``, with credits left (``remaining > 0`` lets the database sum from the
    partial index of drawable grants alone: it ends with ``remaining``)."""
    return (
        grants.remaining > 0, grants.valid_from <= bindparam("at"),
        or_(grants.expires_at.is_(None), grants.expires_at > bindparam("unexpired_at")),
    )


def _remaining_statement():
    """The credits remaining per account, for ``remaining_of``: built once, not at every call
    (building it cost more than running it)."""
    grants = Grant.__table__.c
    return (
        sa_select(grants.account_id, func.sum(grants.remaining))
        .where(grants.account_id.in_(bindparam("ids", expanding=True)), *_remaining_where(grants))
        .group_by(grants.account_id)
    )


def _account_statement():
    """One account's row with its credits remaining (``remaining_credits``, NULL for none), in one
    statement: read outside a transaction, one statement sees one state of the database."""
    accounts, grants = Account.__table__.c, Grant.__table__.c
    remaining = sa_select(func.sum(grants.remaining)).where(grants.account_id == accounts.id, *_remaining_where(grants)).scalar_subquery()
    return sa_select(*accounts, remaining.label("remaining_credits")).where(accounts.id == bindparam("id"))


_REMAINING = _remaining_statement()
_ACCOUNT = _account_statement()


def account_with_remaining(database: Database, account_id: int, at: datetime):
    """The account's row (its columns as attributes) and ``remaining_credits`` at ``at``, or None:
    what ``GET /accounts/{id}`` shows, read in one statement on a pooled connection
    (``db.driver``). Rollover cuts due by ``at`` must be recorded first (the caller checks
    ``rollover_due`` on the row, and reads again after recording them)."""
    row = fetch_one_autocommit(database.reader, _ACCOUNT, {"id": account_id, "at": at, "unexpired_at": at})
    if row is None:
        return None
    return row._replace(remaining_credits=row.remaining_credits or ZERO)


def remaining_of(session: Session, account_ids: list[int], at: datetime, *, unexpired_at: datetime | None = None) -> dict[int, Decimal]:
    """The credits remaining at ``at`` of each account (grants valid then; the summary's
    ``remaining``, for a list of accounts in one query). Due expiries and rollover cuts must be
    recorded first (``settle_expiries``); grants expired by ``unexpired_at`` (default ``at``) do not
    count either way."""
    unexpired_at = unexpired_at or at
    if not account_ids:
        return {}
    # Core on the session's connection (no ORM rows to build), one statement built once.
    rows = reading(session).execute(_REMAINING, {"ids": list(account_ids), "at": at, "unexpired_at": unexpired_at}).all()
    sums = dict(rows)  # SUM keeps the column's type: exact Decimals
    return {account_id: sums.get(account_id) or ZERO for account_id in account_ids}
