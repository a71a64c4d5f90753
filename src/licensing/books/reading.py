"""The journal as read: entries between two dates with their postings resolved to the chart's
accounts, and the trial balance at a date."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import Session, col, select

from licensing.books.chart import Chart
from licensing.books.models import JournalEntry, JournalPosting
from licensing.books.views import EntryView, PostingView

ZERO = Decimal(0)


def entries(
    session: Session, chart: Chart, start: date | None, end: date | None, *, after: int | None = None, limit: int | None = None,
) -> list[EntryView]:
    """Entries dated ``start`` to ``end`` (inclusive; None: open), by date then id (the order
    they posted in on one day); ``after``/``limit`` page through them by id."""
    statement = select(JournalEntry)
    if start is not None:
        statement = statement.where(JournalEntry.date >= start)
    if end is not None:
        statement = statement.where(JournalEntry.date <= end)
    if after is not None:
        statement = statement.where(JournalEntry.id > after)
    statement = statement.order_by(JournalEntry.id) if limit is not None else statement.order_by(JournalEntry.date, JournalEntry.id)
    if limit is not None:
        statement = statement.limit(limit)
    rows = session.exec(statement).all()
    postings: dict[int, list[JournalPosting]] = defaultdict(list)
    ids = [row.id for row in rows]
    for offset in range(0, len(ids), 5000):
        for posting in session.exec(
            select(JournalPosting).where(col(JournalPosting.entry_id).in_(ids[offset : offset + 5000])).order_by(JournalPosting.id)
        ).all():
            postings[posting.entry_id].append(posting)
    return [view(row, postings[row.id], chart) for row in rows]


def view(row: JournalEntry, postings: list[JournalPosting], chart: Chart) -> EntryView:
    """An entry with its postings on the chart's accounts (its account's name left to the caller)."""
    return EntryView(
        id=row.id, date=row.date, currency=row.currency, event=row.event, source_type=row.source_type, source_id=row.source_id,
        description=row.description, account_id=row.account_id, account_name=None, document=row.document,
        postings=tuple(
            PostingView(
                role=posting.role, account=(account := chart.account(posting.role, posting.tax_rate)).code, account_name=account.name,
                debit=posting.debit, credit=posting.credit, currency=row.currency, tax_rate=posting.tax_rate,
            )
            for posting in postings
        ),
    )


@dataclass(frozen=True, slots=True)
class BalanceLine:
    account: str
    account_name: str
    currency: str
    debit: Decimal  # the debit balance (or 0)
    credit: Decimal  # the credit balance (or 0)


def role_balances(session: Session, as_of: date | None = None, *, account_id: int | None = None) -> dict[tuple[str, Decimal | None, str], Decimal]:
    """Debits less credits per (role, tax rate, currency) of the entries dated up to ``as_of``
    (all: None), of one member account if given."""
    statement = (
        select(JournalPosting.role, JournalPosting.tax_rate, JournalEntry.currency, func.sum(JournalPosting.debit), func.sum(JournalPosting.credit))
        .join(JournalEntry, JournalEntry.id == JournalPosting.entry_id)
        .group_by(JournalPosting.role, JournalPosting.tax_rate, JournalEntry.currency)
    )
    if as_of is not None:
        statement = statement.where(JournalEntry.date <= as_of)
    if account_id is not None:
        statement = statement.where(JournalEntry.account_id == account_id)
    return {(role, rate, currency): Decimal(debit) - Decimal(credit) for role, rate, currency, debit, credit in session.exec(statement).all()}


def trial_balance(session: Session, chart: Chart, as_of: date | None) -> list[BalanceLine]:
    """The balance of each ledger account of the chart (codes that several roles or rates share
    are one account), per currency, by code."""
    balances: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    names: dict[str, str] = {}
    for (role, rate, currency), balance in role_balances(session, as_of).items():
        account = chart.account(role, rate)
        balances[account.code, currency] += balance
        names.setdefault(account.code, account.name)
    return [
        BalanceLine(code, names[code], currency, max(balance, ZERO), max(-balance, ZERO))
        for (code, currency), balance in sorted(balances.items())
        if balance
    ]
