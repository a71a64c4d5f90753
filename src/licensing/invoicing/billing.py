"""The billing run (SPEC 2): every billable line that is due, billed exactly once.

A billable line is a contract service and its slot: a billing period (monthly), a week
(weekly) or its one date (one-off). Lines are generated for periods whose first day, less the
operator's lead time, is on or before ``as_of``. The unique key (service, slot) on invoice
lines makes a repeat of the run, or two runs at once, bill nothing twice. A line that becomes
due for a period whose invoice exists joins it while it is a draft; once that invoice is
approved the line goes on a supplementary invoice for the same period.

Licences are billed in batches: one transaction per batch, rows written with multi-row
inserts, so that the monthly run over thousands of licences stays close to the speed of the
database itself (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from licensing import collector
from licensing.accounts.models import Account
from licensing.catalog.models import Product
from licensing.clock import local_date
from licensing.config import Settings, get_settings
from licensing.db import Database, describe_failure, is_outage
from licensing.db.bulk import insert_rows
from licensing.db.repository import lock_rows
from licensing.events import event_row, record_event, record_events
from licensing.invoicing import pricing
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.invoicing.tax import charges_no_tax
from licensing.licences.models import ContractService, Licence
from licensing.licences.periods import (
    Period,
    billing_periods,
    day_fraction,
    overlap,
    week_starts,
)
from licensing.licences.renewal import needs_renewal, renew_licence
from licensing.money import ZERO

BATCH_SIZE = 250
# A run of more batches than this analyses a fresh database's tables after its first batch
# (``Database.analyze_new``, 15-25 ms): below it, the scans it saves cost less than that.
ANALYZE_AFTER_BATCHES = 4
# What a billing run reads by batches of ids and writes.
BILLED_TABLES = [
    "accounts", "licences", "contract_services", "invoices", "invoice_lines", "grants", "ledger_entries",
    "journal_entries", "journal_postings", "events",
]
log = logging.getLogger("licensing.billing")


WHOLE = Fraction(1)


class LineSpec(NamedTuple):
    """A billable line before pricing: which service, which slot, which dates."""

    service: Any  # a contract service row
    slot: str
    start: date
    end: date
    nominal_start: date
    fraction: Fraction  # share of the whole period billed (WHOLE for weeks and one-offs)


def last_active_day(licence: Licence) -> date | None:
    days = [d for d in (licence.end_date, licence.terminated_on) if d is not None]
    return min(days) if days else None


def service_range(service: ContractService, licence: Licence, last_day: date | None = None) -> tuple[date, date | None] | None:
    """The dates a service is active: its own dates within the licence's, before termination
    (``last_day``: the licence's last active day, when the caller knows it already)."""
    return overlap(service.from_date, service.to_date, licence.start_date, last_day or last_active_day(licence))


def lines_for_period(licence: Licence, services: list[ContractService], period: Period, last_day: date | None = None) -> list[LineSpec]:
    """The billable lines of one billing period (pure)."""
    last_day = last_day or last_active_day(licence)
    specs = []
    for service in services:
        active = service_range(service, licence, last_day)
        if active is None:
            continue
        active_start, active_end = active
        if service.schedule == "monthly":
            covered = overlap(period.start, period.end, active_start, active_end)
            if covered is None:
                continue
            fraction = (
                WHOLE if (covered[0], covered[1]) == (period.nominal_start, period.nominal_end) else day_fraction(covered[0], covered[1], period)
            )
            specs.append(LineSpec(service, f"P{period.nominal_start.isoformat()}", covered[0], covered[1], period.nominal_start, fraction))
        elif service.schedule == "weekly":
            last = period.end if active_end is None else min(period.end, active_end)
            for week in week_starts(service.from_date, max(period.start, active_start), last):
                specs.append(LineSpec(service, f"W{week.isoformat()}", week, week + timedelta(days=6), week, WHOLE))
        elif service.schedule == "one_off" and period.start <= active_start <= period.end:
            specs.append(LineSpec(service, "ONCE", active_start, active_start, active_start, WHOLE))
    return specs


def price_line(spec: LineSpec, product: Product, currency: str, no_tax: bool, prices: dict | None = None) -> dict[str, Any]:
    """The priced line (without its invoice): plain services pro-rated unless ``prorate`` is
    off; credit packs in full unless ``prorate_credits`` is on. ``prices`` remembers the
    amounts of lines priced alike (a batch prices the same service for many licences)."""
    service = spec.service
    unit_price = service.unit_price if service.unit_price is not None else product.price
    partial = spec.fraction is not WHOLE
    if product.kind == "credit_pack":
        share = spec.fraction if (partial and service.prorate_credits) else WHOLE
    else:
        share = spec.fraction if (partial and service.prorate) else WHOLE
    key = (product.id, service.quantity, unit_price, None if share is WHOLE else share, currency, no_tax)
    amounts = None if prices is None else prices.get(key)
    if amounts is None:
        tax_rate = pricing.ZERO if no_tax else product.tax_rate
        credits = pricing.line_credits(product.credits, service.quantity, share) if product.kind == "credit_pack" else None
        description = product.name if share is WHOLE else f"{product.name} ({share.numerator}/{share.denominator} of the period)"
        net = pricing.line_net(service.quantity, unit_price, currency, share)
        amounts = {
            "description": description, "quantity": service.quantity, "unit_price": unit_price, "tax_rate": tax_rate,
            "net": net, "tax": pricing.tax_of(net, tax_rate, currency), "credits": credits,
        }
        if prices is not None:
            prices[key] = amounts
    return amounts | {
        "contract_service_id": service.id, "product_id": product.id, "business_unit_id": service.business_unit_id,
        "billing_slot": spec.slot, "period_start": spec.start, "period_end": spec.end,
        "nominal_start": spec.nominal_start, "schedule": service.schedule,
    }


# What a licence's lines depend on besides its services: its dates and anchor.
PLAN_LICENCE_COLUMNS = ("start_date", "end_date", "terminated_on", "billing_anchor_day")
# The values of a service row (as read by ``bill_licences``: every column, in table order) that
# its lines depend on: all but its identity, licence, business unit and creation time.
_service_plan_values = itemgetter(*(
    n for n, name in enumerate(ContractService.__table__.c.keys()) if name not in {"id", "licence_id", "business_unit_id", "billed", "created_at"}
))


def plan_key(licence, services: list, currency: str, no_tax: bool) -> tuple:
    """What the lines of ``plan_lines`` depend on: licences with equal keys get equal lines
    (up to their own service ids and business units)."""
    return (
        tuple(getattr(licence, name) for name in PLAN_LICENCE_COLUMNS),
        tuple(map(_service_plan_values, services)),
        currency,
        no_tax,
    )


def plan_lines(
    licence, services: list, products: dict[int, Product], currency: str, no_tax: bool, due_until: date, prices: dict
) -> list[tuple[Period, list[tuple[int, str, dict[str, Any]]]]]:
    """The priced lines of every period due by ``due_until``, billed or not: for each period,
    (position of the service in ``services``, slot, line)."""
    last_day = last_active_day(licence)
    position = {service.id: n for n, service in enumerate(services)}
    plan = []
    for period in billing_periods(licence.start_date, licence.billing_anchor_day, last_day=last_day, until=due_until):
        lines = [
            (position[spec.service.id], spec.slot, price_line(spec, products[spec.service.product_id], currency, no_tax, prices))
            for spec in lines_for_period(licence, services, period, last_day)
        ]
        if lines:
            plan.append((period, lines))
    return plan


@dataclass(slots=True)
class BillingBatch:
    """What a batch did: invoices created, drafts that got late lines, and their licences."""

    invoices_created: list[int] = field(default_factory=list)
    invoices_touched: list[int] = field(default_factory=list)
    licence_of: dict[int, int] = field(default_factory=dict)
    # Every line of each invoice created, as written (with its id): approving them in the same
    # transaction need not read them back.
    lines_of: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def invoices_of(self, licence_ids: set[int]) -> list[int]:
        """The invoices created or touched for ``licence_ids``, in order, once each."""
        return [
            invoice_id
            for invoice_id in dict.fromkeys(self.invoices_created + self.invoices_touched)
            if self.licence_of[invoice_id] in licence_ids
        ]


def bill_licences(
    session: Session, licence_ids: list[int], *, as_of: date, now: datetime, settings: Settings | None = None, actor: str = "billing-run"
) -> BillingBatch:
    """Generate the due, not yet billed lines of the licences (one batch), renewing the
    auto-renewing licences whose end comes before the periods now due. The caller commits."""
    settings = settings or get_settings()
    result = BillingBatch()
    due_until = as_of + timedelta(days=settings.invoice_lead_days)
    licences = lock_rows(session, Licence, licence_ids)
    renewing = [licence.id for licence in licences if needs_renewal(licence, due_until)]
    if renewing:
        for licence_id in renewing:
            renew_licence(session, licence_id, until=due_until, now=now, actor=actor)
        licences = lock_rows(session, Licence, licence_ids)
    services_of: dict[int, list[ContractService]] = defaultdict(list)
    services_table = ContractService.__table__
    for service in session.execute(select(services_table).where(services_table.c.licence_id.in_(licence_ids)).order_by(services_table.c.id)):
        services_of[service.licence_id].append(service)
    if not services_of:
        return result
    already_billed = {service.id for services in services_of.values() for service in services if service.billed}
    # The slots already on an invoice: only a billed service has any (the run marks a service
    # billed with its first line, and no other line names a service), so a batch of new
    # licences reads none.
    billed = set(
        session.exec(
            select(InvoiceLine.contract_service_id, InvoiceLine.billing_slot).where(col(InvoiceLine.contract_service_id).in_(sorted(already_billed)))
        ).all()
    ) if already_billed else set()
    accounts = {
        row.id: (row.id, row.currency, charges_no_tax(row, settings))
        for row in session.exec(
            select(Account.id, Account.currency, Account.tax_exempt, Account.tax_id, Account.country).where(
                col(Account.id).in_({licence.account_id for licence in licences})
            )
        ).all()
    }
    products = {
        product.id: product
        for product in session.exec(
            select(Product).where(col(Product.id).in_({s.product_id for services in services_of.values() for s in services}))
        ).all()
    }
    existing: dict[tuple[int, date], list[Invoice]] = defaultdict(list)
    for invoice in session.exec(
        select(Invoice.id, Invoice.licence_id, Invoice.period_start, Invoice.status)
        .where(col(Invoice.licence_id).in_(licence_ids))
        .order_by(Invoice.id)
    ):
        existing[(invoice.licence_id, invoice.period_start)].append(invoice)

    today = local_date(now, settings.zone)
    new_invoices: list[dict[str, Any]] = []
    new_lines: list[tuple[int | dict, dict[str, Any]]] = []  # (existing draft id or new invoice row, line)
    prices: dict[tuple, dict[str, Any]] = {}
    plans: dict[tuple, list[tuple[Period, list[tuple[int, str, dict[str, Any]]]]]] = {}
    for licence in licences:
        services = services_of.get(licence.id)
        if not services:
            continue
        _account_id, currency, no_tax = accounts[licence.account_id]
        # Licences on the same plan (same dates and services) have the same lines: plan once.
        key = plan_key(licence, services, currency, no_tax)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = plan_lines(licence, services, products, currency, no_tax, due_until, prices)
        for period, planned in plan:
            lines = [(services[position], line) for position, slot, line in planned if (services[position].id, slot) not in billed]
            if not lines:
                continue
            earlier = existing[(licence.id, period.start)]
            draft = next((invoice.id for invoice in earlier if invoice.status == "draft"), None)
            if draft is not None:
                target: int | dict = draft
                result.invoices_touched.append(draft)
                result.licence_of[draft] = licence.id
            else:
                target = {
                    "account_id": licence.account_id, "licence_id": licence.id,
                    "kind": "supplementary" if earlier else "period", "status": "draft", "currency": currency,
                    "issue_date": today, "due_date": today + timedelta(days=settings.payment_terms_days),
                    "period_start": period.start, "period_end": period.end, "created_at": now, "amount_paid": ZERO, "amount_credited": ZERO,
                }
                new_invoices.append(target)
            for service, line in lines:
                new_lines.append((target, line | {"contract_service_id": service.id, "business_unit_id": service.business_unit_id}))

    if new_invoices:
        lines_of_new: dict[int, list[dict]] = defaultdict(list)
        for target, line in new_lines:
            if isinstance(target, dict):
                lines_of_new[id(target)].append(line)
        for invoice in new_invoices:
            invoice["net"], invoice["tax"], invoice["gross"], _ = pricing.totals(
                ((line["net"], line["tax_rate"]) for line in lines_of_new[id(invoice)]), invoice["currency"]
            )
        ids = insert_rows(session, Invoice.__table__, new_invoices, return_ids=True)
        for invoice, invoice_id in zip(new_invoices, ids, strict=True):
            invoice["id"] = invoice_id
            result.invoices_created.append(invoice_id)
            result.licence_of[invoice_id] = invoice["licence_id"]
        record_events(
            session,
            [
                event_row(
                    "invoice.generated",
                    {"invoice_id": str(invoice["id"]), "account_id": str(invoice["account_id"]), "licence_id": str(invoice["licence_id"])},
                    at=now,
                )
                for invoice in new_invoices
            ],
        )
    if new_lines:
        first_billed = {line["contract_service_id"] for _target, line in new_lines} - already_billed
        if first_billed:
            session.execute(update(services_table).where(services_table.c.id.in_(sorted(first_billed))).values(billed=True))
        for target, line in new_lines:
            line["invoice_id"] = target["id"] if isinstance(target, dict) else target
        rows = [line for _target, line in new_lines]
        for line, line_id in zip(rows, insert_rows(session, InvoiceLine.__table__, rows, return_ids=True), strict=True):
            line["id"] = line_id
        for invoice in new_invoices:
            result.lines_of[invoice["id"]] = []
        for target, line in new_lines:
            if isinstance(target, dict):
                result.lines_of[target["id"]].append(line)
    for draft_id in dict.fromkeys(result.invoices_touched):
        recompute_totals(session, draft_id)
    return result


def recompute_totals(session: Session, invoice_id: int) -> None:
    invoice = session.get(Invoice, invoice_id)
    lines = session.exec(select(InvoiceLine.net, InvoiceLine.tax_rate).where(InvoiceLine.invoice_id == invoice_id)).all()
    invoice.net, invoice.tax, invoice.gross, _ = pricing.totals(lines, invoice.currency)
    session.add(invoice)


@dataclass(frozen=True, slots=True)
class FailedLicence:
    """A licence the run could not bill, and why: the others are billed, this one is tried again
    by the next run."""

    licence_id: int
    error: str


@dataclass(slots=True)
class BillingRunResult:
    as_of: date
    invoices_created: int = 0
    invoices_approved: int = 0
    failed: list[FailedLicence] = field(default_factory=list)




class HighWater:
    """How far this run's batches have been claimed (the highest licence id claimed): a number
    in one process, shared memory among the processes of ``run_billing_in_workers``."""

    def __init__(self, shared=None) -> None:
        self.shared = shared
        self._value = 0

    @property
    def value(self) -> int:
        return self.shared.value if self.shared is not None else self._value

    def advance(self, licence_id: int) -> None:
        if self.shared is None:
            self._value = max(self._value, licence_id)
            return
        with self.shared.get_lock():
            self.shared.value = max(self.shared.value, licence_id)


@dataclass(slots=True)
class _Claim:
    """The licences of one batch: claimed by the batch's transaction, kept for its retries."""

    ids: list[int] | None = None


def run_billing(
    database: Database,
    *,
    as_of: date,
    now: datetime,
    actor: str,
    approve_all: bool = False,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int | None = None,
    high_water: HighWater | None = None,
) -> BillingRunResult:
    """Bill every licence, one transaction per batch of licences, approving the invoices of
    ``auto_approve`` licences (or all, with ``approve_all``). Counts this run's work only. A
    licence that cannot be billed is left out (``result.failed``, a ``billing.failed`` event,
    the log) and the others are billed; the next run tries it again.

    Each batch's transaction claims its licences first: the next ``batch_size`` licences after
    ``high_water``, locked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that a licence another
    process is billing at that moment is left to it. Processes sharing a ``high_water`` (the
    workers of ``run_billing_in_workers``) thus bill one run side by side."""
    settings = settings or get_settings()
    batch_size = batch_size or BATCH_SIZE
    result = BillingRunResult(as_of=as_of)
    due_by = as_of + timedelta(days=settings.invoice_lead_days)
    high_water = high_water or HighWater()
    with database.read() as session:
        total = session.exec(select(func.count()).select_from(Licence).where(Licence.start_date <= due_by)).one()
    done = 0
    while True:
        claim = _Claim()
        try:
            # The cycle collector paused for the batch and run once after it (``collector``): it
            # had walked every object of the process a few times a run, a sixth of its time.
            with collector.paused():
                _bill_batch(database, claim, high_water, result, due_by=due_by, batch_size=batch_size, approve_all=approve_all,
                            as_of=as_of, now=now, actor=actor, settings=settings)
        except Exception as error:
            if is_outage(error) or not claim.ids:
                raise
            # One licence that cannot be billed must not stop the others: bill the batch again,
            # one licence per transaction, and record the ones that fail.
            for licence_id in claim.ids:
                try:
                    _bill_batch(database, _Claim([licence_id]), high_water, result, due_by=due_by, batch_size=1,
                                approve_all=approve_all, as_of=as_of, now=now, actor=actor, settings=settings)
                except Exception as licence_error:
                    if is_outage(licence_error):
                        raise
                    _record_failure(database, licence_id, licence_error, result, as_of=as_of, now=now)
        if not claim.ids:
            return result
        if done == 0 and total > ANALYZE_AFTER_BATCHES * batch_size:
            database.analyze_new(BILLED_TABLES)  # a fresh database's tables, planned on what the first batch wrote
        done += len(claim.ids)
        if progress:
            progress(min(done, total), total)


def _bill_batch(
    database: Database, claim: _Claim, high_water: HighWater, result: BillingRunResult, *, due_by: date, batch_size: int,
    approve_all: bool, as_of: date, now: datetime, actor: str, settings: Settings,
) -> None:
    """Claim a batch (``claim.ids`` when given, else the next after ``high_water``), bill and
    approve it in one transaction, adding its work to ``result``."""
    from licensing.invoicing.approval import approve_invoices

    for attempt in range(3):
        try:
            with database.write() as session:
                which = Licence.id > high_water.value if claim.ids is None else col(Licence.id).in_(claim.ids)
                statement = select(Licence.id, Licence.auto_approve).where(Licence.start_date <= due_by, which)
                claimed = session.exec(statement.order_by(Licence.id).limit(batch_size).with_for_update(skip_locked=True)).all()
                if claim.ids is None:
                    claim.ids = [licence_id for licence_id, _ in claimed]
                    if not claimed:
                        return
                    high_water.advance(claim.ids[-1])
                licence_ids = [licence_id for licence_id, _ in claimed]
                if not licence_ids:
                    return  # another process is billing it
                approving = {licence_id for licence_id, auto_approve in claimed if auto_approve or approve_all}
                billing = bill_licences(session, licence_ids, as_of=as_of, now=now, settings=settings, actor=actor)
                approved = approve_invoices(
                    session, billing.invoices_of(approving), at=now, actor=actor, settings=settings, known_lines=billing.lines_of
                )
            result.invoices_created += len(billing.invoices_created)
            result.invoices_approved += len(approved)
            return
        except IntegrityError:
            # Another run billed the same lines at the same moment: bill the batch again.
            if attempt == 2:
                raise


def run_billing_in_workers(
    database: Database,
    workers: int,
    *,
    as_of: date,
    now: datetime,
    actor: str,
    approve_all: bool = False,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int | None = None,
    setup: Callable[[], None] | None = None,
) -> BillingRunResult:
    """``run_billing`` in ``workers`` processes of their own (PostgreSQL), which claim batches
    from one shared high-water mark; their results added up. Each process calls ``setup`` first
    (a module-level function: ``licensing.bootstrap.connect``, so that approvals queue their
    mail there too). A worker that stops on an error (the database unreachable) makes this raise
    ``BillingWorkersFailed`` once all have ended."""
    import multiprocessing
    import sys

    # Forked on Linux: a worker starts at once with what this process has imported (a fresh
    # interpreter takes seconds to import the engine); it drops the inherited connections
    # without closing them (they are this process's) and opens its own.
    fork = sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if fork else "spawn")
    high_water, done, answers = context.Value("q", 0), context.Value("q", 0), context.Queue()
    inherited = database if fork else None
    processes = [
        context.Process(
            target=_worker, args=(setup, database.url, inherited, high_water, done, answers, as_of, now, actor, approve_all, batch_size),
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    with database.read() as session:
        due_by = as_of + timedelta(days=get_settings().invoice_lead_days)
        total = session.exec(select(func.count()).select_from(Licence).where(Licence.start_date <= due_by)).one()
    outcomes = []
    while len(outcomes) < workers:
        try:
            outcomes.append(answers.get(timeout=0.2))
        except Exception:  # noqa: BLE001 - queue.Empty: report progress while the workers bill
            if not any(process.is_alive() for process in processes) and answers.empty():
                break
        if progress:
            progress(min(done.value, total), total)
    for process in processes:
        process.join()
    result = BillingRunResult(as_of=as_of)
    errors = [outcome for outcome in outcomes if isinstance(outcome, str)]
    for outcome in outcomes:
        if isinstance(outcome, BillingRunResult):
            result.invoices_created += outcome.invoices_created
            result.invoices_approved += outcome.invoices_approved
            result.failed += outcome.failed
    if errors or len(outcomes) < workers:
        raise BillingWorkersFailed(errors[0] if errors else "a billing worker ended without an answer", result)
    if progress:
        progress(total, total)
    return result


class BillingWorkersFailed(Exception):
    """A worker of ``run_billing_in_workers`` stopped; ``result`` is what the others billed."""

    def __init__(self, reason: str, result: BillingRunResult) -> None:
        super().__init__(reason)
        self.result = result


def _worker(setup, url, inherited, high_water, done, answers, as_of, now, actor, approve_all, batch_size) -> None:
    """One process of ``run_billing_in_workers``."""
    if inherited is not None:
        inherited.forget_connections()
    if setup is not None:
        setup()
    database = Database(url)
    try:
        def advance(count: int, _total: int) -> None:
            with done.get_lock():
                done.value += count - advance.reported
            advance.reported = count

        advance.reported = 0
        answers.put(run_billing(database, as_of=as_of, now=now, actor=actor, approve_all=approve_all, progress=advance,
                                batch_size=batch_size, high_water=HighWater(high_water)))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
        answers.put(describe_failure(error))
    finally:
        database.dispose()


def _record_failure(database: Database, licence_id: int, error: Exception, result: BillingRunResult, *, as_of: date, now: datetime) -> None:
    """Log the licence's failure, add it to the run's answer and record a ``billing.failed``
    event (its own transaction: the failed one was rolled back)."""
    reason = describe_failure(error)
    log.error("billing run as of %s: licence %s was not billed: %s", as_of, licence_id, reason, exc_info=error)
    result.failed.append(FailedLicence(licence_id, reason))
    with database.write() as session:
        account_id = session.exec(select(Licence.account_id).where(Licence.id == licence_id)).first()
        record_event(
            session, "billing.failed",
            {"licence_id": str(licence_id), "account_id": str(account_id) if account_id is not None else None,
             "as_of": as_of.isoformat(), "error": reason},
            at=now,
        )
