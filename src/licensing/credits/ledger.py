"""The ledger: append-only movements of credits, each with the account's running balance.

``balance_after`` is the running total of the account's ledger in recording order: the
remaining credits of all its grants not yet expired (valid or pending), less debt. The account
row caches that total; it is locked by the caller before any entry is written.

Value: each entry against a grant also says by how much it changed the money value of the
grant's outstanding credits (``value``, signed, at the currency's minor unit). The outstanding
credits of a grant (remaining and held: held credits are promised, not used) are worth
``worth(grant, outstanding)`` = value x outstanding / credits, rounded half-up per grant; an
entry's value is the difference of that worth after and before it. So the values of a grant's
entries always add up to the worth of what it has outstanding, to the cent: the deferred
revenue of the journal (``books``) equals the liability report, and the revenue it recognises
(the values of consumptions, expiries, cuts) equals the revenue report.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from licensing.accounts.models import Account
from licensing.books.journal import record_ledger
from licensing.credits.kinds import COUNTER, LedgerKind
from licensing.credits.models import Grant, LedgerEntry
from licensing.db.bulk import insert_rows, update_rows
from licensing.money import minor_unit

ZERO = Decimal(0)
# Kinds that leave the outstanding credits of their grant as they are (held credits stay outstanding).
VALUE_NEUTRAL = frozenset({LedgerKind.HOLD, LedgerKind.HOLD_RELEASE})


class Valued(NamedTuple):
    """What the worth of a grant's credits depends on, for a grant known only as a row or a plan."""

    credits: Decimal
    value: Decimal
    currency: str


def worth(grant, outstanding: Decimal) -> Decimal:
    """The money value of ``outstanding`` credits of ``grant`` (anything with ``value``,
    ``credits`` and ``currency``): value x outstanding / credits, half-up at the currency's unit
    (both are never negative)."""
    places = minor_unit(grant.currency)
    # Exact rational arithmetic on the decimals' integer ratios (what Fraction does, without its
    # normalising gcd at every step: a billing run values every grant it makes).
    value_n, value_d = grant.value.as_integer_ratio()
    outstanding_n, outstanding_d = outstanding.as_integer_ratio()
    credits_n, credits_d = grant.credits.as_integer_ratio()
    numerator = value_n * outstanding_n * credits_d * 10**places
    denominator = value_d * outstanding_d * credits_n
    return Decimal((2 * numerator + denominator) // (2 * denominator)).scaleb(-places)


def value_moved(grant, outstanding: Decimal, kind: LedgerKind | str, credits: Decimal) -> Decimal:
    """The change of value of an entry of ``kind`` moving ``credits`` (signed) on ``grant`` whose
    outstanding credits (remaining + held) are ``outstanding`` before it."""
    if kind in VALUE_NEUTRAL or not credits:
        return ZERO
    return worth(grant, outstanding + credits) - worth(grant, outstanding)


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
    currency: str,
    value: Decimal = ZERO,
) -> dict[str, Any]:
    """A ledger entry as a row; ``balance_after`` is the account's running total after it;
    ``value`` the change of value it makes (``value_moved``), in ``currency``."""
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
        "value": value,
        "currency": currency,
    }


def append(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write entries made by ``entry_row``, in the order they were made; those that move value
    go to the journal (``books.journal``) at the end of the transaction."""
    if rows:
        record_ledger(session, rows)
        insert_rows(session, LedgerEntry.__table__, [_stored(row) for row in rows])


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    stored = dict(row)
    del stored["currency"]  # the grant's, and the account's: not a column of the ledger
    return stored


def store_balances(session: Session, balances: list[tuple[Account, Decimal]]) -> None:
    """Write the accounts' running balances with one plain multi-row UPDATE: cheaper than the
    ORM's flush of each account, and it may go into a pipeline, where the ORM's own update
    (which checks its row count) cannot. The accounts are left as if loaded with these values."""
    update_rows(session, Account.__table__, [{"id": account.id, "balance": balance} for account, balance in balances])
    for account, balance in balances:
        set_committed_value(account, "balance", balance)


def move(session: Session, account: Account, grant: Grant, kind: LedgerKind, credits: Decimal, **values: Any) -> Decimal:
    """The one way to move a grant's credits: ``credits`` (signed) into ``remaining`` and out of
    the counter of ``kind`` (``kinds.COUNTER``), and the ledger entry that records it, with the
    account's running balance. The caller holds the account's lock and the grant's row. Returns
    the entry's change of value (``value_moved``)."""
    value = value_moved(grant, grant.remaining + grant.held, kind, credits)
    for name, counter in moved(grant, kind, credits).items():
        setattr(grant, name, counter)
    session.add(grant)
    post(session, account, kind=kind.value, credits=credits, grant=grant, value=value, **values)
    return value


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
                currency=grant.currency if grant is not None else account.currency,
                **values,
            )
        ],
    )
    session.add(account)
