"""Building the ``Document`` of an invoice or a credit note from the database.

An approved (or void) document shows the seller and the buyer it was issued to, as approval kept
them (``seller_details``/``buyer_details``), and the VAT treatment it was issued under: renaming
the account or changing the operator's settings later changes drafts only. Documents approved
before approval kept them (the columns are empty) show the live details, as they always did.
A credit note's lines take the VAT treatment of the invoice they credit.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

from sqlmodel import Session, col, select

from licensing.accounts.models import Account, BusinessUnit
from licensing.clock import local_date
from licensing.config import Settings, get_settings
from licensing.credits.models import Grant
from licensing.documents.model import (
    STANDARD,
    ZERO_RATED,
    Document,
    Line,
    Party,
    TaxSummary,
)
from licensing.invoicing import pricing
from licensing.invoicing.approval import buyer_fields, seller_fields
from licensing.invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from licensing.invoicing.payments import amount_due
from licensing.invoicing.references import invoice_reference
from licensing.invoicing.tax import tax_treatment
from licensing.money import ZERO


def _category(treatment: str, rate: Decimal) -> str:
    if treatment != STANDARD:
        return treatment
    return STANDARD if rate > 0 else ZERO_RATED


def seller(settings: Settings) -> Party:
    """The seller as the operator's settings say now."""
    return _party(seller_fields(settings))


def buyer(account: Account) -> Party:
    """The buyer as the account says now."""
    return _party(buyer_fields(account))


def _party(fields: dict) -> Party:
    return Party(
        name=fields.get("name") or "", address_lines=tuple(fields.get("address_lines") or ()), country=fields.get("country"),
        tax_id=fields.get("tax_id"), email=fields.get("email"), iban=fields.get("iban"), bic=fields.get("bic"),
    )


def _issued(details: str | None) -> dict | None:
    """The details approval kept (None for a draft, or a document approved before it kept them)."""
    return json.loads(details) if details else None


def _parties(row: Invoice | CreditNote, account: Account, settings: Settings) -> tuple[Party, Party, str | None]:
    """(seller, buyer, VAT treatment or None) of a document: as issued when approval kept them."""
    issued_seller, issued_buyer = _issued(row.seller_details), _issued(row.buyer_details)
    return (
        _party(issued_seller) if issued_seller is not None else seller(settings),
        _party(issued_buyer) if issued_buyer is not None else buyer(account),
        issued_buyer.get("tax_treatment") if issued_buyer is not None else None,
    )


def _taxes(lines: list[Line], currency: str) -> tuple[tuple[TaxSummary, ...], Decimal, Decimal, Decimal]:
    grouped: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        grouped[(line.tax_category, line.tax_rate.normalize())] += line.net
    taxes = tuple(
        TaxSummary(category, rate, net, pricing.tax_of(net, rate, currency))
        for (category, rate), net in sorted(grouped.items(), key=lambda item: (item[0][1], item[0][0]))
    )
    net = sum((item.net for item in taxes), ZERO)
    tax = sum((item.tax for item in taxes), ZERO)
    return taxes, net, tax, net + tax


def _unit_names(session: Session, lines: list[InvoiceLine]) -> dict[int, str]:
    """The names of the business units ``lines`` are for, by id (as the units are named now)."""
    ids = {line.business_unit_id for line in lines if line.business_unit_id is not None}
    if not ids:
        return {}
    return {unit.id: unit.name for unit in session.exec(select(BusinessUnit).where(col(BusinessUnit.id).in_(ids))).all()}


