"""The only place that reads the wall clock.

Services read ``now()`` once per use case and pass the moment on; pure functions take it as an
argument. freezegun drives this in tests.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """00:00 of ``day`` in the operator's zone, as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    """The calendar date of ``instant`` in the operator's zone."""
    return instant.astimezone(zone).date()


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The instant that ends ``day``: 00:00 of the next day in the operator's zone (exclusive)."""
    from datetime import timedelta

    return start_of_day(day + timedelta(days=1), zone)
