"""Reading invoices with their lines and grants."""

from __future__ import annotations

from sqlmodel import Session, col, select

from licensing.credits.models import Grant
from licensing.invoicing.models import Invoice, InvoiceLine


def lines_and_grants(session: Session, invoice: Invoice) -> tuple[list[InvoiceLine], dict[int, Grant]]:
    """The invoice's lines, and the grant of each approved credit-pack line by line id."""
    lines = list(session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all())
    line_ids = [line.id for line in lines if line.credits is not None]
    if not line_ids or invoice.status == "draft":
        return lines, {}
    grants = session.exec(select(Grant).where(col(Grant.invoice_line_id).in_(line_ids))).all()
    return lines, {grant.invoice_line_id: grant for grant in grants}
