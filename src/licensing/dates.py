"""Dates every part counts with: months shifted by an anchor day, and ISO 8601 lifetimes (how
long credits last, how long a licence renews for). Pure arithmetic, no database; a leaf that the
catalog, credits, licences and invoicing all use."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import isodate
from dateutil.relativedelta import relativedelta

from licensing.errors import ValidationFailed


def month_shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def anchor_date(year: int, month: int, anchor_day: int) -> date:
    """The anchor date in a month, clamped to the month's last day (anchor 31 in Feb: Feb 28/29)."""
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))



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
