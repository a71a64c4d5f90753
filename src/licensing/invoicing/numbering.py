"""Gapless numbering per series and year (``INV-2027-000042``, ``CN-2027-000007``).

The series row is locked for the rest of the approving transaction, so numbers are only used
when that transaction commits: concurrent approvals queue on the row and never leave a gap.
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from licensing.invoicing.models import NumberSeries


def allocate_numbers(session: Session, series: str, year: int, count: int) -> list[str]:
    """The next ``count`` numbers of the series, in order."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    session.execute(insert(NumberSeries).values(series=series, year=year, last=0).on_conflict_do_nothing())
    row = session.exec(
        select(NumberSeries)
        .where(NumberSeries.series == series, NumberSeries.year == year)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    first = row.last + 1
    row.last += count
    session.add(row)
    return [f"{series}-{year}-{number:06d}" for number in range(first, first + count)]

