"""Receivables at a date (API.md ``GET /reports/receivables``): what approved invoices still
have due, per currency and account, in ageing buckets by days past their due date.

As the books stood at the end of ``as_of`` (in the operator's zone): invoices approved by then
and not void by then; less the gross of their credit notes approved by then; less what payments
gave them by then (a payment counts from when it was received, a settlement of unapplied cash
and a reversal from when they were recorded). An invoice not yet past its due date is
``current``; then ``1-30``, ``31-60``, ``61-90`` and ``90+`` days past it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import case, func, or_
from sqlmodel import Session, col, select

from licensing.clock import end_of_day
from licensing.config import Settings, get_settings
from licensing.invoicing.models import CreditNote, Invoice, Payment, PaymentAllocation
from licensing.money import ZERO

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def bucket_of(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


def _buckets() -> dict[str, Decimal]:
    return dict.fromkeys(BUCKETS, ZERO)


@dataclass(slots=True)
class Receivables:
    as_of: date
    # currency -> account id -> bucket -> amount due
    currencies: dict[str, dict[int, dict[str, Decimal]]] = field(default_factory=dict)


def receivables(session: Session, as_of: date, settings: Settings | None = None) -> Receivables:
    settings = settings or get_settings()
    end = end_of_day(as_of, settings.zone)  # exclusive
    invoices = session.exec(
        select(Invoice.id, Invoice.account_id, Invoice.currency, Invoice.gross, Invoice.due_date).where(
            col(Invoice.approved_at).is_not(None), col(Invoice.approved_at) < end,
            or_(col(Invoice.voided_at).is_(None), col(Invoice.voided_at) >= end),
        )
    ).all()
    credited = dict(
        session.exec(
            select(CreditNote.invoice_id, func.sum(CreditNote.gross))
            .where(CreditNote.status == "approved", col(CreditNote.approved_at) < end)
            .group_by(CreditNote.invoice_id)
        ).all()
    )
    counted_from = case((PaymentAllocation.kind == "payment", Payment.received_at), else_=PaymentAllocation.created_at)
    paid = dict(
        session.exec(
            select(PaymentAllocation.invoice_id, func.sum(PaymentAllocation.amount))
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(col(PaymentAllocation.invoice_id).is_not(None), counted_from < end)
            .group_by(PaymentAllocation.invoice_id)
        ).all()
    )
    report = Receivables(as_of=as_of)
    for invoice in invoices:
        due = invoice.gross - (credited.get(invoice.id) or ZERO) - (paid.get(invoice.id) or ZERO)
        if due <= 0:
            continue
        accounts = report.currencies.setdefault(invoice.currency, defaultdict(_buckets))
        accounts[invoice.account_id][bucket_of((as_of - invoice.due_date).days)] += due
    return report
