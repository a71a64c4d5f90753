"""Reading invoices with their lines and grants."""

from __future__ import annotations

from sqlmodel import Session, col, select

from licensing.credits.models import Grant
from licensing.invoicing.models import Invoice, InvoiceLine


def lines_and_grants(session: Session, invoice: Invoice) -> tuple[list[InvoiceLine], dict[int, Grant]]:
    lines = list(session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all())
    grant_ids = [line.grant_id for line in lines if line.grant_id is not None]
    grants = {grant.id: grant for grant in session.exec(select(Grant).where(col(Grant.id).in_(grant_ids))).all()} if grant_ids else {}
    return lines, grants
