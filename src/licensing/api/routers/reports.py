"""Reports for the accountant: liability at a moment, revenue recognised per month, receivables by age."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from licensing import clock
from licensing.accounts.models import Account
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import DatabaseDep, ReadAllBooks
from licensing.config import get_settings
from licensing.credits.expiry import sweep_expiries
from licensing.errors import ValidationFailed
from licensing.reports import liability, revenue
from licensing.reports.receivables import receivables

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def account_names(session, ids: set[int]) -> dict[int, str]:
    """The names of the accounts a report shows, beside their ids."""
    return dict(session.exec(select(Account.id, Account.name).where(col(Account.id).in_(ids))).all()) if ids else {}


def parse_day(value: str, field: str) -> date:
    """A date parameter (``YYYY-MM-DD``), or 422 naming it."""
    if not _DATE.match(value):
        raise ValidationFailed(f"{field} must be a date written YYYY-MM-DD", field=field)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{field} is not a real date", field=field) from None


@router.get(
    "/liability",
    summary="Credit liability report",
    description=(
        "Outstanding credits and their value per currency and account at `?as_of=` (a date: the end of that day; or an "
        "RFC 3339 instant; default now). Not for keys limited to some accounts (403)."
    ),
    responses=docs.documented(docs.LiabilityReport, "The liability report.", *docs.AUTH),
)
def liability_report(caller: ReadAllBooks, database: DatabaseDep, as_of: Annotated[str | None, Query(max_length=40)] = None):
    settings = get_settings()
    if as_of is None:
        moment, inclusive = clock.now(), True
    elif _DATE.match(as_of):
        try:
            moment, inclusive = clock.end_of_day(parse_day(as_of, "as_of"), settings.zone), False
        except OverflowError:
            raise ValidationFailed("as_of is outside the calendar this engine can count with", field="as_of") from None
    else:
        try:
            moment = datetime.fromisoformat(as_of)
        except ValueError:
            raise ValidationFailed("as_of must be a date (YYYY-MM-DD) or an instant with an offset (RFC 3339)", field="as_of") from None
        if moment.tzinfo is None:
            raise ValidationFailed("as_of must be an instant with an offset (RFC 3339)", field="as_of")
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            raise ValidationFailed("as_of is outside the calendar this engine can count with", field="as_of") from None
        inclusive = True
    try:
        sweep_expiries(database, now=clock.now())
        with database.read() as session:
            report = liability(session, moment, inclusive=inclusive)
            ids = {account_id for _total, accounts in report.currencies.values() for account_id in accounts}
            return presenters.liability_report(report, account_names(session, ids))
    except OverflowError:
        raise ValidationFailed("as_of is outside the calendar this engine can count with", field="as_of") from None


@router.get(
    "/revenue",
    summary="Revenue report",
    description=(
        "Revenue recognised per month between `?from=` and `?to=` (dates, inclusive): consumed and expired value, with "
        "credits sold and taken back. Not for keys limited to some accounts (403)."
    ),
    responses=docs.documented(docs.RevenueReport, "The revenue report.", *docs.AUTH),
)
def revenue_report(
    caller: ReadAllBooks,
    database: DatabaseDep,
    start: Annotated[str, Query(alias="from", max_length=10)],
    end: Annotated[str, Query(alias="to", max_length=10)],
):
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if last < first:
        raise ValidationFailed("to is before from", field="to")
    try:
        sweep_expiries(database, now=clock.now())
        with database.read() as session:
            return presenters.revenue_report(revenue(session, first, last))
    except OverflowError:
        raise ValidationFailed("from and to must be dates this engine can count with", field="to") from None


@router.get(
    "/receivables",
    summary="Receivables (ageing) report",
    description=(
        "What approved invoices still have due at the end of `?as_of=` (a date; default today), per currency and account, in "
        "buckets `current`, `1-30`, `31-60`, `61-90` and `90+` days past their due date. Not for keys limited to some accounts (403)."
    ),
    responses=docs.documented(docs.ReceivablesReport, "The receivables report.", *docs.AUTH),
)
def receivables_report(caller: ReadAllBooks, database: DatabaseDep, as_of: Annotated[str | None, Query(max_length=10)] = None):
    settings = get_settings()
    day = parse_day(as_of, "as_of") if as_of is not None else clock.local_date(clock.now(), settings.zone)
    try:
        with database.read() as session:
            report = receivables(session, day, settings)
            ids = {account_id for accounts in report.currencies.values() for account_id in accounts}
            return presenters.receivables_report(report, account_names(session, ids))
    except OverflowError:
        raise ValidationFailed("as_of is outside the calendar this engine can count with", field="as_of") from None
