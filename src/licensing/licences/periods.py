"""Billing periods and weeks: pure date arithmetic (SPEC 2 and 3); months and lifetimes are in
``licensing.dates``.

Every period is computed from the licence's anchor day, never from the previous period, so that
an anchor of 31 gives Jan 31, Feb 28, Mar 31, Apr 30 rather than drifting to the 28th.
Periods are inclusive ranges of dates in the operator's time zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from licensing.dates import anchor_date, month_shift

ONE_DAY = timedelta(days=1)


def nominal_month(day: date, anchor_day: int) -> tuple[int, int]:
    """The (year, month) whose anchor date starts the period containing ``day``."""
    if day >= anchor_date(day.year, day.month, anchor_day):
        return day.year, day.month
    return month_shift(day.year, day.month, -1)


@dataclass(frozen=True, slots=True)
class Period:
    """A billing period. ``start``/``end`` are the dates billed (inclusive); ``nominal_start`` and
    ``nominal_end`` the whole period they belong to, from one anchor date to the day before the
    next. A period is partial when the two differ."""

    start: date
    end: date
    nominal_start: date
    nominal_end: date

    @property
    def is_partial(self) -> bool:
        return self.start != self.nominal_start or self.end != self.nominal_end

    @property
    def nominal_days(self) -> int:
        return (self.nominal_end - self.nominal_start).days + 1


def period_for_month(year: int, month: int, anchor_day: int) -> Period:
    start = anchor_date(year, month, anchor_day)
    next_year, next_month = month_shift(year, month, 1)
    end = anchor_date(next_year, next_month, anchor_day) - ONE_DAY
    return Period(start, end, start, end)


def billing_periods(
    start_date: date, anchor_day: int, *, last_day: date | None, until: date
) -> Iterator[Period]:
    """The licence's billing periods whose first day is on or before ``until``.

    The first period starts on ``start_date`` (partial if that is not an anchor date); a period
    cut by ``last_day`` (the licence's end or termination, inclusive) is partial likewise.
    """
    year, month = nominal_month(start_date, anchor_day)
    offset = 0
    while True:
        whole = period_for_month(*month_shift(year, month, offset), anchor_day)
        start = max(whole.nominal_start, start_date)
        end = whole.nominal_end if last_day is None else min(whole.nominal_end, last_day)
        if start > until or start > end:
            return
        yield Period(start, end, whole.nominal_start, whole.nominal_end)
        offset += 1


def period_containing(day: date, anchor_day: int, licence_start: date) -> Period:
    """The (nominal) billing period that contains ``day``, starting no earlier than the licence."""
    whole = period_for_month(*nominal_month(day, anchor_day), anchor_day)
    return Period(max(whole.nominal_start, licence_start), whole.nominal_end, whole.nominal_start, whole.nominal_end)


def overlap(a_start: date, a_end: date | None, b_start: date, b_end: date | None) -> tuple[date, date] | None:
    """The intersection of two inclusive ranges (``None`` end = open), or None."""
    start = max(a_start, b_start)
    ends = [d for d in (a_end, b_end) if d is not None]
    end = min(ends) if ends else None
    if end is not None and start > end:
        return None
    return start, end  # type: ignore[return-value]


def week_starts(first_week: date, within_start: date, within_end: date) -> list[date]:
    """Starts of the 7-day weeks counted from ``first_week`` that fall in [within_start, within_end]."""
    if within_end < within_start:
        return []
    skip = max(0, -(-(within_start - first_week).days // 7))
    day = first_week + timedelta(days=7 * skip)
    starts = []
    while day <= within_end:
        starts.append(day)
        day += timedelta(days=7)
    return starts


def day_fraction(covered_start: date, covered_end: date, period: Period) -> Fraction:
    """Days covered / days in the whole period (Jan 16-31 of January: 16/31)."""
    return Fraction((covered_end - covered_start).days + 1, period.nominal_days)
