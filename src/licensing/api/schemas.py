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


def _document_input(schema: dict[str, Any], cls: type) -> None:
    """OpenAPI only: each field's description and the model's example (see the end of this module)."""
    own = INPUT_FIELDS_OF.get(cls.__name__, {})
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop and (name in own or name in INPUT_FIELDS):
            prop["description"] = own.get(name) or INPUT_FIELDS[name]
    if cls.__name__ in INPUT_EXAMPLES:
        schema["examples"] = [INPUT_EXAMPLES[cls.__name__]]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_input)


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
    tax_rate: RateIn  # required: a forgotten rate would bill 0 % VAT without anyone noticing ("0" for none)
    credits: CreditsIn | None = None
    lifetime: Duration | None = None
    grant_on: Literal["approval", "payment"] = "approval"
    active: bool = True


class ProductPatch(Input):
    name: Name = None  # type: ignore[assignment]
    price: AmountIn = None  # type: ignore[assignment]
    tax_rate: RateIn = None  # type: ignore[assignment]
    credits: CreditsIn = None  # type: ignore[assignment]
    lifetime: Duration | None = None
    grant_on: Literal["approval", "payment"] = None  # type: ignore[assignment]
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


class PaymentIn(Input):
    amount: AmountIn  # more places than the currency has: 422 naming the field
    currency: Currency | None = None  # another than the invoice's: 409 currency_mismatch
    method: Literal["bank_transfer", "card", "cash", "direct_debit", "other"] = "bank_transfer"
    received_at: Instant | None = None  # default: now
    reference: Annotated[str, StringConstraints(max_length=200), OneLine] | None = None
    allow_overpayment: bool = False


class MandateIn(Input):
    iban: Annotated[str, StringConstraints(min_length=1, max_length=50), OneLine]
    bic: Annotated[str, StringConstraints(min_length=1, max_length=11), OneLine] | None = None
    mandate_reference: Annotated[str, StringConstraints(min_length=1, max_length=35, pattern=r"^[A-Za-z0-9+?/:().,'-]+$")] | None = None
    signed_on: Day
    scheme: Literal["CORE", "B2B"] = "CORE"


class DirectDebitIn(Input):
    collection_date: Day
    scheme: Literal["CORE", "B2B"] = "CORE"


class PaymentReverseIn(Input):
    reason: Reason | None = None  # refund, returned debit, chargeback ...


class LockDateIn(Input):
    lock_date: Day | None


class ChartIn(Input):
    preset: Literal["plain", "skr03", "skr04"] = "plain"
    accounts: dict[str, str | dict[str, str]] = {}
    vat_payable: dict[str, str | dict[str, str]] = {}
    tax_keys: dict[str, str] = {}


class VoidIn(Input):
    credit_policy: Literal["strict", "cap_to_remaining"] = "strict"
    reason: Text | None = None  # shown on the void invoice's document


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


# ---- documentation of the request schemas (OpenAPI only; validation is above) --------------

