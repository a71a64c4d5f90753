"""What an invoice or credit note document says, independent of its form (HTML/PDF or EN 16931
XML): both forms are rendered from the same ``Document``, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from licensing.invoicing.tax import EXEMPT, REVERSE_CHARGE, STANDARD, ZERO_RATED  # noqa: F401 - the categories, re-exported

EXEMPTION_REASONS = {EXEMPT: "Exempt from VAT", REVERSE_CHARGE: "Reverse charge"}
EXEMPTION_CODES = {EXEMPT: "VATEX-EU-132", REVERSE_CHARGE: "VATEX-EU-AE"}


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    address_lines: tuple[str, ...] = ()
    country: str | None = None  # ISO 3166-1 alpha-2
    tax_id: str | None = None  # VAT id
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1, 2, ... in the order shown
    description: str
    period_start: date
    period_end: date
    quantity: Decimal
    unit_price: Decimal  # net price of one unit (what the line's net would be for quantity 1)
    tax_rate: Decimal  # percent
    tax_category: str
    net: Decimal
    tax: Decimal
    credits: Decimal | None = None  # credit packs: credits granted (or taken back by a credit note)
    credits_expire_on: date | None = None  # the date the credits stop (00:00, operator's zone)
    invoice_line_id: int | None = None


@dataclass(frozen=True, slots=True)
class TaxSummary:
    category: str
    rate: Decimal
    net: Decimal
    tax: Decimal

    @property
    def exemption_reason(self) -> str | None:
        return EXEMPTION_REASONS.get(self.category)

    @property
    def exemption_code(self) -> str | None:
        return EXEMPTION_CODES.get(self.category)


@dataclass(frozen=True, slots=True)
class Document:
    kind: str  # "invoice" or "credit_note"
    id: int
    number: str | None  # None while a draft
    status: str
    issue_date: date
    due_date: date | None
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    taxes: tuple[TaxSummary, ...]
    net: Decimal
    tax: Decimal
    gross: Decimal
    payment_terms: str
    period_start: date | None = None
    period_end: date | None = None
    credited_invoice_number: str | None = None  # credit notes: the invoice they credit
    credited_invoice_date: date | None = None
    reason: str | None = None
    account_id: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def type_code(self) -> str:
        """UNTDID 1001: 380 commercial invoice, 381 credit note."""
        return "381" if self.kind == "credit_note" else "380"

    @property
    def title(self) -> str:
        return "Credit note" if self.kind == "credit_note" else "Invoice"

    @property
    def file_name(self) -> str:
        return f"{self.number or f'draft-{self.kind}-{self.id}'}.pdf"
