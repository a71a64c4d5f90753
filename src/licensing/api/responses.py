"""Response models of the HTTP contract, for the OpenAPI document only.

The routes answer with the dicts of :mod:`licensing.api.presenters`; these models describe
those dicts (same field names, decimals as strings, the same nullable fields) and are given to
the route decorators through ``responses=`` so that FastAPI documents them without filtering or
re-validating what the routes return. Each field has a description (its own, or the one of
``FIELDS`` for its name) and each model an example.

``problems(...)`` documents the application/problem+json answers a route may give, and
``finish_document(schema)`` makes every operation's 422 a problem (never FastAPI's
``HTTPValidationError``) and adds the 503 every route may answer while the database is down.
"""

from __future__ import annotations

import datetime as _dt
from datetime import date, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from licensing import errors as business_errors
from licensing.api import errors as api_errors
from licensing.api.errors import PROBLEM, STATUS_BY_CODE

# Descriptions shared by the fields of that name; a field whose meaning differs says so itself.
FIELDS = {
    "id": "The resource's id (an opaque string of ASCII digits).",
    "account_id": "The account's id.",
    "account_name": "The account's name.",
    "business_unit_id": "The business unit the credits belong to; null: the account's unrestricted credits.",
    "member_id": "The member (person) of the account the credits were used for, if any.",
    "credit_price_id": "The credit-priced service used, if credits were priced by quantity.",
    "licence_id": "The licence's id (null for an invoice that belongs to no licence, such as a top-up).",
    "product_id": "The product's id.",
    "grant_id": "The grant's id.",
    "invoice_id": "The invoice's id.",
    "name": "The name (at most 200 characters).",
    "email": "E-mail address.",
    "currency": "ISO 4217 currency code.",
    "address": "Postal address, lines separated by newlines.",
    "country": "ISO 3166-1 alpha-2 country code (needed on e-invoices).",
    "tax_id": "VAT or other tax identifier.",
    "tax_exempt": "Whether the account is invoiced without tax.",
    "created_at": "When the resource was recorded (RFC 3339).",
    "quantity": "Quantity, a decimal written as a string.",
    "unit_price": "Price per unit (net), a decimal written as a string.",
    "tax_rate": "Tax rate in percent (\"20.00\" is 20 %).",
    "net": "Net amount, a decimal written as a string.",
    "tax": "Tax amount, a decimal written as a string.",
    "gross": "Gross amount (net plus tax), a decimal written as a string.",
    "credits": "Credits, a decimal written as a string.",
    "description": "Free text (at most 2,000 characters).",
    "reference": "The caller's own reference (e.g. a booking id).",
    "reason": "Why this was done, as recorded.",
    "actor": "Who did it: `api-key:<name>`, `cli`, `scheduler`, ...",
    "lifetime": "ISO 8601 duration after which the credits expire (e.g. `P1Y`); null: they never expire.",
    "period_start": "First day of the billed period (inclusive).",
    "period_end": "Last day of the billed period (inclusive).",
    "issue_date": "Issue date.",
    "approved_at": "When it was approved; null while a draft.",
    "number": "Sequential document number; null while a draft.",
    "draws": "The grants the credits were drawn from, credits as positive numbers.",
    "remaining": "Credits left to use.",
    "used": "Credits consumed.",
    "held": "Credits reserved by open holds.",
    "removed": "Credits taken away (deductions, credit notes, transfers out).",
    "granted": "Credits granted.",
    "debt": "Credits consumed past the available credits (an overdraft), to be settled by the next grant.",
    "expired": "Credits that expired unused.",
    "valid_from": "From when the credits may be used (RFC 3339).",
    "expires_at": "When the credits expire (RFC 3339); null: never.",
    "occurred_at": "When the credits were used, e.g. the booked event (RFC 3339).",
    "value": "Monetary value, a decimal written as a string.",
    "status": "Status.",
    "next_cursor": "Pass as `?cursor=` to get the next page; null on the last page.",
    "items": "This page's items.",
    "as_of": "The moment the figures are for.",
    "source": "What produced this: `{type, id}` (an invoice line, adjustment, transfer, ...).",
    "type": "Kind of the source.",
    "month": "The month, `YYYY-MM`.",
}


def _complete(schema: dict[str, Any], cls: type) -> None:
    """Fill in descriptions from ``FIELDS`` and the model's example."""
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop and name in FIELDS:
            prop["description"] = FIELDS[name]
    example = cls.__dict__.get("example")
    if example is not None:
        schema["examples"] = [example]


class Out(BaseModel):
    model_config = ConfigDict(json_schema_extra=_complete)
    example: ClassVar[dict[str, Any] | None] = None


# Example values shared by the examples below.
AT = "2026-12-01T09:00:00+00:00"
LATER = "2027-12-01T00:00:00+00:00"


class Health(Out):
    """Liveness and database reachability."""

    status: str = Field(description="`ok`, or `unavailable` while the database cannot be reached.")
    database: str = Field(description="`ok` or `unreachable`.")
    version: str | None = Field(None, description="The engine's version (absent while unavailable).")
    detail: str | None = Field(None, description="While unavailable: the kind of failure.")
    example = {"status": "ok", "database": "ok", "version": "1.0.0"}


class Account(Out):
    """A customer account."""

    id: str
    name: str
    email: str
    currency: str = Field(description="ISO 4217 currency the account is invoiced in.")
    address: str
    country: str | None
    tax_id: str | None
    tax_exempt: bool
    created_at: datetime
    example = {
        "id": "1", "name": "Acme Ltd", "email": "billing@acme.test", "currency": "EUR", "address": "1 Main Street\n1000 Brussels",
        "country": "BE", "tax_id": "BE0123456789", "tax_exempt": False, "created_at": AT,
    }


class AccountWithCredits(Account):
    """An account with its credits remaining now and its debt."""

    remaining_credits: str = Field(description="Credits remaining now (as the credit summary's `remaining`).")
    debt: str
    example = Account.example | {"remaining_credits": "42.00", "debt": "0.00"}


class BusinessUnit(Out):
    """A business unit of an account: credits may be restricted to it."""

    id: str
    account_id: str
    name: str
    created_at: datetime
    example = {"id": "1", "account_id": "1", "name": "Cardiology", "created_at": AT}