def invoice_document(session: Session, invoice: Invoice, settings: Settings | None = None) -> Document:
    settings = settings or get_settings()
    account = session.get(Account, invoice.account_id)
    seller_party, buyer_party, treatment = _parties(invoice, account, settings)
    treatment = treatment or tax_treatment(account, settings)
    rows = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all()
    expiries = {
        grant.invoice_line_id: grant.expires_at
        for grant in session.exec(select(Grant).where(col(Grant.invoice_line_id).in_([row.id for row in rows]))).all()
    } if invoice.status != "draft" else {}
    units = _unit_names(session, rows)
    lines = [
        Line(
            number=index, description=row.description, period_start=row.period_start, period_end=row.period_end,
            quantity=row.quantity, unit_price=_unit_price(row.net, row.quantity), tax_rate=row.tax_rate,
            tax_category=_category(treatment, row.tax_rate), net=row.net, tax=row.tax, credits=row.credits,
            credits_expire_on=local_date(expiries[row.id], settings.zone) if expiries.get(row.id) else None, invoice_line_id=row.id,
            business_unit=units.get(row.business_unit_id),
        )
        for index, row in enumerate(rows, start=1)
    ]
    taxes, net, tax, gross = _taxes(lines, invoice.currency)
    return Document(
        kind="invoice",
        id=invoice.id,
        number=invoice.number,
        status=invoice.status,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        seller=seller_party,
        buyer=buyer_party,
        lines=tuple(lines),
        taxes=taxes,
        net=net,
        tax=tax,
        gross=gross,
        # the terms the dates were set with (approval sets both), not today's setting
        payment_terms=(
            f"Payment due within {(invoice.due_date - invoice.issue_date).days} days of the issue date, "
            f"by {invoice.due_date.day} {invoice.due_date:%b %Y}."
        ),
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        account_id=account.id,
        voided_on=local_date(invoice.voided_at, settings.zone) if invoice.status == "void" and invoice.voided_at else None,
        void_reason=invoice.void_reason if invoice.status == "void" else None,
        payment_reference=invoice_reference(invoice.number) if invoice.status in ("approved", "paid") else None,
        amount_due=amount_due(invoice) if invoice.status in ("approved", "paid") else None,
    )


def credit_note_document(session: Session, note: CreditNote, settings: Settings | None = None) -> Document:
    settings = settings or get_settings()
    account = session.get(Account, note.account_id)
    invoice = session.get(Invoice, note.invoice_id)
    seller_party, buyer_party, treatment = _parties(note, account, settings)
    # the note takes back the invoice's lines: under the treatment the invoice was issued under
    treatment = (_issued(invoice.buyer_details) or {}).get("tax_treatment") or treatment or tax_treatment(account, settings)
    rows = session.exec(select(CreditNoteLine).where(CreditNoteLine.credit_note_id == note.id).order_by(CreditNoteLine.id)).all()
    invoice_lines = {
        line.id: line for line in session.exec(select(InvoiceLine).where(col(InvoiceLine.id).in_([row.invoice_line_id for row in rows]))).all()
    }
    units = _unit_names(session, list(invoice_lines.values()))
    lines = []
    for index, row in enumerate(rows, start=1):
        source = invoice_lines[row.invoice_line_id]
        lines.append(Line(
            number=index, description=row.description, period_start=source.period_start, period_end=source.period_end,
            quantity=row.quantity, unit_price=_unit_price(row.net, row.quantity), tax_rate=row.tax_rate,
            tax_category=_category(treatment, row.tax_rate), net=row.net, tax=row.tax,
            credits=row.credits_taken_back if source.credits is not None else None, invoice_line_id=row.invoice_line_id,
            business_unit=units.get(source.business_unit_id),
        ))
    taxes, net, tax, gross = _taxes(lines, note.currency)
    return Document(
        kind="credit_note", id=note.id, number=note.number, status=note.status, issue_date=note.issue_date, due_date=note.issue_date,
        currency=note.currency, seller=seller_party, buyer=buyer_party, lines=tuple(lines), taxes=taxes, net=net, tax=tax,
        gross=gross, payment_terms="The amount credited is refunded, or set against your next invoice.",
        period_start=invoice.period_start, period_end=invoice.period_end, credited_invoice_number=invoice.number,
        credited_invoice_date=invoice.issue_date, reason=note.reason or None, account_id=account.id,
    )


def _unit_price(net: Decimal, quantity: Decimal) -> Decimal:
    """The net price of one unit as the line charged it (a pro-rated line's share included), so
    that quantity x unit price = line net, as EN 16931 requires (BR-CO-... line net amount)."""
    if not quantity:
        return ZERO
    return (net / quantity).quantize(Decimal("0.0001"))
