"""The journal of a date range as a file in one of the export formats, with the operator's
settings (the API's ``/exports/journal`` and ``licensing export journal``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.books import reading
from licensing.books import settings as books_settings
from licensing.books.exports import FORMATS, Export, ExportOptions, export
from licensing.config import Settings
from licensing.errors import ValidationFailed


def journal_file(session: Session, first: date, last: date, format: str, settings: Settings) -> Export:  # noqa: A002 - the API's name
    if format not in FORMATS:
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)}", field="format")
    if last < first:
        raise ValidationFailed("to is before from", field="to")
    chart = books_settings.chart(session)
    views = reading.entries(session, chart, first, last)
    ids = {view.account_id for view in views if view.account_id is not None}
    names = dict(session.exec(select(Account.id, Account.name).where(col(Account.id).in_(ids))).all()) if ids else {}
    views = [replace(view, account_name=names.get(view.account_id)) for view in views]
    start_month = settings.fiscal_year_start_month
    year = first.year if first.month >= start_month else first.year - 1
    if year < 1:
        raise ValidationFailed("from is before the first fiscal year this engine can count with", field="from")
    fiscal = date(year, start_month, 1)
    options = ExportOptions(
        start=first, end=last, chart=chart, operator_name=settings.operator_name, datev_consultant=settings.datev_consultant_number,
        datev_client=settings.datev_client_number, fiscal_year_start=fiscal,
    )
    try:
        return export(format, views, options)
    except ValueError as error:
        raise ValidationFailed(str(error), field="to") from None
