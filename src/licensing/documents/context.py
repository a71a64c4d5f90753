"""Building the ``Document`` of an invoice or a credit note from the database."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from sqlmodel import Session, col, select

from licensing.accounts.models import Account
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
from licensing.invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from licensing.invoicing.tax import tax_treatment
from licensing.money import ZERO


def _category(treatment: str, rate: Decimal) -> str:
    if treatment != STANDARD:
        return treatment
    return STANDARD if rate > 0 else ZERO_RATED


def seller(settings: Settings) -> Party:
    return Party(
        name=settings.operator_name, address_lines=_lines(settings.operator_address), country=settings.operator_country or None,
        tax_id=settings.operator_tax_id or None, email=settings.operator_email or None,
    )


def buyer(account: Account) -> Party:
    return Party(name=account.name, address_lines=_lines(account.address), country=account.country, tax_id=account.tax_id, email=account.email)


def _lines(text: str | None) -> tuple[str, ...]:
    return tuple(line.strip() for line in (text or "").splitlines() if line.strip())


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


def invoice_document(session: Session, invoice: Invoice, settings: Settings | None = None) -> Document:
    settings = settings or get_settings()
    account = session.get(Account, invoice.account_id)
    treatment = tax_treatment(account, settings)
    rows = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all()
    expiries = {
        grant.invoice_line_id: grant.expires_at
        for grant in session.exec(select(Grant).where(col(Grant.invoice_line_id).in_([row.id for row in rows]))).all()
    } if invoice.status != "draft" else {}
    lines = [
        Line(
            number=index, description=row.description, period_start=row.period_start, period_end=row.period_end,
            quantity=row.quantity, unit_price=_unit_price(row.net, row.quantity), tax_rate=row.tax_rate,
            tax_category=_category(treatment, row.tax_rate), net=row.net, tax=row.tax, credits=row.credits,
            credits_expire_on=local_date(expiries[row.id], settings.zone) if expiries.get(row.id) else None, invoice_line_id=row.id,
        )
        for index, row in enumerate(rows, start=1)
    ]
    taxes, net, tax, gross = _taxes(lines, invoice.currency)
    return Document(
        kind="invoice", id=invoice.id, number=invoice.number, status=invoice.status, issue_date=invoice.issue_date,
        due_date=invoice.due_date, currency=invoice.currency, seller=seller(settings), buyer=buyer(account), lines=tuple(lines),
        taxes=taxes, net=net, tax=tax, gross=gross,
        payment_terms=f"Payment due within {settings.payment_terms_days} days of the issue date, by {invoice.due_date.day} {invoice.due_date:%b %Y}.",
        period_start=invoice.period_start, period_end=invoice.period_end, account_id=account.id,
    )


def credit_note_document(session: Session, note: CreditNote, settings: Settings | None = None) -> Document:
    settings = settings or get_settings()
    account = session.get(Account, note.account_id)
    invoice = session.get(Invoice, note.invoice_id)
    treatment = tax_treatment(account, settings)
    rows = session.exec(select(CreditNoteLine).where(CreditNoteLine.credit_note_id == note.id).order_by(CreditNoteLine.id)).all()
    invoice_lines = {line.id: line for line in session.exec(select(InvoiceLine).where(col(InvoiceLine.id).in_([row.invoice_line_id for row in rows]))).all()}
    lines = []
    for index, row in enumerate(rows, start=1):
        source = invoice_lines[row.invoice_line_id]
        lines.append(Line(
            number=index, description=row.description, period_start=source.period_start, period_end=source.period_end,
            quantity=row.quantity, unit_price=_unit_price(row.net, row.quantity), tax_rate=row.tax_rate,
            tax_category=_category(treatment, row.tax_rate), net=row.net, tax=row.tax,
            credits=row.credits_taken_back if source.credits is not None else None, invoice_line_id=row.invoice_line_id,
        ))
    taxes, net, tax, gross = _taxes(lines, note.currency)
    return Document(
        kind="credit_note", id=note.id, number=note.number, status=note.status, issue_date=note.issue_date, due_date=note.issue_date,
        currency=note.currency, seller=seller(settings), buyer=buyer(account), lines=tuple(lines), taxes=taxes, net=net, tax=tax,
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
