"""Top-ups (SPEC 5): a credit pack sold to an account outside any licence schedule.

The invoice is issued at once (kind ``top_up``, its period the day it was issued) with one line
for the pack in the quantity asked; approved at once when the operator says so, else a draft
to approve later. Its grant follows the one-off rule of SPEC 3 with the issue day as from-date:
valid from the approval moment, expiring at 00:00 of (that date + the pack's lifetime).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session

from licensing.accounts.models import Account
from licensing.catalog.models import Product
from licensing.clock import local_date
from licensing.config import Settings, get_settings
from licensing.credits.consumption import check_unit_and_member
from licensing.db.repository import get_or_404, get_reference
from licensing.errors import CurrencyMismatch, ValidationFailed
from licensing.events import record_event
from licensing.invoicing import pricing
from licensing.invoicing.approval import approve_invoices
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.invoicing.tax import charges_no_tax
from licensing.money import check_line_size


def top_up(
    session: Session,
    account_id: str | int,
    *,
    product_id: str | int,
    quantity: Decimal = Decimal(1),
    business_unit_id: str | int | None = None,
    approve: bool = False,
    now: datetime,
    actor: str,
    settings: Settings | None = None,
) -> Invoice:
    settings = settings or get_settings()
    account = get_or_404(session, Account, account_id, "account")
    product = get_reference(session, Product, product_id, "product_id")
    if product.kind != "credit_pack":
        raise ValidationFailed(f"product {product.id} is not a credit pack", field="product_id")
    if not product.active:
        raise ValidationFailed(f"product {product.id} is not active", field="product_id")
    if product.currency != account.currency:
        raise CurrencyMismatch(f"product {product.id} is priced in {product.currency}, the account in {account.currency}", field="product_id")
    if quantity <= 0:
        raise ValidationFailed("quantity must be greater than zero", field="quantity")
    check_line_size(quantity, product.price, product.credits)
    unit_id, _member = check_unit_and_member(session, account, business_unit_id, None)
    today = local_date(now, settings.zone)
    tax_rate = pricing.ZERO if charges_no_tax(account, settings) else product.tax_rate
    net = pricing.line_net(quantity, product.price, account.currency)
    tax = pricing.tax_of(net, tax_rate, account.currency)
    total_net, total_tax, gross, _ = pricing.totals([(net, tax_rate)], account.currency)
    invoice = Invoice(
        account_id=account.id, licence_id=None, kind="top_up", status="draft", currency=account.currency,
        issue_date=today, due_date=today + timedelta(days=settings.payment_terms_days), period_start=today, period_end=today,
        net=total_net, tax=total_tax, gross=gross, created_at=now,
    )
    session.add(invoice)
    session.flush()
    session.add(InvoiceLine(
        invoice_id=invoice.id, contract_service_id=None, product_id=product.id, business_unit_id=unit_id,
        billing_slot=f"TOPUP-{invoice.id}", description=product.name, period_start=today, period_end=today, nominal_start=today,
        schedule="one_off", quantity=quantity, unit_price=product.price, tax_rate=tax_rate, net=net, tax=tax,
        credits=pricing.line_credits(product.credits, quantity),
    ))
    session.flush()
    record_event(
        session, "invoice.generated", {"invoice_id": str(invoice.id), "account_id": str(account.id), "licence_id": None, "kind": "top_up"}, at=now
    )
    if approve:
        approve_invoices(session, [invoice.id], at=now, actor=actor, settings=settings)
        session.refresh(invoice)
    return invoice