class Member(Out):
    """A member (person) of an account."""

    id: str
    account_id: str
    name: str
    email: str | None
    created_at: datetime
    example = {"id": "1", "account_id": "1", "name": "Ada Lovelace", "email": "ada@acme.test", "created_at": AT}


class Product(Out):
    """A product of the catalog: a plain service or a credit pack."""

    id: str
    kind: str = Field(description="`service` or `credit_pack`.")
    name: str
    price: str = Field(description="Net price per unit, a decimal written as a string.")
    currency: str
    tax_rate: str
    credits: str | None = Field(description="Credits a pack grants per unit; null for a service.")
    lifetime: str | None
    active: bool = Field(description="Whether the product may be added to licences.")
    created_at: datetime
    grant_on: str = Field(description="When a pack's credits are granted: `approval` of its invoice, or `payment` in full.")
    example = {
        "id": "1", "kind": "credit_pack", "name": "10 credits", "price": "100.00", "currency": "EUR", "tax_rate": "20.00",
        "credits": "10.00", "lifetime": "P1Y", "grant_on": "approval", "active": True, "created_at": AT,
    }


class CreditPrice(Out):
    """A credit-priced service, for consumptions by quantity."""

    id: str
    name: str
    credits_per_unit: str = Field(description="Credits one unit costs, a decimal written as a string.")
    created_at: datetime
    example = {"id": "1", "name": "Meeting room (per hour)", "credits_per_unit": "2", "created_at": AT}


class Licence(Out):
    """A licence (contract) of an account."""

    id: str
    account_id: str
    start_date: date = Field(description="First day of the licence.")
    end_date: date | None = Field(description="Last day of the current term (inclusive); null: open-ended.")
    auto_renew: bool = Field(description="Whether the licence renews at the end of its term.")
    renewal_term: str | None = Field(description="ISO 8601 duration of a renewal term; null: the length of the first term.")
    billing_anchor_day: int = Field(description="Day of the month periods start on (1-31).")
    auto_approve: bool = Field(description="Whether the billing run approves this licence's invoices.")
    status: str = Field(description="`active`, `terminated` or `ended`.")
    terminated_on: date | None = Field(description="The last active day of a terminated licence.")
    created_at: datetime
    example = {
        "id": "1", "account_id": "1", "start_date": "2026-11-01", "end_date": "2027-10-31", "auto_renew": True,
        "renewal_term": "P1Y", "billing_anchor_day": 1, "auto_approve": False, "status": "active", "terminated_on": None,
        "created_at": AT,
    }


class Service(Out):
    """A contract service: a product billed on a licence."""

    id: str
    licence_id: str
    product_id: str
    quantity: str
    unit_price: str | None = Field(description="Net price per unit; null: the product's price.")
    schedule: str = Field(description="`one_off`, `weekly` or `monthly`.")
    from_date: date = Field(description="First day billed.")
    to_date: date | None = Field(description="Last day billed (inclusive); null: as long as the licence.")
    business_unit_id: str | None = Field(description="The business unit a credit pack's credits go to; null: none.")
    max_rollover: str | None = Field(description="Credits of a period that may roll over to the next; null: all.")
    prorate: bool = Field(description="Whether a plain service's partial periods are pro-rated.")
    prorate_credits: bool = Field(description="Whether a credit pack's credits and price are pro-rated in partial periods.")
    created_at: datetime
    example = {
        "id": "1", "licence_id": "1", "product_id": "1", "quantity": "1", "unit_price": "100.00", "schedule": "monthly",
        "from_date": "2026-11-01", "to_date": None, "business_unit_id": None, "max_rollover": None, "prorate": True,
        "prorate_credits": False, "created_at": AT,
    }


class InvoiceLine(Out):
    """A line of an invoice."""

    id: str
    description: str = Field(description="What the line bills.")
    contract_service_id: str | None = Field(description="The contract service billed; null for a top-up line.")
    product_id: str | None
    period_start: date
    period_end: date
    quantity: str
    unit_price: str
    tax_rate: str
    net: str
    tax: str
    credits: str | None = Field(description="Credits the line grants; null for a plain service.")
    grant_id: str | None = Field(description="The grant made once the invoice was approved; null before, and for services.")
    credits_valid_from: datetime | None = Field(description="From when the granted credits may be used.")
    credits_expire_at: datetime | None = Field(description="When the granted credits expire; null: never.")
    example = {
        "id": "1", "description": "10 credits (November 2026)", "contract_service_id": "1", "product_id": "1",
        "period_start": "2026-11-01", "period_end": "2026-11-30", "quantity": "1", "unit_price": "100.00", "tax_rate": "20.00",
        "net": "100.00", "tax": "20.00", "credits": "10.00", "grant_id": "1", "credits_valid_from": AT, "credits_expire_at": LATER,
    }


class Invoice(Out):
    """An invoice with its lines."""

    id: str
    number: str | None
    status: str = Field(description="`draft`, `approved`, `paid` or `void`.")
    kind: str = Field(description="`period`, `supplementary` or `top_up`.")
    account_id: str
    licence_id: str | None
    issue_date: date
    due_date: date = Field(description="Date the payment is due.")
    period_start: date | None
    period_end: date | None
    lines: list[InvoiceLine] = Field(description="The invoice's lines.")
    net: str
    tax: str
    gross: str
    currency: str
    approved_at: datetime | None
    created_at: datetime
    voided_at: datetime | None = Field(description="When the invoice was voided; null unless void.")
    void_reason: str | None = Field(description="Why it was voided, as shown on its document.")
    amount_paid: str = Field(description="What payments have paid of it.")
    amount_credited: str = Field(description="The gross of its approved credit notes.")
    amount_due: str = Field(description="What is left to pay: gross less credited less paid, never below zero (0 for a draft or void invoice).")
    payment_status: str = Field(description="`unpaid`, `partially_paid` or `paid` (nothing left to pay).")
    days_overdue: int = Field(description="Days past the due date with something still due (0 until then).")
    payment_reference: str | None = Field(description="The ISO 11649 RF creditor reference to pay it with; null for a draft.")
    example = {
        "id": "1", "number": "INV-2026-000001", "status": "approved", "kind": "period", "account_id": "1", "licence_id": "1",
        "issue_date": "2026-11-01", "due_date": "2026-11-15", "period_start": "2026-11-01", "period_end": "2026-11-30",
        "lines": [InvoiceLine.example], "net": "100.00", "tax": "20.00", "gross": "120.00", "currency": "EUR",
        "approved_at": AT, "created_at": AT, "voided_at": None, "void_reason": None, "amount_paid": "20.00", "amount_credited": "0.00",
        "amount_due": "100.00", "payment_status": "partially_paid", "days_overdue": 0, "payment_reference": "RF94INV2026000001",
    }