# Descriptions by field name; INPUT_FIELDS_OF[model][field] where a model's field means more.
INPUT_FIELDS = {
    "name": "Name, one line, at most 200 characters.",
    "email": "E-mail address, one line.",
    "currency": "ISO 4217 currency code, e.g. `EUR`.",
    "address": "Postal address, lines separated by newlines, at most 2,000 characters.",
    "country": "ISO 3166-1 alpha-2 country code, e.g. `BE` (needed on e-invoices).",
    "tax_id": "VAT or other tax identifier.",
    "tax_exempt": "Whether the account is invoiced without tax.",
    "kind": "What to create.",
    "price": "Net price per unit, a decimal written as a string (at most 4 places).",
    "tax_rate": "Tax rate in percent, a decimal string (`\"20\"` is 20 %; `\"0\"` for none).",
    "credits": "Credits, a decimal written as a string (at most 2 places).",
    "lifetime": "ISO 8601 duration after which granted credits expire, e.g. `P1Y`; null: never.",
    "active": "Whether the product may be added to licences.",
    "credits_per_unit": "Credits one unit costs, a decimal written as a string.",
    "account_id": "The account's id.",
    "start_date": "First day of the licence (YYYY-MM-DD).",
    "end_date": "Last day of the first term (inclusive, YYYY-MM-DD); null: open-ended.",
    "auto_renew": "Whether the licence renews at the end of its term.",
    "renewal_term": "ISO 8601 duration of a renewal term; default: the length of the first term.",
    "billing_anchor_day": "Day of the month billing periods start on (1-31).",
    "auto_approve": "Whether the billing run approves this licence's invoices.",
    "status": "`active`, `terminated` or `ended`.",
    "effective_date": "The licence's last active day (inclusive, YYYY-MM-DD); periods up to it still bill.",
    "product_id": "The product's id.",
    "quantity": "Quantity, a decimal written as a string.",
    "unit_price": "Net price per unit, a decimal string; null: the product's price.",
    "schedule": "How often it bills: `one_off`, `weekly` or `monthly`.",
    "from_date": "First day billed (YYYY-MM-DD); default the licence's start.",
    "to_date": "Last day billed (inclusive, YYYY-MM-DD); null: as long as the licence.",
    "business_unit_id": "The business unit whose credits are meant; null: the account's unrestricted credits.",
    "max_rollover": "Credits of a period that may roll over to the next; null: all of them.",
    "prorate": "Whether a plain service's partial periods are pro-rated.",
    "prorate_credits": "Whether a credit pack's credits and price are pro-rated in partial periods.",
    "as_of": "Bill every period due up to this day (YYYY-MM-DD); default today.",
    "approve": "Whether to approve the invoices at once.",
    "credit_price_id": "A credit-priced service: the credits are its `credits_per_unit` times `quantity`.",
    "member_id": "The member (person) of the account the credits are for.",
    "description": "Free text, at most 2,000 characters.",
    "reference": "Your own reference, e.g. a booking id.",
    "occurred_at": "When the credits are used, e.g. the booked event (RFC 3339); default now.",
    "allow_overdraft": "Record a debt instead of refusing when credits are short (billing role).",
    "event_at": "When the event takes place (RFC 3339).",
    "deadline": "When the hold is released by itself if not captured (RFC 3339).",
    "reason": "Why, as recorded (at most 2,000 characters).",
    "from_account_id": "The account the credits leave.",
    "to_account_id": "The account the credits go to.",
    "from_business_unit_id": "The business unit the credits leave; null: unrestricted credits.",
    "to_business_unit_id": "The business unit the credits go to; null: unrestricted.",
    "invoice_line_id": "The invoice line to credit.",
    "amount": "Net amount to credit, a decimal string (instead of a quantity).",
    "invoice_id": "The invoice to credit (approved).",
    "lines": "The lines to credit; none: the whole invoice.",
    "credit_policy": "`strict`: refuse if the credits were used; `cap_to_remaining`: take back what is left.",
    "role": "`admin`, `billing`, `bookings` or `read`.",
    "expires_at": "When the key stops working (RFC 3339); null: never.",
    "account_ids": "The accounts a bookings or read key is limited to; absent: every account.",
    "url": "Where events are POSTed (https).",
    "events": "Event types to deliver, e.g. `invoice.approved`, or `[\"*\"]` for all.",
}

INPUT_FIELDS_OF = {
    "LockDateIn": {"lock_date": "Nothing may post on or before this day (`YYYY-MM-DD`); null opens the books again."},
    "ChartIn": {
        "preset": "The chart every role starts from: `plain` (English), `skr03` or `skr04` (DATEV).",
        "accounts": "Role -> account code, or `{code, name}`, replacing the preset's (roles: receivables, bank, card_clearing, cash, "
        "unapplied_cash, vat_payable, deferred_credit_revenue, credits_awaiting_payment, services_revenue, credits_used_revenue, "
        "breakage_revenue, credit_note_allowances).",
        "vat_payable": "VAT rate (`\"19.00\"`) -> account code, or `{code, name}`: VAT payable per rate (others post to the vat_payable role's).",
        "tax_keys": "VAT rate -> DATEV BU-Schlüssel written on revenue lines of that rate in the DATEV export (`\"\"`: none).",
    },
    "ProductIn": {
        "kind": "`service` or `credit_pack`.", "credits": "Credits a pack grants per unit (credit packs only).",
        "grant_on": "When a pack's credits are granted: on the invoice's `approval` (default) or when it is paid in full (`payment`).",
    },
    "ProductPatch": {"credits": "Credits a pack grants per unit.", "grant_on": "`approval` or `payment` (invoices to come)."},
    "LicenceIn": {"account_id": "The account the licence is for."},
    "ConsumptionIn": {"credits": "Credits to consume (or give `credit_price_id` and `quantity`)."},
    "HoldIn": {"credits": "Credits to reserve (or give `credit_price_id` and `quantity`)."},
    "TopUpIn": {"product_id": "The credit pack to buy.", "quantity": "How many packs (default 1)."},
    "AdjustmentIn": {
        "kind": "`add` (a new grant) or `deduct`.",
        "credits": "Credits to add or deduct.",
        "lifetime": "For `add`: how long the credits last.",
    },
    "TransferIn": {"credits": "Credits to move."},
    "CreditNoteLineIn": {"quantity": "Quantity to credit, in the invoice line's units."},
    "CreditNoteApproveIn": {"credit_policy": "Replaces the note's own policy when given."},
    "VoidIn": {
        "credit_policy": "For credits already used: `strict` refuses, `cap_to_remaining` takes back what is left.",
        "reason": "Why, shown on the void invoice's document.",
    },
    "BillingRunIn": {"approve": "Approve every invoice of this run, not only those of `auto_approve` licences."},
    "PaymentIn": {
        "amount": "The amount received, in the invoice's currency, with at most its minor unit of places.",
        "currency": "The payment's currency: another than the invoice's is 409 `currency_mismatch`.",
        "method": "`bank_transfer` (default), `card`, `cash`, `direct_debit` or `other`.",
        "received_at": "When the money was received (RFC 3339); default: now.",
        "reference": "The payer's or the bank's reference.",
        "allow_overpayment": "Keep what exceeds `amount_due` as the account's unapplied cash instead of refusing (409 `overpayment`).",
    },
    "PaymentReverseIn": {"reason": "Why: a refund, a returned debit (with its reason code), a chargeback."},
    "MandateIn": {
        "iban": "The debtor's IBAN (spaces allowed); checked.",
        "bic": "The debtor's bank's BIC; default: the one the IBAN's bank code names, when known.",
        "mandate_reference": "The mandate's unique reference (at most 35 characters); default: LIC-<account>-<mandate>.",
        "signed_on": "The day the debtor signed the mandate.",
        "scheme": "`CORE` (consumers, the default) or `B2B` (businesses).",
    },
    "DirectDebitIn": {
        "collection_date": "The day the banks are to collect (after today).",
        "scheme": "Collect the invoices under `CORE` (default) or `B2B` mandates: one file each.",
    },
    "ApiKeyIn": {"name": "A name for the key (shown as the actor of what it does)."},
}

