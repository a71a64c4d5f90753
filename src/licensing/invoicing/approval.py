"""Approval (SPEC 3): the next number and, in the same transaction, one grant per credit-pack line.

Grant dates, in the operator's time zone:

* recurring lines (monthly, weekly): ``valid_from`` = 00:00 on the line's start (its week's
  start for a weekly line); ``expires_at`` = 00:00 on (nominal start + lifetime), the months of
  a monthly line's lifetime landing on the licence's anchor day (anchor 31: Feb 28 + P1M =
  Mar 31). A partial first period starting Jan 16 with anchor 1 has nominal start Jan 1, so its
  P1M credits expire on Feb 1 like every other month's.
* one-off lines: ``valid_from`` = the later of 00:00 on the line's date and the approval moment;
  ``expires_at`` = 00:00 on (the date of ``valid_from`` + lifetime).
* a pack with no lifetime never expires.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from licensing.accounts.models import Account
from licensing.catalog.models import Product
from licensing.clock import local_date, start_of_day
from licensing.config import Settings, get_settings
from licensing.credits.expiry import record_due_expiries
from licensing.credits.grants import create_grant
from licensing.errors import InvoiceNotDraft
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.invoicing.numbering import next_number
from licensing.licences.models import ContractService, Licence
from licensing.licences.periods import parse_lifetime
from licensing.outbox import record_event
from licensing.repository import get_or_404, lock


def grant_window(line: InvoiceLine, product: Product, anchor_day: int | None, *, approved_at: datetime, settings: Settings) -> tuple[datetime, datetime | None]:
    """(valid_from, expires_at) of the grant for a credit-pack line approved at ``approved_at``."""
    zone = settings.zone
    lifetime = parse_lifetime(product.lifetime) if product.lifetime else None
    if line.schedule in ("monthly", "weekly"):
        valid_from = start_of_day(line.period_start, zone)
        if lifetime is None:
            return valid_from, None
        anchor = anchor_day if line.schedule == "monthly" else None
        return valid_from, start_of_day(lifetime.end(line.nominal_start, anchor_day=anchor), zone)
    valid_from = max(start_of_day(line.period_start, zone), approved_at)
    if lifetime is None:
        return valid_from, None
    return valid_from, start_of_day(lifetime.end(local_date(valid_from, zone)), zone)


def approve_invoice(session: Session, invoice_id: str | int, *, at: datetime, actor: str, settings: Settings | None = None) -> Invoice:
    """Number the invoice and grant its credit packs. Approving an approved invoice returns it
    unchanged; approving a void one is refused."""
    settings = settings or get_settings()
    invoice = get_or_404(session, Invoice, invoice_id, "invoice")
    invoice = lock(session, Invoice, invoice.id, "invoice")
    if invoice.status in ("approved", "paid"):
        return invoice
    if invoice.status != "draft":
        raise InvoiceNotDraft(f"invoice {invoice.id} is {invoice.status} and cannot be approved", status=invoice.status)
    account = lock(session, Account, invoice.account_id, "account")
    record_due_expiries(session, account, now=at)

    today = local_date(at, settings.zone)
    invoice.number = next_number(session, "INV", today.year)
    invoice.status = "approved"
    invoice.approved_at = at
    invoice.approved_by = actor
    invoice.issue_date = today
    invoice.due_date = today + timedelta(days=settings.payment_terms_days)
    session.add(invoice)

    licence = session.get(Licence, invoice.licence_id) if invoice.licence_id else None
    lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all()
    for line in lines:
        if line.credits is None:
            continue
        product = session.get(Product, line.product_id)
        service = session.get(ContractService, line.contract_service_id) if line.contract_service_id else None
        valid_from, expires_at = grant_window(
            line, product, licence.billing_anchor_day if licence else None, approved_at=at, settings=settings
        )
        grant = create_grant(
            session, account, credits=line.credits, value=line.net, valid_from=valid_from, expires_at=expires_at,
            business_unit_id=service.business_unit_id if service else None,
            source_type="invoice_line", source_id=line.id, actor=actor, at=at,
            contract_service_id=line.contract_service_id,
        )
        line.grant_id = grant.id
        session.add(line)
    record_event(
        session, "invoice.approved",
        {"invoice_id": str(invoice.id), "number": invoice.number, "account_id": str(account.id), "gross": str(invoice.gross)},
        at=at,
    )
    return invoice