class Mandate(Out):
    """A SEPA direct debit mandate."""

    id: str
    account_id: str
    iban: str = Field(description="The debtor's IBAN (compact).")
    bic: str | None = Field(description="The debtor's bank's BIC, if known.")
    debtor_name: str = Field(description="The account holder, as the collection names them (the account's name).")
    mandate_reference: str = Field(description="The mandate's unique reference.")
    signed_on: date = Field(description="The day the debtor signed it.")
    scheme: str = Field(description="`CORE` or `B2B`.")
    status: str = Field(description="`active` or `revoked`.")
    first_collected_on: date | None = Field(description="The collection date of its first collection (FRST), if any.")
    revoked_at: datetime | None = Field(description="When it was revoked.")
    created_at: datetime
    example = {
        "id": "1", "account_id": "1", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX", "debtor_name": "Acme Ltd",
        "mandate_reference": "LIC-1-1", "signed_on": "2026-12-01", "scheme": "CORE", "status": "active", "first_collected_on": None,
        "revoked_at": None, "created_at": AT,
    }


class DirectDebitItem(Out):
    """One invoice a collection covers."""

    invoice_id: str
    mandate_id: str = Field(description="The mandate it is collected under.")
    payment_id: str = Field(description="The direct-debit payment recorded for it (reverse it for a returned debit).")
    amount: str = Field(description="The amount collected: what was due.")
    sequence: str = Field(description="`FRST` (the mandate's first collection) or `RCUR`.")
    end_to_end_id: str = Field(description="The transaction's end-to-end id in the file (the invoice number).")
    example = {"invoice_id": "1", "mandate_id": "1", "payment_id": "1", "amount": "120.00", "sequence": "FRST", "end_to_end_id": "INV-2026-000001"}


class DirectDebit(Out):
    """A direct-debit collection and its pain.008 file (``GET /direct-debits/{id}.xml``)."""

    id: str
    collection_date: date = Field(description="The day the banks collect.")
    message_id: str = Field(description="The pain.008 file's message id.")
    count: int = Field(description="Invoices collected.")
    total: str = Field(description="Their total.")
    currency: str
    items: list[DirectDebitItem] = Field(description="The invoices collected.")
    created_at: datetime
    created_by: str = Field(description="Who made the collection.")
    example = {
        "id": "1", "collection_date": "2027-01-20", "message_id": "20270116090000-6b1f0c2d9a4e", "count": 1, "total": "120.00",
        "currency": "EUR", "items": [DirectDebitItem.example], "created_at": AT, "created_by": "api-key:billing",
    }


class StatementEntry(Out):
    """A credit entry of an imported bank statement: the payment it became, or why it matched nothing."""

    id: str
    status: str = Field(description="`matched` (recorded as a payment) or `unmatched`.")
    statement_id: str = Field(description="The statement's id (camt.053 `Stmt/Id`).")
    account_iban: str | None = Field(description="The operator's account the statement is of.")
    amount: str = Field(description="The amount credited.")
    currency: str
    booked_on: date = Field(description="The booking date.")
    reference: str | None = Field(description="The structured creditor reference the payer gave (RF ...).")
    remittance: str | None = Field(description="The unstructured remittance text.")
    debtor_name: str | None = Field(description="Who paid, as the bank names them.")
    invoice_id: str | None = Field(description="The invoice it names, if any.")
    payment_id: str | None = Field(description="The payment it was recorded as (matched entries).")
    reason: str | None = Field(description="Why it matched nothing (unmatched entries).")
    created_at: datetime
    example = {
        "id": "1", "status": "matched", "statement_id": "STMT-2027-01-05", "account_iban": "FR1420041010050500013M02606", "amount": "120.00",
        "currency": "EUR", "booked_on": "2027-01-05", "reference": "RF94INV2026000001", "remittance": None, "debtor_name": "Acme Ltd",
        "invoice_id": "1", "payment_id": "1", "reason": None, "created_at": AT,
    }


class StatementImport(Out):
    """What importing a statement did."""

    matched: list[StatementEntry] = Field(description="Entries recorded as payments now.")
    unmatched: list[StatementEntry] = Field(description="Entries recorded now that name no invoice that can take them.")
    already_imported: int = Field(description="Entries an earlier import recorded (nothing done again).")
    example = {"matched": [StatementEntry.example], "unmatched": [], "already_imported": 0}


class Payment(Out):
    """Money received for an invoice, and where it went."""

    id: str
    account_id: str
    invoice_id: str = Field(description="The invoice the payment was recorded against.")
    amount: str = Field(description="The amount received.")
    currency: str
    method: str = Field(description="`bank_transfer`, `card`, `cash`, `direct_debit` or `other`.")
    received_at: datetime = Field(description="When the money was received.")
    reference: str | None = Field(description="The payer's or the bank's reference.")
    status: str = Field(description="`received` or `reversed`.")
    applied: list[dict[str, str]] = Field(description="What each invoice holds of it now (`invoice_id`, `amount`).")
    unapplied: str = Field(description="What of it is the account's unapplied cash now.")
    reversed_at: datetime | None = Field(description="When it was reversed; null unless reversed.")
    reversal_reason: str | None = Field(description="Why it was reversed (refund, returned debit, chargeback ...).")
    recorded_by: str = Field(description="Who recorded it.")
    created_at: datetime
    example = {
        "id": "1", "account_id": "1", "invoice_id": "1", "amount": "150.00", "currency": "EUR", "method": "bank_transfer",
        "received_at": AT, "reference": "SEPA 20261105-77", "status": "received", "applied": [{"invoice_id": "1", "amount": "120.00"}],
        "unapplied": "30.00", "reversed_at": None, "reversal_reason": None, "recorded_by": "api-key:accounting", "created_at": AT,
    }


class Source(Out):
    """What produced a grant or a ledger entry."""

    type: str
    id: str = Field(description="The source's id.")
    example = {"type": "invoice_line", "id": "1"}


