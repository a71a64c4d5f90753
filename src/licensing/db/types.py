"""Column types that keep money, credits and instants exact on SQLite and PostgreSQL.

SQLite stores ``Numeric`` as floating point and drops time-zone offsets (see docs/decisions.md).
So decimals are stored as scaled integers (hundredths of a credit, ten-thousandths of a unit of
money), which keeps ``SUM`` exact in SQL on both databases, and instants are stored as UTC and
handed back as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.types import TypeDecorator


class ScaledDecimal(TypeDecorator):
    """A Decimal stored as ``BigInteger`` of ``value * 10**places``.

    Values with more places than the column holds are refused rather than silently rounded.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, places: int) -> None:
        super().__init__()
        self.places = places

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if type(value) is not Decimal:
            if isinstance(value, float):
                raise TypeError("floats are not stored: use Decimal")
            value = Decimal(value)
        scaled = value.scaleb(self.places)
        integral = int(scaled)
        if integral != scaled:
            raise ValueError(f"{value} has more than {self.places} decimal places")
        return integral

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        # An integer scaled down has exactly ``places`` decimal places (0 reads as 0.00).
        return Decimal(int(value)).scaleb(-self.places)

    @property
    def python_type(self):
        return Decimal


class UTCDateTime(TypeDecorator):
    """An instant: stored in UTC, always returned timezone-aware (UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not instants: give a time zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self):
        return datetime


def Credits() -> ScaledDecimal:  # noqa: N802 - reads like a type in column declarations
    """Credits: two places."""
    return ScaledDecimal(2)


def Amount() -> ScaledDecimal:  # noqa: N802
    """Money amounts, prices, quantities and rates: four places."""
    return ScaledDecimal(4)
