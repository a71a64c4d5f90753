"""The books (SPEC 11): the journal, the trial balance, the exports, the chart of accounts and the lock date."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from licensing import clock
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import Admin, DatabaseDep, Pagination, ReadAllBooks, write
from licensing.api.routers.reports import parse_day
from licensing.api.schemas import ChartIn, LockDateIn
from licensing.books import reading
from licensing.books import settings as books_settings
from licensing.books.files import journal_file
from licensing.books.journal import lock_date
from licensing.config import get_settings
from licensing.credits.expiry import sweep_expiries
from licensing.errors import ValidationFailed

router = APIRouter(prefix="/api/v1", tags=["books"])

def _day(value: str | None, field: str) -> date | None:
    return None if value is None else parse_day(value, field)


def _range(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    first, last = _day(start, "from"), _day(end, "to")
    if first is not None and last is not None and last < first:
        raise ValidationFailed("to is before from", field="to")
    return first, last


def _record_due_expiries(database) -> None:
    """Expiries are posted when recorded: record those due before reading the books."""
    sweep_expiries(database, now=clock.now())


@router.get(
    "/journal",
    summary="The journal",
    description=(
        "Double-entry journal entries dated `?from=` to `?to=` (inclusive, both optional), oldest first, paginated: one balanced "
        "entry per financial event, postings to the chart's accounts (SPEC 11). Not for keys limited to some accounts (403)."
    ),
    responses=docs.documented(docs.JournalPage, "Journal entries.", *docs.AUTH),
)
def journal(
    caller: ReadAllBooks, database: DatabaseDep, page: Pagination,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None, end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
):
    first, last = _range(start, end)
    _record_due_expiries(database)
    with database.read() as session:
        chart = books_settings.chart(session)
        views = reading.entries(session, chart, first, last, after=page.after, limit=page.limit + 1)
        more = len(views) > page.limit
        views = views[: page.limit]
        return {"items": [presenters.journal_entry(view) for view in views], "next_cursor": str(views[-1].id) if more and views else None}


@router.get(
    "/reports/trial-balance",
    summary="Trial balance",
    description=(
        "The debit or credit balance of each ledger account, per currency, of the entries dated up to `?as_of=` (a date; default "
        "today, the operator's zone); debits equal credits per currency. Not for keys limited to some accounts (403)."
    ),
    responses=docs.documented(docs.TrialBalance, "The trial balance.", *docs.AUTH),
)
def trial_balance(caller: ReadAllBooks, database: DatabaseDep, as_of: Annotated[str | None, Query(max_length=10)] = None):
    day = _day(as_of, "as_of") or clock.local_date(clock.now(), get_settings().zone)
    _record_due_expiries(database)
    with database.read() as session:
        return presenters.trial_balance(day, reading.trial_balance(session, books_settings.chart(session), day))


@router.get(
    "/exports/journal",
    summary="Export the journal",
    description=(
        "The journal entries dated `?from=` to `?to=` as a file: `format=csv` (one row per posting), `datev` (DATEV EXTF "
        "Buchungsstapel, Windows-1252; the range within one calendar and fiscal year), `xero` (manual journal import CSV), "
        "`quickbooks` (journal entry import CSV) or `beancount` (a ledger `bean-check` accepts). docs/accounting.md says how "
        "to import each. Not for keys limited to some accounts (403)."
    ),
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}}, "description": "The file."}
    } | docs.problems(*docs.AUTH),
)
def export_journal(
    caller: ReadAllBooks, database: DatabaseDep,
    start: Annotated[str, Query(alias="from", max_length=10)], end: Annotated[str, Query(alias="to", max_length=10)],
    format: Annotated[Literal["csv", "datev", "xero", "quickbooks", "beancount"], Query()],  # noqa: A002 - the API's name
):
    first, last = _range(start, end)
    _record_due_expiries(database)
    with database.read() as session:
        file = journal_file(session, first, last, format, get_settings())
    return Response(file.content, media_type=file.media_type, headers={"Content-Disposition": f'attachment; filename="{file.filename}"'})


@router.get(
    "/settings/chart-of-accounts",
    summary="The chart of accounts",
    description="The ledger account (code and name) each role of the journal posts to. Admin only.",
    responses=docs.documented(docs.ChartOfAccounts, "The chart of accounts.", *docs.AUTH),
)
def get_chart(caller: Admin, database: DatabaseDep):
    with database.read() as session:
        return presenters.chart_of_accounts(books_settings.chart(session))


@router.put(
    "/settings/chart-of-accounts",
    summary="Set the chart of accounts",
    description=(
        "Start from a preset (`plain`, `skr03`, `skr04`) and replace the accounts of some roles, VAT payable per rate and DATEV "
        "tax keys. The journal is read and exported with the chart as it is then: a corrected code re-labels every entry. Admin only."
    ),
    responses=docs.documented(docs.ChartOfAccounts, "The chart of accounts as saved.", *docs.AUTH),
)
def put_chart(body: ChartIn, caller: Admin, database: DatabaseDep):
    return write(database, lambda session: (200, presenters.chart_of_accounts(books_settings.save_chart(session, body.model_dump(), at=clock.now()))))


@router.get(
    "/settings/lock-date",
    summary="The lock date",
    description="Nothing posts on or before the lock date (null: none). Admin only.",
    responses=docs.documented(docs.LockDate, "The lock date.", *docs.AUTH),
)
def get_lock_date(caller: Admin, database: DatabaseDep):
    with database.read() as session:
        day = lock_date(session)
        return {"lock_date": None if day is None else day.isoformat()}


@router.put(
    "/settings/lock-date",
    summary="Set the lock date",
    description=(
        "Close the books up to and including `lock_date`: an event dated on or before it by the user (a payment's `received_at`) "
        "is refused with 409 `period_locked`; a correction made later (a credit note, a void, a reversal, an expiry recorded late) "
        "posts on the day it is made. Null opens the books again. Admin only."
    ),
    responses=docs.documented(docs.LockDate, "The lock date as saved.", *docs.AUTH),
)
def put_lock_date(body: LockDateIn, caller: Admin, database: DatabaseDep):
    def action(session):
        day = books_settings.set_lock_date(session, body.lock_date, at=clock.now())
        return 200, {"lock_date": None if day is None else day.isoformat()}

    return write(database, action)