class Grant(Out):
    """Credits granted to an account, and what became of them."""

    id: str
    account_id: str
    business_unit_id: str | None
    credits: str = Field(description="Credits granted.")
    remaining: str
    used: str
    held: str
    removed: str
    expired: str
    valid_from: datetime
    expires_at: datetime | None
    value: str = Field(description="What the credits were sold for (net).")
    currency: str
    value_per_credit: str = Field(description="Value of one credit, to six places.")
    source: Source
    created_at: datetime
    example = {
        "id": "1", "account_id": "1", "business_unit_id": None, "credits": "10.00", "remaining": "7.00", "used": "3.00",
        "held": "0.00", "removed": "0.00", "expired": "0.00", "valid_from": AT, "expires_at": LATER, "value": "100.00",
        "currency": "EUR", "value_per_credit": "10.000000", "source": Source.example, "created_at": AT,
    }


class LedgerEntry(Out):
    """One movement of credits."""

    id: str
    kind: str = Field(
        description="`grant`, `consume`, `consume_reversal`, `expire`, `rollover_cut`, `credit_note_reversal`, `adjust_add`, "
        "`adjust_deduct`, `transfer_out`, `transfer_in`, `hold`, `hold_release`, `debt` or `debt_settlement`."
    )
    credits: str = Field(description="Credits moved, signed (negative: out of the grants).")
    balance_after: str = Field(description="The account's available credits after the entry.")
    grant_id: str | None
    business_unit_id: str | None
    source: Source
    actor: str
    occurred_at: datetime = Field(description="When the movement took effect.")
    recorded_at: datetime = Field(description="When it was recorded.")
    example = {
        "id": "2", "kind": "consume", "credits": "-3.00", "balance_after": "7.00", "grant_id": "1", "business_unit_id": None,
        "source": {"type": "consumption", "id": "1"}, "actor": "api-key:frontdesk", "occurred_at": AT, "recorded_at": AT,
    }


class Draw(Out):
    """Credits drawn from one grant."""

    grant_id: str
    credits: str = Field(description="Credits drawn from the grant (positive).")
    example = {"grant_id": "1", "credits": "3.00"}


class Consumption(Out):
    """Credits used, e.g. for a booking."""

    id: str
    account_id: str
    credits: str = Field(description="Credits consumed.")
    business_unit_id: str | None
    member_id: str | None
    credit_price_id: str | None
    quantity: str | None = Field(description="Quantity of the credit-priced service; null when credits were given.")
    description: str | None
    reference: str | None
    occurred_at: datetime
    created_at: datetime
    reversed_at: datetime | None = Field(description="When it was reversed; null unless reversed.")
    status: str = Field(description="`consumed` or `reversed`.")
    debt: str | None = Field(description="Credits consumed past the available credits (overdraft).")
    hold_id: str | None = Field(description="The hold this consumption captured, if any.")
    draws: list[Draw]
    example = {
        "id": "1", "account_id": "1", "credits": "3.00", "business_unit_id": None, "member_id": "1", "credit_price_id": None,
        "quantity": None, "description": "Meeting room, 1.5 hours", "reference": "booking-4711", "occurred_at": AT,
        "created_at": AT, "reversed_at": None, "status": "consumed", "debt": "0.00", "hold_id": None, "draws": [Draw.example],
    }


FIGURES = {"granted": "10.00", "remaining": "7.00", "used": "3.00", "held": "0.00", "removed": "0.00", "debt": "0.00"}


class Figures(Out):
    """Credit figures of a set of grants."""

    granted: str
    remaining: str
    used: str
    held: str
    removed: str
    debt: str
    example = FIGURES


class Expiring(Out):
    """Credits that expire at one moment."""

    credits: str = Field(description="Credits that expire then, unless used.")
    expires_at: datetime = Field(description="When they expire.")
    example = {"credits": "7.00", "expires_at": LATER}


class Pending(Out):
    """Credits granted that may not be used yet."""

    grant_id: str
    credits: str = Field(description="Credits that become usable then.")
    valid_from: datetime
    example = {"grant_id": "2", "credits": "10.00", "valid_from": "2027-01-01T00:00:00+00:00"}


class UnitFigures(Figures):
    """The credit figures of a business unit's grants."""

    business_unit_id: str = Field(description="The business unit's id.")
    name: str = Field(description="The business unit's name.")
    example = {"business_unit_id": "1", "name": "Cardiology"} | FIGURES


class CreditSummary(Out):
    """An account's credits at a moment (SPEC 7)."""

    account_id: str
    at: datetime = Field(description="The moment the figures are for.")
    granted: str
    remaining: str
    used: str
    held: str
    removed: str
    debt: str
    expiring: list[Expiring] = Field(description="Credits that will expire, by moment.")
    pending: list[Pending] = Field(description="Credits granted that may not be used yet.")
    unrestricted: Figures = Field(description="The same figures for grants in no business unit.")
    business_units: list[UnitFigures] = Field(description="The same figures per business unit.")
    example = {
        "account_id": "1", "at": AT, **FIGURES, "expiring": [Expiring.example], "pending": [], "unrestricted": FIGURES,
        "business_units": [],
    }


class Hold(Out):
    """Credits reserved for an event."""

    id: str
    account_id: str
    status: str = Field(description="`open`, `captured` or `released`.")
    credits: str = Field(description="Credits reserved.")
    business_unit_id: str | None
    member_id: str | None
    credit_price_id: str | None
    quantity: str | None = Field(description="Quantity of the credit-priced service; null when credits were given.")
    description: str | None
    reference: str | None
    event_at: datetime = Field(description="When the event takes place.")
    deadline: datetime | None = Field(description="When an open hold is released by itself.")
    consumption_id: str | None = Field(description="The consumption a captured hold became.")
    created_at: datetime
    closed_at: datetime | None = Field(description="When it was captured or released.")
    draws: list[Draw]
    example = {
        "id": "1", "account_id": "1", "status": "open", "credits": "2.00", "business_unit_id": None, "member_id": None,
        "credit_price_id": "1", "quantity": "1", "description": None, "reference": "booking-4712", "event_at": "2026-12-02T09:00:00+00:00",
        "deadline": None, "consumption_id": None, "created_at": AT, "closed_at": None, "draws": [{"grant_id": "1", "credits": "2.00"}],
    }


