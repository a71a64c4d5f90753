"""The billing run (SPEC 2): every billable line that is due, billed exactly once.

A billable line is a contract service and its slot: a billing period (monthly), a week
(weekly) or its one date (one-off). Lines are generated for periods whose first day, less the
operator's lead time, is on or before ``as_of``. The unique key (service, slot) on invoice
lines makes a repeat of the run, or two runs at once, bill nothing twice. A line that becomes
due for a period whose invoice exists joins it while it is a draft; once that invoice is
approved the line goes on a supplementary invoice for the same period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.catalog.models import Product
from licensing.clock import local_date
from licensing.config import Settings, get_settings
from licensing.db import Database
from licensing.invoicing import pricing
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.licences.models import ContractService, Licence
from licensing.licences.periods import (
    Period,
    billing_periods,
    day_fraction,
    overlap,
    week_starts,
)
from licensing.outbox import record_event
from licensing.repository import lock


@dataclass(frozen=True, slots=True)
class LineSpec:
    """A billable line before pricing: which service, which slot, which dates."""

    service: ContractService
    slot: str
    start: date
    end: date
    nominal_start: date
    fraction: Fraction  # share of the whole period billed (1 for weeks and one-offs)


def last_active_day(licence: Licence) -> date | None:
    days = [d for d in (licence.end_date, licence.terminated_on) if d is not None]
    return min(days) if days else None


def service_range(service: ContractService, licence: Licence) -> tuple[date, date | None] | None:
    """The dates a service is active: its own dates within the licence's, before termination."""
    return overlap(service.from_date, service.to_date, licence.start_date, last_active_day(licence))


def lines_for_period(licence: Licence, services: list[ContractService], period: Period) -> list[LineSpec]:
    """The billable lines of one billing period (pure)."""
    specs = []
    for service in services:
        active = service_range(service, licence)
        if active is None:
            continue
        active_start, active_end = active
        if service.schedule == "monthly":
            covered = overlap(period.start, period.end, active_start, active_end)
            if covered is None:
                continue
            fraction = day_fraction(covered[0], covered[1], period)
            specs.append(LineSpec(service, f"P{period.nominal_start.isoformat()}", covered[0], covered[1], period.nominal_start, fraction))
        elif service.schedule == "weekly":
            last = period.end if active_end is None else min(period.end, active_end)
            for week in week_starts(service.from_date, max(period.start, active_start), last):
                specs.append(LineSpec(service, f"W{week.isoformat()}", week, week + timedelta(days=6), week, Fraction(1)))
        elif service.schedule == "one_off":
            if period.start <= active_start <= period.end:
                specs.append(LineSpec(service, "ONCE", active_start, active_start, active_start, Fraction(1)))
    return specs


@dataclass(slots=True)
class LicenceBilling:
    invoices_created: list[int] = field(default_factory=list)
    invoices_touched: list[int] = field(default_factory=list)


def bill_licence(
    session: Session, licence_id: int, *, as_of: date, now: datetime, settings: Settings | None = None
) -> LicenceBilling:
    """Generate the due, not yet billed lines of one licence. The caller commits."""
    settings = settings or get_settings()
    licence = lock(session, Licence, licence_id, "licence")
    result = LicenceBilling()
    services = list(session.exec(select(ContractService).where(ContractService.licence_id == licence.id).order_by(ContractService.id)).all())
    if not services:
        return result
    billed = set(
        session.exec(
            select(InvoiceLine.contract_service_id, InvoiceLine.billing_slot).where(
                col(InvoiceLine.contract_service_id).in_([service.id for service in services])
            )
        ).all()
    )
    account = session.get(Account, licence.account_id)
    products = {product.id: product for product in session.exec(select(Product).where(col(Product.id).in_({s.product_id for s in services}))).all()}
    due_until = as_of + timedelta(days=settings.invoice_lead_days)
    for period in billing_periods(licence.start_date, licence.billing_anchor_day, last_day=last_active_day(licence), until=due_until):
        specs = [spec for spec in lines_for_period(licence, services, period) if (spec.service.id, spec.slot) not in billed]
        if not specs:
            continue
        invoice, created = _invoice_for_period(session, licence, account, period, now, settings)
        for spec in specs:
            session.add(_price(spec, invoice, products[spec.service.product_id], account))
        session.flush()
        _recompute_totals(session, invoice)
        (result.invoices_created if created else result.invoices_touched).append(invoice.id)
        if created:
            record_event(session, "invoice.generated", {"invoice_id": str(invoice.id), "account_id": str(account.id), "licence_id": str(licence.id)}, at=now)
    return result


