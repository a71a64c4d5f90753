"""Billing periods, weeks and lifetimes: pure date arithmetic (SPEC 2 and 3).

Every period is computed from the licence's anchor day, never from the previous period, so that
an anchor of 31 gives Jan 31, Feb 28, Mar 31, Apr 30 rather than drifting to the 28th.
Periods are inclusive ranges of dates in the operator's time zone.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

import isodate
from dateutil.relativedelta import relativedelta

from licensing.errors import ValidationFailed

ONE_DAY = timedelta(days=1)


def month_shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def anchor_date(year: int, month: int, anchor_day: int) -> date:
    """The anchor date in a month, clamped to the month's last day (anchor 31 in Feb: Feb 28/29)."""
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


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


@dataclass(frozen=True, slots=True)
class Lifetime:
    """A credit pack's lifetime: whole months (years count 12) and whole days (weeks count 7)."""

    months: int
    days: int
    text: str

    def end(self, start: date, *, anchor_day: int | None = None) -> date:
        """The date the lifetime ends, counted from ``start``.

        With ``anchor_day`` (recurring lines, whose ``start`` is an anchor date) the months land on
        the licence's anchor, clamped: anchor 31, Feb 28 + P1M = Mar 31. Without it, calendar
        months with month-end clamping: Jan 31 + P1M = Feb 28 (29 in a leap year).
        """
        if not self.months:
            result = start
        elif anchor_day is not None:
            year, month = month_shift(start.year, start.month, self.months)
            result = anchor_date(year, month, anchor_day)
        else:
            result = start + relativedelta(months=self.months)
        return result + timedelta(days=self.days)


def parse_lifetime(text: str) -> Lifetime:
    """Parse an ISO 8601 duration of whole days, weeks, months or years (``P7D``, ``P1W``,
    ``P1M``, ``P12M``, ``P1Y``). Time parts and durations of zero or less are refused."""
    if not isinstance(text, str) or not text.startswith("P"):
        raise ValidationFailed(f"lifetime {text!r} is not an ISO 8601 duration (e.g. P1M)", field="lifetime")
    try:
        duration = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, TypeError):
        raise ValidationFailed(f"lifetime {text!r} is not an ISO 8601 duration (e.g. P1M)", field="lifetime") from None
    if "T" in text:
        raise ValidationFailed(f"lifetime {text!r} must be whole days, weeks, months or years", field="lifetime")
    if isinstance(duration, timedelta):
        months, delta = 0, duration
    else:
        years, months_part = duration.years, duration.months
        if years != int(years) or months_part != int(months_part):
            raise ValidationFailed(f"lifetime {text!r} must count whole months and years", field="lifetime")
        months, delta = int(years) * 12 + int(months_part), duration.tdelta
    if delta.seconds or delta.microseconds:
        raise ValidationFailed(f"lifetime {text!r} must be whole days, weeks, months or years", field="lifetime")
    if months < 0 or delta.days < 0 or (months == 0 and delta.days == 0):
        raise ValidationFailed(f"lifetime {text!r} must be longer than zero", field="lifetime")
    lifetime = Lifetime(months=months, days=delta.days, text=text)
    if months > MAX_MONTHS or delta.days > MAX_DAYS or lifetime.end(CENTURY_START) > CENTURY_END:
        raise ValidationFailed(f"lifetime {text!r} is longer than 100 years", field="lifetime")
    return lifetime


# Lifetimes and terms are at most 100 years (P100Y, P1200M, P36525D): longer ones would carry
# dates past the calendar the engine counts with, and no contract or credit lasts that long.
MAX_MONTHS = 1200
MAX_DAYS = 36525
CENTURY_START = date(2000, 1, 1)
CENTURY_END = date(2100, 1, 1)