class AdjustedGrant(Out):
    """Credits an adjustment added to or deducted from one grant."""

    grant_id: str
    credits: str = Field(description="Credits added to or deducted from the grant.")
    example = {"grant_id": "3", "credits": "5.00"}


class Adjustment(Out):
    """Credits added or deducted by an operator."""

    id: str
    account_id: str
    kind: str = Field(description="`add` or `deduct`.")
    credits: str = Field(description="Credits added or deducted.")
    reason: str
    lifetime: str | None
    business_unit_id: str | None
    actor: str
    created_at: datetime
    grants: list[AdjustedGrant] = Field(description="The grants made or drawn from.")
    example = {
        "id": "1", "account_id": "1", "kind": "add", "credits": "5.00", "reason": "goodwill", "lifetime": "P3M",
        "business_unit_id": None, "actor": "api-key:office", "created_at": AT, "grants": [AdjustedGrant.example],
    }


class Move(Out):
    """Credits moved from one grant to a new one."""

    from_grant_id: str = Field(description="The grant drawn from.")
    to_grant_id: str = Field(description="The grant made in the receiving account.")
    credits: str = Field(description="Credits moved.")
    example = {"from_grant_id": "1", "to_grant_id": "4", "credits": "2.00"}


class Transfer(Out):
    """Credits moved between accounts or business units."""

    id: str
    from_account_id: str = Field(description="The account the credits leave.")
    to_account_id: str = Field(description="The account the credits go to.")
    from_business_unit_id: str | None = Field(description="The business unit the credits leave; null: unrestricted credits.")
    to_business_unit_id: str | None = Field(description="The business unit the credits go to; null: unrestricted.")
    credits: str = Field(description="Credits moved.")
    reason: str
    actor: str
    created_at: datetime
    moves: list[Move] = Field(description="The credits moved, grant by grant.")
    example = {
        "id": "1", "from_account_id": "1", "to_account_id": "2", "from_business_unit_id": None, "to_business_unit_id": None,
        "credits": "2.00", "reason": "merger", "actor": "api-key:office", "created_at": AT, "moves": [Move.example],
    }


class CreditNoteLine(Out):
    """A line of a credit note."""

    id: str
    invoice_line_id: str = Field(description="The invoice line credited.")
    description: str = Field(description="What the line credits.")
    quantity: str | None = Field(description="Quantity credited, in the invoice line's units.")
    unit_price: str | None
    tax_rate: str
    net: str = Field(description="Net amount credited (positive).")
    tax: str = Field(description="Tax credited (positive).")
    credits_taken_back: str | None = Field(description="Credits taken back: null until approved, 0 on service lines.")
    example = {
        "id": "1", "invoice_line_id": "1", "description": "10 credits (November 2026)", "quantity": "0.5", "unit_price": "100.00",
        "tax_rate": "20.00", "net": "50.00", "tax": "10.00", "credits_taken_back": None,
    }


class CreditNote(Out):
    """A credit note correcting an approved invoice."""

    id: str
    number: str | None
    status: str = Field(description="`draft` or `approved`.")
    invoice_id: str = Field(description="The invoice credited.")
    invoice_number: str | None = Field(description="The credited invoice's number.")
    account_id: str
    reason: str
    credit_policy: str = Field(description="`strict` (refuse if the credits were used) or `cap_to_remaining`.")
    issue_date: date
    currency: str
    lines: list[CreditNoteLine] = Field(description="The credit note's lines.")
    net: str = Field(description="Net amount credited (positive).")
    tax: str = Field(description="Tax credited (positive).")
    gross: str = Field(description="Gross amount credited (positive).")
    approved_at: datetime | None
    created_at: datetime
    amount_paid: str = Field(description="What has been paid back for it through the engine (always 0.00: refunds are made outside it).")
    amount_due: str = Field(
        description="What is still owed back to the member: the part of the credit its invoice could not absorb because it had been paid."
    )
    payment_status: str = Field(description="`paid` (nothing owed back) or `unpaid` (a refund to make).")
    days_overdue: int = Field(description="Always 0 for a credit note.")
    payment_reference: str | None = Field(description="Always null for a credit note.")
    example = {
        "id": "1", "number": None, "status": "draft", "invoice_id": "1", "invoice_number": "2026-0001", "account_id": "1",
        "reason": "half the pack was never delivered", "credit_policy": "strict", "issue_date": "2026-12-01", "currency": "EUR",
        "lines": [CreditNoteLine.example], "net": "50.00", "tax": "10.00", "gross": "60.00", "approved_at": None, "created_at": AT,
        "amount_paid": "0.00", "amount_due": "0.00", "payment_status": "paid", "days_overdue": 0, "payment_reference": None,
    }


class LiabilityAccount(Out):
    """One account's outstanding credits."""

    account_id: str
    account_name: str | None
    credits: str = Field(description="Credits outstanding.")
    value: str = Field(description="Their value, at what they were sold for.")
    example = {"account_id": "1", "account_name": "Acme Ltd", "credits": "7.00", "value": "70.00"}


class LiabilityCurrency(Out):
    """Outstanding credits in one currency."""

    currency: str
    credits: str = Field(description="Credits outstanding.")
    value: str = Field(description="Their value, at what they were sold for.")
    accounts: list[LiabilityAccount] = Field(description="Per account.")
    example = {"currency": "EUR", "credits": "7.00", "value": "70.00", "accounts": [LiabilityAccount.example]}


class LiabilityReport(Out):
    """Outstanding credits and their value at a moment."""

    as_of: datetime
    currencies: list[LiabilityCurrency] = Field(description="Per currency.")
    example = {"as_of": AT, "currencies": [LiabilityCurrency.example]}


AGEING = {"current": "120.00", "1-30": "0.00", "31-60": "372.00", "61-90": "0.00", "90+": "0.00"}


class ReceivablesAccount(Out):
    """What one account has due, by days past the due date."""

    account_id: str
    account_name: str | None
    total: str = Field(description="Everything due.")
    buckets: dict[str, str] = Field(description="Due per bucket: `current` (not yet past due), `1-30`, `31-60`, `61-90`, `90+` days.")
    example = {"account_id": "1", "account_name": "Acme Ltd", "total": "492.00", "buckets": AGEING}