def _invoice_for_period(
    session: Session, licence: Licence, account: Account, period: Period, now: datetime, settings: Settings
) -> tuple[Invoice, bool]:
    today = local_date(now, settings.zone)
    existing = session.exec(
        select(Invoice).where(Invoice.licence_id == licence.id, Invoice.period_start == period.start).order_by(Invoice.id)
    ).all()
    for invoice in existing:
        if invoice.status == "draft":
            return invoice, False
    invoice = Invoice(
        account_id=account.id,
        licence_id=licence.id,
        kind="supplementary" if existing else "period",
        status="draft",
        currency=account.currency,
        issue_date=today,
        due_date=today + timedelta(days=settings.payment_terms_days),
        period_start=period.start,
        period_end=period.end,
        created_at=now,
    )
    session.add(invoice)
    session.flush()
    return invoice, True


def _price(spec: LineSpec, invoice: Invoice, product: Product, account: Account) -> InvoiceLine:
    service = spec.service
    unit_price = service.unit_price if service.unit_price is not None else product.price
    tax_rate = pricing.ZERO if account.tax_exempt else product.tax_rate
    partial = spec.fraction != 1
    description = product.name
    credits = None
    if product.kind == "credit_pack":
        share = spec.fraction if (partial and service.prorate_credits) else Fraction(1)
        credits = pricing.line_credits(product.credits, service.quantity, share)
    else:
        share = spec.fraction if (partial and service.prorate) else Fraction(1)
    if share != 1:
        description = f"{product.name} ({share.numerator}/{share.denominator} of the period)"
    net = pricing.line_net(service.quantity, unit_price, invoice.currency, share)
    return InvoiceLine(
        invoice_id=invoice.id,
        contract_service_id=service.id,
        product_id=product.id,
        billing_slot=spec.slot,
        description=description,
        period_start=spec.start,
        period_end=spec.end,
        nominal_start=spec.nominal_start,
        schedule=service.schedule,
        quantity=service.quantity,
        unit_price=unit_price,
        tax_rate=tax_rate,
        net=net,
        tax=pricing.tax_of(net, tax_rate, invoice.currency),
        credits=credits,
    )


def _recompute_totals(session: Session, invoice: Invoice) -> None:
    lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
    invoice.net, invoice.tax, invoice.gross, _ = pricing.totals(((line.net, line.tax_rate) for line in lines), invoice.currency)
    session.add(invoice)


@dataclass(slots=True)
class BillingRunResult:
    as_of: date
    invoices_created: int = 0
    invoices_approved: int = 0


def run_billing(
    database: Database,
    *,
    as_of: date,
    now: datetime,
    actor: str,
    approve_all: bool = False,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BillingRunResult:
    """Bill every licence, one small transaction per licence, approving the invoices of
    ``auto_approve`` licences (or all, with ``approve_all``). Counts this run's work only."""
    from licensing.invoicing.approval import approve_invoice

    settings = settings or get_settings()
    result = BillingRunResult(as_of=as_of)
    with database.read() as session:
        licences = session.exec(
            select(Licence.id, Licence.auto_approve).where(Licence.start_date <= as_of + timedelta(days=settings.invoice_lead_days)).order_by(Licence.id)
        ).all()
    for done, (licence_id, auto_approve) in enumerate(licences, start=1):
        for attempt in range(3):
            try:
                with database.write() as session:
                    billing = bill_licence(session, licence_id, as_of=as_of, now=now, settings=settings)
                    approved = 0
                    if auto_approve or approve_all:
                        for invoice_id in dict.fromkeys(billing.invoices_created + billing.invoices_touched):
                            approve_invoice(session, invoice_id, at=now, actor=actor, settings=settings)
                            approved += 1
                result.invoices_created += len(billing.invoices_created)
                result.invoices_approved += approved
                break
            except IntegrityError:
                # Another run billed the same line at the same moment: bill this licence again.
                if attempt == 2:
                    raise
        if progress:
            progress(done, len(licences))
    return result