INPUT_EXAMPLES = {
    "LockDateIn": {"lock_date": "2027-01-31"},
    "ChartIn": {"preset": "skr03", "accounts": {"bank": {"code": "1210", "name": "Sparkasse"}}, "vat_payable": {"19.00": "1776"}},
    "AccountIn": {
        "name": "Acme Ltd",
        "email": "billing@acme.test",
        "currency": "EUR",
        "address": "1 Main Street\n1000 Brussels",
        "country": "BE",
        "tax_id": "BE0123456789",
    },
    "AccountPatch": {"email": "accounts@acme.test"},
    "BusinessUnitIn": {"name": "Cardiology"},
    "MemberIn": {"name": "Ada Lovelace", "email": "ada@acme.test"},
    "ProductIn": {
        "kind": "credit_pack",
        "name": "10 credits",
        "price": "100.00",
        "currency": "EUR",
        "tax_rate": "20",
        "credits": "10",
        "lifetime": "P1Y",
    },
    "ProductPatch": {"price": "110.00"},
    "CreditPriceIn": {"name": "Meeting room (per hour)", "credits_per_unit": "2"},
    "LicenceIn": {"account_id": "1", "start_date": "2027-01-01", "end_date": "2027-12-31", "auto_renew": True},
    "LicencePatch": {"auto_approve": True},
    "TerminationIn": {"effective_date": "2027-06-30"},
    "ServiceIn": {"product_id": "1", "quantity": "1", "schedule": "monthly"},
    "ServicePatch": {"quantity": "2"},
    "BillingRunIn": {"as_of": "2027-01-01"},
    "ConsumptionIn": {"credits": "1.50", "description": "Meeting room, 45 minutes", "reference": "booking-4711"},
    "HoldIn": {"credits": "2", "event_at": "2027-01-15T09:00:00+01:00", "reference": "booking-4712"},
    "TopUpIn": {"product_id": "1", "quantity": "1", "approve": True},
    "AdjustmentIn": {"kind": "add", "credits": "5", "reason": "goodwill", "lifetime": "P3M"},
    "TransferIn": {"from_account_id": "1", "to_account_id": "2", "credits": "2", "reason": "merger"},
    "CreditNoteLineIn": {"invoice_line_id": "1", "amount": "50.00"},
    "CreditNoteIn": {"invoice_id": "1", "lines": [{"invoice_line_id": "1", "amount": "50.00"}], "reason": "half the pack was never delivered"},
    "CreditNoteApproveIn": {"credit_policy": "cap_to_remaining"},
    "VoidIn": {"credit_policy": "strict", "reason": "issued to the wrong account"},
    "PaymentIn": {"amount": "120.00", "method": "bank_transfer", "received_at": "2027-01-05T10:00:00+01:00", "reference": "SEPA 20270105-17"},
    "PaymentReverseIn": {"reason": "returned debit (AM04: insufficient funds)"},
    "MandateIn": {"iban": "DE89 3704 0044 0532 0130 00", "signed_on": "2026-12-01", "scheme": "CORE"},
    "DirectDebitIn": {"collection_date": "2027-01-20"},
    "ApiKeyIn": {"name": "frontdesk", "role": "bookings", "account_ids": ["1"]},
    "WebhookIn": {"url": "https://books.example.com/hooks/licensing", "events": ["invoice.approved", "credits.consumed"]},
}