class ReceivablesCurrency(Out):
    """What is due in one currency."""

    currency: str
    total: str = Field(description="Everything due in this currency.")
    buckets: dict[str, str] = Field(description="Due per bucket, every account together.")
    accounts: list[ReceivablesAccount] = Field(description="Per account with something due, by id.")
    example = {"currency": "EUR", "total": "492.00", "buckets": AGEING, "accounts": [ReceivablesAccount.example]}


class ReceivablesReport(Out):
    """Open amounts of approved invoices at a date, in ageing buckets."""

    as_of: date = Field(description="The date: the books as they stood at its end (the operator's zone).")
    currencies: list[ReceivablesCurrency] = Field(description="Per currency.")
    example = {"as_of": "2027-02-20", "currencies": [ReceivablesCurrency.example]}


class JournalPostingOut(Out):
    """One side of a journal entry."""

    account: str = Field(description="The ledger account's code in the chart of accounts.")
    account_name: str = Field(description="The ledger account's name.")
    role: str = Field(description="What the account is for (the chart maps each role to a code).")
    debit: str = Field(description="Amount debited (`\"0.00\"` when credited).")
    credit: str = Field(description="Amount credited (`\"0.00\"` when debited).")
    currency: str
    tax_rate: str | None = Field(description="The VAT rate of revenue and VAT postings of invoices and credit notes, else null.")
    example = {"account": "1100", "account_name": "Accounts receivable", "role": "receivables", "debit": "119.00", "credit": "0.00",
               "currency": "EUR", "tax_rate": None}


class JournalEntryOut(Out):
    """One balanced entry of the journal (SPEC 11)."""

    id: str
    date: _dt.date = Field(description="The day it posts on (the operator's zone).")
    event: str = Field(description="`invoice_approved`, `credits_used`, `credits_returned`, `credits_expired`, `credits_cut`, "
                       "`credit_note_approved`, `invoice_voided`, `payment_received`, `payment_reversed`, `unapplied_cash_applied`, "
                       "`credits_granted_on_payment`, `credits_taken_back_on_reopening`.")
    source: dict[str, str] = Field(description="`{type, id}`: what it records (invoice, credit_note, consumption, payment, grant, ...).")
    description: str
    document: str | None = Field(description="The invoice or credit note number it belongs to.")
    account_id: str | None = Field(description="The member account it concerns.")
    currency: str
    postings: list[JournalPostingOut] = Field(description="Debits equal credits.")
    example = {"id": "1", "date": "2027-01-01", "event": "invoice_approved", "source": {"type": "invoice", "id": "7"},
               "description": "Invoice INV-2027-000001", "document": "INV-2027-000001", "account_id": "1", "currency": "EUR",
               "postings": [JournalPostingOut.example]}


class JournalPage(Out):
    """Journal entries, oldest first."""

    items: list[JournalEntryOut]
    next_cursor: str | None = Field(description="Pass as `?cursor=` for the next page; null on the last.")
    example = {"items": [JournalEntryOut.example], "next_cursor": None}


class TrialBalanceLine(Out):
    """The balance of one ledger account in one currency."""

    account: str = Field(description="The account's code.")
    account_name: str
    currency: str
    debit: str = Field(description="Its debit balance (or `\"0.00\"`).")
    credit: str = Field(description="Its credit balance (or `\"0.00\"`).")
    example = {"account": "1100", "account_name": "Accounts receivable", "currency": "EUR", "debit": "119.00", "credit": "0.00"}


class TrialBalanceTotal(Out):
    """Debits and credits of one currency: always equal."""

    currency: str
    debit: str = Field(description="The debit balances of its accounts, together.")
    credit: str = Field(description="The credit balances of its accounts, together.")
    example = {"currency": "EUR", "debit": "119.00", "credit": "119.00"}


class TrialBalance(Out):
    """The balance of each ledger account at the end of a day."""

    as_of: date = Field(description="Entries dated up to this day count.")
    lines: list[TrialBalanceLine] = Field(description="By account code and currency; accounts with a zero balance are left out.")
    totals: list[TrialBalanceTotal] = Field(description="Per currency.")
    example = {"as_of": "2027-01-31", "lines": [TrialBalanceLine.example], "totals": [TrialBalanceTotal.example]}


class ChartOfAccounts(Out):
    """The ledger account of each role."""

    preset: str = Field(description="`plain`, `skr03` or `skr04`: what the accounts not set explicitly come from.")
    accounts: dict[str, dict[str, str]] = Field(description="Role -> `{code, name}`.")
    vat_payable: dict[str, dict[str, str]] = Field(description="VAT rate -> `{code, name}` (other rates: the vat_payable role's).")
    tax_keys: dict[str, str] = Field(description="VAT rate -> DATEV BU-Schlüssel of revenue lines in the DATEV export.")
    roles: dict[str, str] = Field(description="Role -> what it is for.")
    example = {"preset": "plain", "accounts": {"receivables": {"code": "1100", "name": "Accounts receivable"}}, "vat_payable": {},
               "tax_keys": {}, "roles": {"receivables": "What accounts owe on approved invoices (gross)"}}


class LockDate(Out):
    """The lock date of the books."""

    lock_date: date | None = Field(description="Nothing posts on or before it; null: none.")
    example = {"lock_date": "2027-01-31"}


class RevenueMonth(Out):
    """Revenue recognised in one month (or the total of the range)."""

    month: str = Field(description="The month, `YYYY-MM` (in a total: the range).")
    consumed_credits: str = Field(description="Credits consumed.")
    consumed_value: str = Field(description="Value of the credits consumed.")
    expired_credits: str = Field(description="Credits that expired.")
    expired_value: str = Field(description="Value of the credits that expired.")
    recognised_value: str = Field(description="Revenue recognised: consumed plus expired value.")
    sold_credits: str = Field(description="Credits granted by approved invoices.")
    sold_value: str = Field(description="Value of the credits sold.")
    taken_back_credits: str = Field(description="Credits taken back by credit notes.")
    taken_back_value: str = Field(description="Value of the credits taken back.")
    example = {
        "month": "2026-11", "consumed_credits": "3.00", "consumed_value": "30.00", "expired_credits": "0.00", "expired_value": "0.00",
        "recognised_value": "30.00", "sold_credits": "10.00", "sold_value": "100.00", "taken_back_credits": "0.00",
        "taken_back_value": "0.00",
    }


class RevenueCurrency(Out):
    """Revenue in one currency."""

    currency: str
    months: list[RevenueMonth] = Field(description="Per month of the range.")
    total: RevenueMonth = Field(description="The whole range.")
    example = {"currency": "EUR", "months": [RevenueMonth.example], "total": RevenueMonth.example}


