"""What an invoice or credit note document says, independent of its form (HTML/PDF or EN 16931
XML): both forms are rendered from the same ``Document``, so they cannot disagree.

Every text a document holds is text every form can carry: building a ``Party``, a ``Line`` or a
``Document`` drops the characters XML 1.0 cannot hold (C0 controls but tab, line feed and
carriage return, NUL among them; the non-characters U+FFFE and U+FFFF; lone surrogates). They
have no glyph and no meaning on an invoice, and one of them in a name stored before the API
refused them (or written by another path) would otherwise make the XML, the PDF that embeds it
and the mail fail for good: an approved document always renders."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from licensing.invoicing.tax import EXEMPT, REVERSE_CHARGE, STANDARD, ZERO_RATED  # noqa: F401 - the categories, re-exported

EXEMPTION_REASONS = {EXEMPT: "Exempt from VAT", REVERSE_CHARGE: "Reverse charge"}
EXEMPTION_CODES = {EXEMPT: "VATEX-EU-132", REVERSE_CHARGE: "VATEX-EU-AE"}

# What XML 1.0 cannot hold (its Char production allows #x9 #xA #xD, #x20-#xD7FF, #xE000-#xFFFD
# and #x10000-#x10FFFF).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str | None) -> str | None:
    """``text`` without the characters XML 1.0 cannot hold (None stays None)."""
    return _NOT_XML.sub("", text) if text else text


def _clean(item, *names: str) -> None:
    for name in names:
        object.__setattr__(item, name, xml_text(getattr(item, name)))


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    address_lines: tuple[str, ...] = ()
    country: str | None = None  # ISO 3166-1 alpha-2
    tax_id: str | None = None  # VAT id
    email: str | None = None
    iban: str | None = None  # the seller's bank account, when the operator set one
    bic: str | None = None

    def __post_init__(self) -> None:
        _clean(self, "name", "country", "tax_id", "email", "iban", "bic")
        object.__setattr__(self, "name", self.name or "")
        object.__setattr__(self, "address_lines", tuple(line for line in map(xml_text, self.address_lines) if line and line.strip()))


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
    business_unit: str | None = None  # the name of the account's unit the line is for

    def __post_init__(self) -> None:
        _clean(self, "description", "business_unit")


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
    voided_on: date | None = None  # a void invoice: the day it was voided (operator's zone)
    void_reason: str | None = None  # and why, when the operator said
    payment_reference: str | None = None  # ISO 11649 RF reference of an approved invoice
    amount_due: Decimal | None = None  # what is left to pay (invoices), when the document was made

    def __post_init__(self) -> None:
        _clean(self, "number", "status", "currency", "payment_terms", "credited_invoice_number", "reason", "void_reason")
        object.__setattr__(self, "notes", tuple(map(xml_text, self.notes)))

    @property
    def type_code(self) -> str:
        """UNTDID 1001: 380 commercial invoice, 381 credit note."""
        return "381" if self.kind == "credit_note" else "380"

    @property
    def is_void(self) -> bool:
        return self.status == "void"

    @property
    def title(self) -> str:
        return "Credit note" if self.kind == "credit_note" else "Invoice"

    @property
    def file_name(self) -> str:
        return f"{self.number or f'draft-{self.kind}-{self.id}'}.pdf"

    @property
    def is_paid(self) -> bool:
        return self.status == "paid"

    @property
    def payment_qr(self) -> str | None:
        """The EPC QR code's payload (EPC069-12, version 002: a SEPA credit transfer a banking app
        fills in) of an approved EUR invoice with something due and the seller's IBAN; else None."""
        if self.kind != "invoice" or self.currency != "EUR" or not self.seller.iban or not self.payment_reference:
            return None
        if self.amount_due is None or self.amount_due <= 0 or self.amount_due > Decimal("999999999.99"):
            return None
        return epc_payload(
            name=self.seller.name, iban=self.seller.iban, bic=self.seller.bic, amount=self.amount_due, reference=self.payment_reference
        )


def epc_payload(*, name: str, iban: str, bic: str | None, amount: Decimal, reference: str) -> str:
    """EPC069-12 "Quick Response Code: guidelines to enable data capture for the initiation of a
    SEPA credit transfer", version 002, UTF-8: service tag BCD, version, character set 1 (UTF-8),
    identification SCT, BIC (optional in 002), beneficiary name (at most 70 characters), IBAN,
    EUR amount, purpose (none), structured remittance (the RF reference), no unstructured text."""
    beneficiary = " ".join(name.split())[:70]
    return "\n".join(["BCD", "002", "1", "SCT", bic or "", beneficiary, iban, f"EUR{amount.quantize(Decimal('0.01'))}", "", reference])
