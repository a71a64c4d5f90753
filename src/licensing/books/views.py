"""The journal as read: entries with their postings resolved to the chart's accounts. What the
API shows, the trial balance sums and every export format writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class PostingView:
    role: str  # chart.ROLES
    account: str  # the chart's code for the role (and rate, for VAT)
    account_name: str
    debit: Decimal  # one of debit and credit is zero; both >= 0, at the currency's places
    credit: Decimal
    currency: str
    # The tax rate (percent, "19.00") of revenue, deferred revenue and allowance postings made
    # by invoices, credit notes and voids, and of VAT payable postings; None elsewhere.
    tax_rate: Decimal | None = None


@dataclass(frozen=True, slots=True)
class EntryView:
    id: int
    date: date
    currency: str
    event: str  # invoice_approved, credits_consumed, credits_expired, credit_note_approved, invoice_voided, payment_received, ...
    source_type: str  # invoice, credit_note, consumption, payment, grant, adjustment, ...
    source_id: str
    description: str
    account_id: int | None  # the member account it concerns (None for none)
    account_name: str | None
    document: str | None  # the invoice or credit note number it belongs to, when there is one
    postings: tuple[PostingView, ...]
