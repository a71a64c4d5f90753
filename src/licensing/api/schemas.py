"""Request and response schemas of the HTTP contract (API.md).

Money, credits and quantities travel as JSON strings holding decimals; they are declared as
strings with a pattern (so that generated clients and fuzzers send decimals, not floats) and
turned into ``Decimal`` here. Table models are never response schemas.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from licensing.text import LINES, unprintable


def _refuse_unprintable(value: str, allowed: str) -> str:
    problem = unprintable(value, allowed)
    if problem:
        raise ValueError(problem)
    return value


def _one_line(value: str) -> str:
    return _refuse_unprintable(value, "")


def _lines(value: str) -> str:
    return _refuse_unprintable(value, LINES)


# Text fields: one line (names, e-mail addresses, references, tax ids), or lines separated by
# newlines, tabs allowed (addresses, descriptions, reasons).
OneLine = AfterValidator(_one_line)
Lines = AfterValidator(_lines)

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), OneLine]
Text = Annotated[str, StringConstraints(max_length=2000), Lines]
Id = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"), OneLine]
Reference = Annotated[str, StringConstraints(max_length=200), OneLine]
TaxId = Annotated[str, StringConstraints(max_length=64), OneLine]
Currency = Annotated[str, StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, StringConstraints(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")]
Duration = Annotated[str, StringConstraints(min_length=2, max_length=40, pattern=r"^P[0-9YMWDTHS.]+$")]
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})]


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the calendar this engine can count with") from None


# An RFC 3339 instant with an offset, handed on in UTC (year 9999 at -23:59 is refused, not a crash).
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]

_POSITIVE_CREDITS = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"
_AMOUNT = r"^[0-9]{1,12}(\.[0-9]{1,4})?$"
_RATE = r"^[0-9]{1,3}(\.[0-9]{1,4})?$"



def _decimal_text(pattern: str, what: str):
    compiled = re.compile(pattern)

    def parse(value: Any) -> Decimal:
        if isinstance(value, Decimal):
            return value
        if not isinstance(value, str) or not compiled.match(value):
            raise ValueError(f"must be {what} written as a JSON string, e.g. \"10.50\"")
        return Decimal(value)

    return Annotated[Decimal, BeforeValidator(parse), WithJsonSchema({"type": "string", "pattern": pattern})]


CreditsIn = _decimal_text(_POSITIVE_CREDITS, "credits (a decimal with at most 2 places)")
AmountIn = _decimal_text(_AMOUNT, "a decimal with at most 4 places")
RateIn = _decimal_text(_RATE, "a percentage with at most 4 places")


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(Input):
    name: Name
    email: Email
    currency: Currency
    address: Text = ""
    country: Country | None = None
    tax_id: TaxId | None = None
    tax_exempt: bool = False


# In the *Patch schemas a field typed without ``| None`` may be left out but never set to null
# (defaults are not validated; an explicit null is): only fields that may be cleared are nullable.


class AccountPatch(Input):
    name: Name = None  # type: ignore[assignment]
    email: Email = None  # type: ignore[assignment]
    currency: Currency = None  # type: ignore[assignment]
    address: Text = None  # type: ignore[assignment]
    country: Country | None = None
    tax_id: TaxId | None = None
    tax_exempt: bool = None  # type: ignore[assignment]


class BusinessUnitIn(Input):
    name: Name


class MemberIn(Input):
    name: Name
    email: Email | None = None


class ProductIn(Input):
    kind: Literal["service", "credit_pack"]
    name: Name
    price: AmountIn
    currency: Currency
    tax_rate: RateIn | None = None
    credits: CreditsIn | None = None
    lifetime: Duration | None = None
    active: bool = True


class ProductPatch(Input):
    name: Name = None  # type: ignore[assignment]
    price: AmountIn = None  # type: ignore[assignment]
    tax_rate: RateIn = None  # type: ignore[assignment]
    credits: CreditsIn = None  # type: ignore[assignment]
    lifetime: Duration | None = None
    active: bool = None  # type: ignore[assignment]


class CreditPriceIn(Input):
    name: Name
    credits_per_unit: AmountIn


class LicenceIn(Input):
    account_id: Id
    start_date: Day
    end_date: Day | None = None
    auto_renew: bool = False
    renewal_term: Duration | None = None
    billing_anchor_day: Annotated[int, Field(ge=1, le=31, strict=True)] = 1
    auto_approve: bool = False
    status: Literal["active", "terminated", "ended"] = "active"


class LicencePatch(Input):
    end_date: Day | None = None
    auto_renew: bool = None  # type: ignore[assignment]
    renewal_term: Duration | None = None
    billing_anchor_day: Annotated[int, Field(ge=1, le=31, strict=True)] = None  # type: ignore[assignment]
    auto_approve: bool = None  # type: ignore[assignment]
    status: Literal["active", "terminated", "ended"] = None  # type: ignore[assignment]


class TerminationIn(Input):
    effective_date: Day


class ServiceIn(Input):
    product_id: Id
    quantity: AmountIn | None = None
    unit_price: AmountIn | None = None
    schedule: Literal["one_off", "weekly", "monthly"]
    from_date: Day | None = None
    to_date: Day | None = None
    business_unit_id: Id | None = None
    max_rollover: CreditsIn | None = None
    prorate: bool = True
    prorate_credits: bool = False


class ServicePatch(Input):
    quantity: AmountIn = None  # type: ignore[assignment]
    unit_price: AmountIn | None = None
    from_date: Day = None  # type: ignore[assignment]
    to_date: Day | None = None
    business_unit_id: Id | None = None
    max_rollover: CreditsIn | None = None
    prorate: bool = None  # type: ignore[assignment]
    prorate_credits: bool = None  # type: ignore[assignment]


class BillingRunIn(Input):
    as_of: Day | None = None
    approve: bool = False


class ConsumptionIn(Input):
    credits: CreditsIn | None = None
    credit_price_id: Id | None = None
    quantity: AmountIn | None = None
    business_unit_id: Id | None = None
    member_id: Id | None = None
    description: Text | None = None
    reference: Reference | None = None
    occurred_at: Instant | None = None
    allow_overdraft: bool = False


class HoldIn(Input):
    credits: CreditsIn | None = None
    credit_price_id: Id | None = None
    quantity: AmountIn | None = None
    event_at: Instant
    deadline: Instant | None = None
    business_unit_id: Id | None = None
    member_id: Id | None = None
    description: Text | None = None
    reference: Reference | None = None


class TopUpIn(Input):
    product_id: Id
    quantity: AmountIn = Decimal(1)
    business_unit_id: Id | None = None
    approve: bool = False


Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True), Lines]


class AdjustmentIn(Input):
    kind: Literal["add", "deduct"]
    credits: CreditsIn
    reason: Reason
    lifetime: Duration | None = None
    business_unit_id: Id | None = None


class TransferIn(Input):
    from_account_id: Id
    to_account_id: Id
    from_business_unit_id: Id | None = None
    to_business_unit_id: Id | None = None
    credits: CreditsIn
    reason: Reason


class CreditNoteLineIn(Input):
    invoice_line_id: Id
    quantity: AmountIn | None = None
    amount: AmountIn | None = None


class CreditNoteIn(Input):
    invoice_id: Id
    lines: Annotated[list[CreditNoteLineIn], Field(max_length=500)] | None = None
    reason: Text = ""
    credit_policy: Literal["strict", "cap_to_remaining"] = "strict"


class CreditNoteApproveIn(Input):
    credit_policy: Literal["strict", "cap_to_remaining"] | None = None


class VoidIn(Input):
    credit_policy: Literal["strict", "cap_to_remaining"] = "strict"


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


def credits_text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def amount_text(value: Decimal | None, places: int = 2) -> str | None:
    return None if value is None else f"{value:.{places}f}"


def instant_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class ApiKeyIn(Input):
    name: Name
    role: Literal["admin", "billing", "bookings", "read"]
    expires_at: Instant | None = None
    # Only for a bookings or read key: the accounts it is limited to (every account when absent).
    account_ids: Annotated[list[Id], Field(min_length=1, max_length=500)] | None = None