class RevenueReport(Out):
    """Revenue recognised per month."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", description="First day of the range.")
    to: date = Field(description="Last day of the range (inclusive).")
    currencies: list[RevenueCurrency] = Field(description="Per currency.")
    example = {"from": "2026-11-01", "to": "2026-11-30", "currencies": [RevenueCurrency.example]}


class BillingFailure(Out):
    """A licence the billing run could not bill."""

    licence_id: str
    error: str = Field(description="Why it could not be billed.")
    example = {"licence_id": "7", "error": "product 3 is priced in CHF, the account in EUR"}


class BillingRun(Out):
    """What one billing run did."""

    as_of: date = Field(description="The day invoices were generated up to.")
    invoices_created: int = Field(description="Invoices this run created (a repeat reports 0).")
    invoices_approved: int = Field(description="Invoices this run approved.")
    failed: list[BillingFailure] = Field(description="Licences that could not be billed; the others were.")
    example = {"as_of": "2026-12-01", "invoices_created": 12, "invoices_approved": 4, "failed": []}


class ApiKey(Out):
    """An API key as lists show it: never its secret nor its hash."""

    id: str
    name: str
    role: str = Field(description="`admin`, `billing`, `bookings` or `read`.")
    status: str = Field(description="`active`, `expired` or `revoked`.")
    account_ids: list[str] | None = Field(description="The accounts a scoped key is limited to; null: every account.")
    created_at: datetime
    expires_at: datetime | None = Field(description="When the key stops working; null: never.")
    revoked_at: datetime | None = Field(description="When it was revoked; null unless revoked.")
    example = {
        "id": "3", "name": "frontdesk", "role": "bookings", "status": "active", "account_ids": None, "created_at": AT,
        "expires_at": None, "revoked_at": None,
    }


class ApiKeyCreated(ApiKey):
    """A new API key, with its secret: shown in this answer only."""

    key: str = Field(description="The secret to send as `Authorization: Bearer <key>`; shown only once.")
    example = ApiKey.example | {"key": "lic_4f1c0e6b9a2d47c8b3e5a7d9c1f0e2b4"}


class Webhook(Out):
    """A webhook endpoint."""

    id: str
    url: str = Field(description="Where events are POSTed.")
    events: list[str] = Field(description="The event types delivered, or `[\"*\"]` for all.")
    created_at: datetime
    deleted_at: datetime | None = Field(description="When it was deleted; null unless deleted.")
    example = {"id": "1", "url": "https://books.example.com/hooks/licensing", "events": ["invoice.approved"], "created_at": AT, "deleted_at": None}


class WebhookCreated(Webhook):
    """A new webhook endpoint, with the secret that signs its deliveries: shown in this answer only."""

    secret: str = Field(description="The key of the `Licensing-Signature` HMAC; shown only once.")
    example = Webhook.example | {"secret": "whsec_8d3a0f6c2b1e4d7a9c5b3e1f0a2d4c6b"}


class Delivery(Out):
    """An event's delivery to one webhook."""

    webhook_id: str = Field(description="The webhook's id.")
    status: str = Field(description="`pending`, `delivered` or `failed`.")
    attempts: int = Field(description="Attempts made so far.")
    last_error: str | None = Field(description="The last attempt's failure, if any.")
    last_status_code: int | None = Field(description="The HTTP status the last attempt got, if any.")
    next_attempt_at: datetime | None = Field(description="When the next attempt is due, if any.")
    delivered_at: datetime | None = Field(description="When it was delivered, if it was.")
    example = {
        "webhook_id": "1", "status": "delivered", "attempts": 1, "last_error": None, "last_status_code": 200,
        "next_attempt_at": None, "delivered_at": AT,
    }


class Event(Out):
    """An event of the log (outbox), with its deliveries."""

    id: str
    type: str = Field(description="The event type, e.g. `invoice.approved`.")
    created_at: datetime
    data: dict[str, Any] = Field(description="The event's payload, as delivered.")
    deliveries: list[Delivery] = Field(description="Its deliveries to webhooks.")
    example = {"id": "1", "type": "invoice.approved", "created_at": AT, "data": {"invoice_id": "1"}, "deliveries": [Delivery.example]}


def _page(model: type[Out], name: str, what: str) -> type[Out]:
    """``{"items": [...], "next_cursor": ...}`` of ``model``."""
    page = type(
        name,
        (Out,),
        {
            "__doc__": f"A page of {what}.",
            "__annotations__": {"items": list[model], "next_cursor": str | None},
            "example": {"items": [model.example], "next_cursor": None},
            "__module__": __name__,
        },
    )
    return page


AccountPage = _page(AccountWithCredits, "AccountPage", "accounts")
StatementEntryPage = _page(StatementEntry, "StatementEntryPage", "bank statement entries")
PaymentPage = _page(Payment, "PaymentPage", "payments")
MandatePage = _page(Mandate, "MandatePage", "mandates")
BusinessUnitPage = _page(BusinessUnit, "BusinessUnitPage", "business units")
MemberPage = _page(Member, "MemberPage", "members")
ProductPage = _page(Product, "ProductPage", "products")
CreditPricePage = _page(CreditPrice, "CreditPricePage", "credit prices")
LicencePage = _page(Licence, "LicencePage", "licences")
ServicePage = _page(Service, "ServicePage", "contract services")
InvoicePage = _page(Invoice, "InvoicePage", "invoices")
CreditNotePage = _page(CreditNote, "CreditNotePage", "credit notes")
GrantPage = _page(Grant, "GrantPage", "grants")
LedgerPage = _page(LedgerEntry, "LedgerPage", "ledger entries, oldest first")
HoldPage = _page(Hold, "HoldPage", "holds")
WebhookPage = _page(Webhook, "WebhookPage", "webhooks")
EventPage = _page(Event, "EventPage", "events, oldest first")
ApiKeyPage = _page(ApiKey, "ApiKeyPage", "API keys")


def ok(model: type[Out], description: str, status: int = 200, csv: str | None = None) -> dict[int, dict]:
    """The success answer of a route, documented without being applied: the route's own dict
    is answered as it is (never filtered nor re-validated by FastAPI). ``csv``: the route also
    answers ``text/csv`` (with ``?format=csv``), as this says."""
    answer: dict[str, Any] = {"model": model, "description": description}
    if csv:
        answer["content"] = {"text/csv": {"schema": {"type": "string", "description": csv}}}
    return {status: answer}


