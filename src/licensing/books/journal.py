"""Posting to the journal (SPEC 11): one balanced entry per financial event, in the event's
transaction.

Two ways in, one writer (``post``):

* the parts that make invoices, credit notes and payments build their entries (``NewEntry``)
  and post them at once;
* every ledger entry that moves the value of credits (a consumption and its reversal, a
  deduction, a debt settled, an expiry, a rollover cut) is handed over by ``credits.ledger`` as
  it is written (``record_ledger``) and posted when the transaction is about to commit: one
  entry per event however many grants it drew on.

The lock date: an entry whose day is on or before it posts on the day it is made instead (a
correction made later posts in the open period); an entry whose day was given by the user (a
payment's ``received_at``), or made on a locked day, is refused (409 ``period_locked``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session

from licensing.books.models import BooksSettings, JournalEntry, JournalPosting
from licensing.clock import local_date
from licensing.config import get_settings
from licensing.db import before_commit, driver
from licensing.db.bulk import insert_with_children, reading
from licensing.errors import LicensingError

ZERO = Decimal(0)


class PeriodLocked(LicensingError):
    code = "period_locked"
    title = "Period locked"


@dataclass(slots=True)
class NewEntry:
    """An entry to post: signed amounts per (role, tax rate), debits positive."""

    event: str
    day: date  # the event's day (operator's zone)
    made: date  # the day it is made
    currency: str
    source_type: str
    source_id: str
    description: str
    account_id: int | None = None
    document: str | None = None
    strict: bool = False  # ``day`` was given by the user: refuse rather than move it
    amounts: dict[tuple[str, Decimal | None], Decimal] = field(default_factory=dict)

    def debit(self, role: str, amount: Decimal, tax_rate: Decimal | None = None) -> NewEntry:
        key = (role, tax_rate)
        self.amounts[key] = self.amounts.get(key, ZERO) + amount
        return self

    def credit(self, role: str, amount: Decimal, tax_rate: Decimal | None = None) -> NewEntry:
        return self.debit(role, -amount, tax_rate)


def lock_date(session: Session) -> date | None:
    """The books' lock date, if one is set (read by every posting: one prebuilt statement, no
    ORM object), or as read earlier in this transaction with the row it locked first
    (``known_lock_date``: a booking reads it with its account, one round trip less)."""
    known = session.info.pop(_KNOWN_LOCK_DATE, _UNKNOWN)
    if known is not _UNKNOWN:
        return known
    rows = driver.fetch(reading(session), LOCK_DATE, {})
    return rows[0].lock_date if rows else None


def known_lock_date(session: Session, value: date | None) -> None:
    """The lock date as read in this transaction by another statement (``LOCK_DATE`` as a scalar
    subquery of a booking's account lock), for its next posting: the lock date as it stood a few
    milliseconds before the posting; one set in between applies from the next posting on, as
    it would to a booking committed a moment earlier."""
    session.info[_KNOWN_LOCK_DATE] = value


LOCK_DATE = sa_select(BooksSettings.__table__.c.lock_date).where(BooksSettings.__table__.c.id == 1)
_KNOWN_LOCK_DATE = "licensing.journal.lock_date"
_UNKNOWN = object()


def post(session: Session, entries: list[NewEntry], *, at: datetime, lock: bool = True) -> None:
    """Write ``entries`` (those with nothing to post are skipped). Each must balance. ``lock``:
    keep to the lock date (off only to rebuild the journal of what happened before it existed)."""
    entries = [entry for entry in entries if any(entry.amounts.values())]
    if not entries:
        return
    locked = lock_date(session) if lock else None
    rows = []
    for entry in entries:
        total = sum(entry.amounts.values(), ZERO)
        if total != 0:
            raise AssertionError(f"unbalanced journal entry {entry.event} {entry.source_type} {entry.source_id}: {entry.amounts}")
        day = entry.day
        if locked is not None and day <= locked:
            if entry.strict or entry.made <= locked:
                raise PeriodLocked(
                    f"the books are locked up to {locked.isoformat()}: nothing may post on {day.isoformat()}",
                    lock_date=locked.isoformat(),
                )
            day = entry.made
        rows.append({
            "date": day, "event": entry.event, "currency": entry.currency, "source_type": entry.source_type,
            "source_id": str(entry.source_id), "account_id": entry.account_id, "document": entry.document,
            "description": entry.description, "recorded_at": at,
        })
    postings = [
        [
            {"role": role, "tax_rate": rate, "debit": max(amount, ZERO), "credit": max(-amount, ZERO)}
            for (role, rate), amount in entry.amounts.items()
            if amount
        ]
        for entry in entries
    ]
    # Each entry with its postings; on PostgreSQL without waiting for the entries' ids (inside a
    # booking's pipeline, no round trip of their own).
    insert_with_children(session, JournalEntry.__table__, rows, JournalPosting.__table__, postings, key="entry_id")


# Ledger kinds that move value, and the event and revenue role of their entry.
VALUED: dict[str, tuple[str, str]] = {
    "consume": ("credits_used", "credits_used_revenue"),
    "adjust_deduct": ("credits_used", "credits_used_revenue"),
    "debt_settlement": ("credits_used", "credits_used_revenue"),
    "consume_reversal": ("credits_returned", "credits_used_revenue"),
    "expire": ("credits_expired", "breakage_revenue"),
    "rollover_cut": ("credits_cut", "breakage_revenue"),
}
_DESCRIPTIONS = {
    "credits_used": "Credits used", "credits_returned": "Credits returned (consumption reversed)",
    "credits_expired": "Credits expired unused", "credits_cut": "Credits cut by a rollover cap",
}
_PENDING = "licensing.journal.pending"


def ledger_entries(rows: list[dict[str, Any]], zone) -> list[NewEntry]:
    """The entries of ledger rows (mappings with kind, value, currency, account_id, source_type,
    source_id, occurred_at, recorded_at), in order: one per event (its kind's event, source,
    account and day), whatever number of grants it moved. ``value`` is the signed change of the
    value of outstanding credits: a consumption's is negative (deferred revenue is debited)."""
    grouped: dict[tuple, NewEntry] = {}
    for row in rows:
        valued = VALUED.get(row["kind"])
        if valued is None or not row["value"]:
            continue
        event, revenue = valued
        day = local_date(row["occurred_at"], zone)
        key = (event, row["source_type"], str(row["source_id"]), row["account_id"], day, row["currency"])
        entry = grouped.get(key)
        if entry is None:
            entry = grouped[key] = NewEntry(
                event=event, day=day, made=local_date(row["recorded_at"], zone), currency=row["currency"],
                source_type=row["source_type"], source_id=str(row["source_id"]), account_id=row["account_id"],
                description=f"{_DESCRIPTIONS[event]}: {row['source_type'].replace('_', ' ')} {row['source_id']}",
            )
        entry.debit("deferred_credit_revenue", -row["value"]).credit(revenue, -row["value"])
    return list(grouped.values())


def record_ledger(session: Session, rows: list[dict[str, Any]]) -> None:
    """Keep the valued ledger rows of the transaction, to be posted when it commits."""
    valued = [row for row in rows if row["kind"] in VALUED and row["value"]]
    if not valued:
        return
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        before_commit(session, "journal", post_pending)
    pending.extend(valued)


def post_pending(session: Session) -> None:
    """Post the valued ledger rows kept so far (``record_ledger``); the transaction does this as
    it commits. A booking does it at the end of its writes instead, inside their pipeline: its
    ledger rows are all written by then, and the entry goes with them in one round trip."""
    rows = session.info.pop(_PENDING, [])
    if rows:
        post(session, ledger_entries(rows, get_settings().zone), at=max(row["recorded_at"] for row in rows))