# ---- problems ------------------------------------------------------------------------------


class ProblemField(BaseModel):
    """One offending field."""

    field: str = Field(description="The field, dotted for nested ones (`lines.0.amount`); a query parameter by its name.")
    message: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An RFC 9457 problem: every error of this API."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://licensing.dev/problems/insufficient-credits", "title": "Insufficient credits", "status": 409,
                    "detail": "account 1 has 2.00 credits available, 3.00 requested", "code": "insufficient_credits",
                    "credits_requested": "3.00", "credits_available": "2.00",
                }
            ]
        },
    )

    type: str = Field(description="URI of the problem type, `https://licensing.dev/problems/<code with hyphens>`.")
    title: str = Field(description="Short, human-readable summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="Human-readable explanation of this occurrence.")
    code: str = Field(description="Stable machine-readable code, e.g. `insufficient_credits`.")
    errors: list[ProblemField] | None = Field(None, description="For `validation_error`: the offending fields.")


def _titles() -> dict[str, str]:
    titles, pending = {}, [business_errors.LicensingError]
    while pending:
        cls = pending.pop()
        titles.setdefault(cls.code, cls.title)
        pending.extend(cls.__subclasses__())
    return titles


TITLES = _titles() | {"unauthorized": api_errors.Unauthorized.title, "forbidden": api_errors.Forbidden.title}

# An example ``detail`` per code; what a code means to a client.
DETAILS = {
    "validation_error": "invalid email",
    "unknown_reference": "product 99 does not exist",
    "not_found": "account 99 does not exist",
    "unauthorized": "an Authorization: Bearer <api key> header is required",
    "forbidden": "role 'read' may not do this (needs admin or billing)",
    "insufficient_credits": "account 1 has 2.00 credits available, 3.00 requested",
    "invoice_not_draft": "invoice 1 is void and cannot be approved",
    "credits_already_consumed": "the credits of invoice line 1 have been consumed",
    "idempotency_conflict": "Idempotency-Key 'abc' was used with another request",
    "consumption_reversed": "consumption 1 is already reversed",
    "conflict": "account 1 already has a business unit named 'Cardiology'",
    "hold_not_open": "hold 1 is captured and cannot be released",
    "einvoice_unavailable": "invoice 2026-0001 cannot be an EN 16931 e-invoice: the account has no country",
    "invoice_credited": "invoice 1 is covered by credit note(s) 1",
    "credit_note_not_draft": "credit note 1 is approved",
    "currency_mismatch": "product 3 is priced in CHF, the account in EUR",
    "webhook_url_forbidden": "the webhook URL resolves to a private address",
    "licence_already_billed": "licence 1 has billed periods that this change would bill again",
    "service_already_billed": "contract service 1 has billed lines that this change would bill again",
    "database_unavailable": "the database cannot be reached at the moment; nothing was written; retry shortly",
}

STATUS_TEXT = {
    401: "Missing, unknown, revoked or expired API key (`unauthorized`).",
    403: "The key's role (or its account scope) does not allow the call (`forbidden`).",
    404: "No such resource, or one outside the key's accounts (`not_found`).",
    409: "Refused by a business rule",
    422: "Invalid input",
    503: "The database cannot be reached; retry after `Retry-After` seconds (`database_unavailable`).",
}

# Used by most routes.
AUTH = ("unauthorized", "forbidden")
ALWAYS = ("validation_error", "database_unavailable")


def problem_example(code: str) -> dict[str, Any]:
    status = STATUS_BY_CODE.get(code, 409)
    body = {
        "type": f"https://licensing.dev/problems/{code.replace('_', '-')}", "title": TITLES.get(code, "Request refused"),
        "status": status, "detail": DETAILS.get(code, TITLES.get(code, code)), "code": code,
    }
    if code == "validation_error":
        body["errors"] = [{"field": "email", "message": "String should match pattern '^[^@\\s]+@[^@\\s]+$'"}]
    return body


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_response(status: int, codes: list[str]) -> dict[str, Any]:
    """One status's problem answer, with an example per code."""
    text = STATUS_TEXT.get(status, "Refused")
    if status in (409, 422):
        text = f"{text}: " + ", ".join(f"`{code}`" for code in codes) + "."
    return {
        "description": text,
        "content": {
            PROBLEM: {
                "schema": dict(PROBLEM_REF),
                "examples": {code: {"summary": TITLES.get(code, code), "value": problem_example(code)} for code in codes},
            }
        },
    }


def problems(*codes: str) -> dict[int, dict]:
    """The ``responses=`` of the problems a route may answer, by code (see ``STATUS_BY_CODE``):
    ``validation_error`` (422) and ``database_unavailable`` (503) are always added."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, *ALWAYS):
        codes_of = by_status.setdefault(STATUS_BY_CODE.get(code, 409), [])
        if code not in codes_of:
            codes_of.append(code)
    return {status: problem_response(status, by_status[status]) for status in sorted(by_status)}


def documented(model: type[Out], description: str, *codes: str, status: int = 200, csv: str | None = None) -> dict[int, dict]:
    """``ok(model, description)`` and ``problems(*codes)``, for a route's ``responses=``."""
    return ok(model, description, status, csv) | problems(*codes)


def finish_document(document: dict[str, Any]) -> dict[str, Any]:
    """Post-process FastAPI's OpenAPI document: the Problem schema in the components, every
    operation's 422 and 503 as application/problem+json (FastAPI's ``HTTPValidationError``
    replaced), and its validation schemas removed once unused."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            answers = operation["responses"]
            current = answers.get("422", {}).get("content", {})
            if PROBLEM not in current:
                answers["422"] = problem_response(422, ["validation_error"])
            if "503" not in answers:
                answers["503"] = problem_response(503, ["database_unavailable"])
    text = repr(document["paths"])
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and f"#/components/schemas/{name}'" not in text and not _referenced(schemas, name):
            del schemas[name]
    return document


def _referenced(schemas: dict[str, Any], name: str) -> bool:
    ref = f"#/components/schemas/{name}'"
    return any(ref in repr(schema) for other, schema in schemas.items() if other not in (name, "HTTPValidationError"))

