"""The journal entries of invoices, credit notes and payments (SPEC 11), built from what is
stored: the same functions post them live, in the transaction of the event, and ``rebuild``
posts them for a database made before the journal existed.

* invoice approved: debit receivables (gross); credit services revenue, deferred credit revenue
  (credit packs), credits awaiting payment (packs that grant on payment), VAT payable per rate;
* credit note approved, invoice voided: debit deferred credit revenue (the value of the credits
  taken back), credits awaiting payment (packs not granted yet; for a pack whose credits a
  payment reversal took back, that value first), credit note allowances (the rest of a pack
  line's net), services revenue, VAT payable; credit receivables (gross);
* payment received: debit bank, card clearing or cash; credit receivables (what invoices took)
  and unapplied cash (the excess); unapplied cash applied: debit unapplied cash, credit
  receivables; payment reversed: debit receivables and unapplied cash (what each held of it),
  credit the money account;
* credits granted on payment: debit credits awaiting payment, credit deferred credit revenue;
  taken back when a reversal reopens the invoice: the other way round.

Consumptions, expiries and cuts are posted by the ledger (``books.journal.record_ledger``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import func
from sqlmodel import Session, col, select

from licensing.books.chart import PAYMENT_ROLES
from licensing.books.journal import VALUED, NewEntry, ledger_entries, post
from licensing.books.models import JournalEntry, JournalPosting
from licensing.catalog.models import Product
from licensing.clock import local_date
from licensing.config import get_settings
from licensing.credits.models import Grant, LedgerEntry
from licensing.errors import Conflict
from licensing.invoicing import pricing
from licensing.invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, Payment, PaymentAllocation

ZERO = Decimal(0)
CHUNK = 1000


def _zone():
    return get_settings().zone


def _pack_roles(session: Session, product_ids) -> dict[int, str]:
    """The role a credit pack's net posts to on approval, per product."""
    return {
        product_id: "credits_awaiting_payment" if grant_on == "payment" else "deferred_credit_revenue"
        for product_id, grant_on in session.exec(select(Product.id, Product.grant_on).where(col(Product.id).in_(set(product_ids)))).all()
    }


class Approved(NamedTuple):
    """What the journal needs of an invoice just approved (what ``approval_entries`` would read).
    ``number`` may be None: the approval builds the entries before it numbers the invoices and
    names them after (``name_entry``), so that the series stays locked for less time."""

    number: str | None
    issue_date: date
    approved_at: datetime
    currency: str
    account_id: int
    gross: Decimal


class _Line(NamedTuple):
    product_id: int | None
    net: Decimal
    tax_rate: Decimal
    credits: Decimal | None


def approval_entries(
    session: Session, invoice_ids: list[int], *, known: dict[int, Approved] | None = None, known_lines: dict[int, list[dict]] | None = None,
) -> list[NewEntry]:
    """The entries of approved invoices, in the order given. ``known`` and ``known_lines`` (every
    line of an invoice, in order) hold what the caller has just written, so that it is not read
    back (a billing run's invoices); the rest is read."""
    known, known_lines = known or {}, known_lines or {}
    zone = _zone()
    entries = []
    for offset in range(0, len(invoice_ids), CHUNK):
        chunk = invoice_ids[offset : offset + CHUNK]
        invoices: dict[int, Any] = {invoice_id: known[invoice_id] for invoice_id in chunk if invoice_id in known}
        unknown = [invoice_id for invoice_id in chunk if invoice_id not in invoices]
        if unknown:
            # Columns, not entities: the approval wrote the number and dates with a Core statement.
            invoices |= {
                invoice.id: invoice
                for invoice in session.exec(
                    select(Invoice.id, Invoice.number, Invoice.issue_date, Invoice.approved_at, Invoice.currency, Invoice.account_id, Invoice.gross)
                    .where(col(Invoice.id).in_(unknown))
                ).all()
            }
        lines: dict[int, list] = defaultdict(list)
        for invoice_id in chunk:
            if invoice_id in known_lines:
                lines[invoice_id] = [_Line(line["product_id"], line["net"], line["tax_rate"], line["credits"]) for line in known_lines[invoice_id]]
        unread = [invoice_id for invoice_id in chunk if invoice_id not in known_lines]
        if unread:
            for line in session.exec(
                select(InvoiceLine.invoice_id, InvoiceLine.product_id, InvoiceLine.net, InvoiceLine.tax_rate, InvoiceLine.credits)
                .where(col(InvoiceLine.invoice_id).in_(unread)).order_by(InvoiceLine.id)
            ).all():
                lines[line.invoice_id].append(line)
        roles = _pack_roles(session, {line.product_id for rows in lines.values() for line in rows if line.credits is not None})
        for invoice_id in chunk:
            invoice = invoices[invoice_id]
            entry = name_entry(NewEntry(
                event="invoice_approved", day=invoice.issue_date, made=local_date(invoice.approved_at, zone), currency=invoice.currency,
                source_type="invoice", source_id=str(invoice_id), account_id=invoice.account_id, description="Invoice",
            ), invoice.number)
            entry.debit("receivables", invoice.gross)
            for line in lines[invoice_id]:
                role = "services_revenue" if line.credits is None else roles[line.product_id]
                entry.credit(role, line.net, line.tax_rate.normalize())
            for rate, (_net, tax) in pricing.totals(((line.net, line.tax_rate) for line in lines[invoice_id]), invoice.currency)[3].items():
                entry.credit("vat_payable", tax, rate)
            entries.append(entry)
    return entries


def name_entry(entry: NewEntry, number: str | None) -> NewEntry:
    """An invoice's approval entry named by the invoice's number (its document and description);
    left as it is while the number is not known yet."""
    if number is not None:
        entry.document, entry.description = number, f"Invoice {number}"
    return entry


def _taken_back(session: Session, source_type: str, source_id: int) -> dict[int, Decimal]:
    """The value taken back per invoice line by a credit note, void or reopening (positive)."""
    return {
        line_id: -value
        for line_id, value in session.exec(
            select(Grant.invoice_line_id, func.sum(LedgerEntry.value))
            .join(Grant, Grant.id == LedgerEntry.grant_id)
            .where(LedgerEntry.kind == "credit_note_reversal", LedgerEntry.source_type == source_type, LedgerEntry.source_id == str(source_id))
            .group_by(Grant.invoice_line_id)
        ).all()
    }


def _crediting_entry(
    session: Session, entry: NewEntry, parts: list[tuple[InvoiceLine, Decimal]], taken: dict[int, Decimal], gross: Decimal, *,
    at: datetime, note_id: int | None = None,
):
    """Debit what ``parts`` (invoice line, net credited) take back, VAT per rate; credit receivables."""
    granted = set(session.exec(select(Grant.invoice_line_id).where(col(Grant.invoice_line_id).in_([line.id for line, _ in parts]))).all())
    roles = _pack_roles(session, {line.product_id for line, _ in parts if line.credits is not None})
    for line, net in parts:
        rate = line.tax_rate.normalize()
        if line.credits is None:
            entry.debit("services_revenue", net, rate)
        elif line.id in granted:
            value = taken.get(line.id, ZERO)
            rest = net - value
            if roles[line.product_id] == "credits_awaiting_payment":  # what a reopening moved back there goes first
                waiting = max(ZERO, min(rest, _awaiting_after_reopening(session, line.id, at=at, note_id=note_id)))
                entry.debit("credits_awaiting_payment", waiting, rate)
                rest -= waiting
            entry.debit("deferred_credit_revenue", value, rate).debit("credit_note_allowances", rest, rate)
        else:  # a pack that grants on payment, not paid yet
            entry.debit(roles[line.product_id], net, rate)
    for rate, (_net, tax) in pricing.totals(((net, line.tax_rate) for line, net in parts), entry.currency)[3].items():
        entry.debit("vat_payable", tax, rate)
    entry.credit("receivables", gross)
    return entry


def _awaiting_after_reopening(session: Session, line_id: int, *, at: datetime, note_id: int | None) -> Decimal:
    """What payment reversals moved back to credits awaiting payment for a pack line that grants
    on payment (the value of its credits taken back on reopening) by ``at``, less what credit
    notes approved before (``note_id``: the one being posted) took from there, in their order."""
    reopened = session.exec(
        select(LedgerEntry.recorded_at, LedgerEntry.value)
        .join(Grant, Grant.id == LedgerEntry.grant_id)
        .where(Grant.invoice_line_id == line_id, LedgerEntry.kind == "credit_note_reversal", LedgerEntry.source_type == "payment_reversal")
    ).all()
    earlier = session.exec(
        select(CreditNote.id, CreditNote.approved_at, CreditNoteLine.net)
        .join(CreditNoteLine, CreditNoteLine.credit_note_id == CreditNote.id)
        .where(CreditNoteLine.invoice_line_id == line_id, CreditNote.status == "approved", CreditNote.id != (note_id or 0))
        .order_by(CreditNote.approved_at, CreditNote.id)
    ).all()
    used = ZERO
    for earlier_id, approved_at, net in earlier:
        if approved_at > at or (approved_at == at and note_id is not None and earlier_id > note_id):
            continue
        available = sum((-value for moment, value in reopened if moment <= approved_at), ZERO) - used
        value = _taken_back(session, "credit_note", earlier_id).get(line_id, ZERO)
        used += max(ZERO, min(net - value, available))
    return sum((-value for moment, value in reopened if moment <= at), ZERO) - used


def credit_note_entry(session: Session, note: CreditNote) -> NewEntry:
    lines = session.exec(select(CreditNoteLine).where(CreditNoteLine.credit_note_id == note.id).order_by(CreditNoteLine.id)).all()
    invoice_lines = {
        line.id: line for line in session.exec(select(InvoiceLine).where(col(InvoiceLine.id).in_([line.invoice_line_id for line in lines]))).all()
    }
    number = session.exec(select(Invoice.number).where(Invoice.id == note.invoice_id)).one()
    entry = NewEntry(
        event="credit_note_approved", day=note.issue_date, made=local_date(note.approved_at, _zone()), currency=note.currency,
        source_type="credit_note", source_id=str(note.id), account_id=note.account_id, document=note.number,
        description=f"Credit note {note.number} for invoice {number}",
    )
    parts = [(invoice_lines[line.invoice_line_id], line.net) for line in lines]
    return _crediting_entry(session, entry, parts, _taken_back(session, "credit_note", note.id), note.gross, at=note.approved_at, note_id=note.id)


def void_entry(session: Session, invoice: Invoice) -> NewEntry:
    lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all()
    made = local_date(invoice.voided_at, _zone())
    entry = NewEntry(
        event="invoice_voided", day=made, made=made, currency=invoice.currency, source_type="invoice", source_id=str(invoice.id),
        account_id=invoice.account_id, document=invoice.number, description=f"Invoice {invoice.number} voided",
    )
    parts = [(line, line.net) for line in lines]
    return _crediting_entry(session, entry, parts, _taken_back(session, "invoice_void", invoice.id), invoice.gross, at=invoice.voided_at)


_PAYMENT_EVENTS = {"payment": "payment_received", "reversal": "payment_reversed", "settlement": "unapplied_cash_applied"}


def allocation_entry(payment: Payment, kind: str, rows: list[tuple[int | None, Decimal]], at: datetime, numbers: dict[int, str]) -> NewEntry:
    """The entry of the allocation rows (invoice id or None, signed amount) written at ``at`` for
    one payment: received (``received_at`` is the day, given by the user), reversed, or its
    unapplied cash applied to invoices."""
    zone = _zone()
    made = local_date(at, zone)
    received = kind == "payment"
    invoices = ", ".join(numbers[invoice_id] for invoice_id, _ in rows if invoice_id is not None and invoice_id in numbers)
    # The invoice it concerns: the one paid, or the first that took (or gave back) the cash.
    concerned = next((invoice_id for invoice_id, _ in rows if invoice_id is not None), payment.invoice_id)
    entry = NewEntry(
        event=_PAYMENT_EVENTS[kind], day=local_date(payment.received_at, zone) if received else made, made=made, strict=received,
        currency=payment.currency, source_type="payment", source_id=str(payment.id), account_id=payment.account_id,
        document=numbers.get(concerned), description=f"Payment {payment.id} ({payment.method.replace('_', ' ')})"
        + (f" for {invoices}" if invoices else "") + {"payment": "", "reversal": " reversed", "settlement": ": unapplied cash applied"}[kind],
    )
    money = PAYMENT_ROLES[payment.method]
    for invoice_id, amount in rows:
        entry.credit("receivables" if invoice_id is not None else "unapplied_cash", amount)
        if kind != "settlement":
            entry.debit(money, amount)
    return entry


def invoice_numbers(session: Session, invoice_ids) -> dict[int, str]:
    ids = {invoice_id for invoice_id in invoice_ids if invoice_id is not None}
    return dict(session.exec(select(Invoice.id, Invoice.number).where(col(Invoice.id).in_(ids))).all()) if ids else {}


def post_allocations(session: Session, payments: dict[int, Payment], rows: list[dict], *, at: datetime) -> None:
    """Post the allocation rows just written (mappings with payment_id, invoice_id, amount, kind)."""
    grouped: dict[tuple[int, str], list[tuple[int | None, Decimal]]] = defaultdict(list)
    for row in rows:
        grouped[row["payment_id"], row["kind"]].append((row["invoice_id"], row["amount"]))
    numbers = invoice_numbers(session, [row["invoice_id"] for row in rows] + [payment.invoice_id for payment in payments.values()])
    post(session, [allocation_entry(payments[payment_id], kind, parts, at, numbers) for (payment_id, kind), parts in grouped.items()], at=at)


def grant_value_entries(session: Session, invoice: Invoice, *, kind: str, source_type: str, source_id: int, at: datetime) -> list[NewEntry]:
    """Credits of packs that grant on payment: granted (the value moves from credits awaiting
    payment to deferred revenue) or taken back on a reopening (back again)."""
    if kind == "grant":
        value = session.exec(
            select(func.sum(LedgerEntry.value))
            .join(Grant, Grant.id == LedgerEntry.grant_id)
            .join(InvoiceLine, InvoiceLine.id == Grant.invoice_line_id)
            .where(InvoiceLine.invoice_id == invoice.id, LedgerEntry.kind == "grant", LedgerEntry.recorded_at == at)
        ).one()
    else:
        lines = set(session.exec(select(InvoiceLine.id).where(InvoiceLine.invoice_id == invoice.id)).all())
        value = sum((taken for line_id, taken in _taken_back(session, source_type, source_id).items() if line_id in lines), ZERO)
    if not value:
        return []
    day = local_date(at, _zone())
    granted = kind == "grant"
    entry = NewEntry(
        event="credits_granted_on_payment" if granted else "credits_taken_back_on_reopening", day=day, made=day, currency=invoice.currency,
        source_type="invoice" if granted else source_type, source_id=str(invoice.id if granted else source_id), account_id=invoice.account_id,
        document=invoice.number,
        description=f"Invoice {invoice.number}: credits " + ("granted on payment" if granted else "taken back, payment reversed"),
    )
    if granted:
        entry.debit("credits_awaiting_payment", value).credit("deferred_credit_revenue", value)
    else:
        entry.debit("deferred_credit_revenue", value).credit("credits_awaiting_payment", value)
    return [entry]


# Rebuilding ------------------------------------------------------------------------------------


class JournalNotEmpty(Conflict):
    code = "journal_not_empty"
    title = "The journal has entries"


def rebuild(session: Session, *, replace: bool = False) -> int:
    """Post the journal of everything the database holds, in the order it happened: approvals,
    credit notes, voids, payments and their allocations, and the ledger's valued entries.
    Refused when the journal has entries, unless ``replace`` (which a lock date refuses: the
    closed books must stay as they were exported). Returns the entries posted."""
    from licensing.books.journal import lock_date

    has_entries = session.exec(select(JournalEntry.id).limit(1)).first() is not None
    if has_entries:
        if not replace:
            raise JournalNotEmpty("the journal has entries already: rebuild builds the journal of a database that has none (or --replace)")
        if lock_date(session) is not None:
            raise JournalNotEmpty("the books have a lock date: the journal up to it stays as it is")
        session.exec(JournalPosting.__table__.delete())
        session.exec(JournalEntry.__table__.delete())
    zone = _zone()
    timeline: list[tuple[datetime, int, object]] = []  # (when recorded, order within that moment, what to post)
    for invoice in session.exec(select(Invoice).where(col(Invoice.approved_at).is_not(None))).all():
        timeline.append((invoice.approved_at, 0, ("approval", invoice.id)))
        if invoice.voided_at is not None:
            timeline.append((invoice.voided_at, 3, ("void", invoice)))
    for note in session.exec(select(CreditNote).where(CreditNote.status == "approved")).all():
        timeline.append((note.approved_at, 3, ("credit_note", note)))
    payments = {payment.id: payment for payment in session.exec(select(Payment)).all()}
    allocations: dict[tuple[int, str, datetime], list] = defaultdict(list)
    for row in session.exec(select(PaymentAllocation).order_by(PaymentAllocation.id)).all():
        allocations[row.payment_id, row.kind, row.created_at].append((row.invoice_id, row.amount))
    numbers = invoice_numbers(
        session, [invoice_id for parts in allocations.values() for invoice_id, _ in parts] + [p.invoice_id for p in payments.values()]
    )
    for (payment_id, kind, at), parts in allocations.items():
        timeline.append((at, 2, ("allocation", (payments[payment_id], kind, parts, at))))
    ledger_rows: dict[datetime, list[dict]] = defaultdict(list)
    currencies = dict(session.exec(select(Grant.id, Grant.currency)).all())
    for row in session.exec(
        select(LedgerEntry).where(col(LedgerEntry.kind).in_(list(VALUED))).order_by(LedgerEntry.id)
    ).all():
        ledger_rows[row.recorded_at].append(row.model_dump() | {"currency": currencies[row.grant_id]})
    for at, rows in ledger_rows.items():
        timeline.append((at, 4, ("ledger", rows)))
    for invoice_id, at in session.exec(
        select(InvoiceLine.invoice_id, LedgerEntry.recorded_at).distinct()
        .join(Grant, Grant.invoice_line_id == InvoiceLine.id).join(LedgerEntry, LedgerEntry.grant_id == Grant.id)
        .join(Product, Product.id == InvoiceLine.product_id)
        .where(LedgerEntry.kind == "grant", Product.grant_on == "payment")
    ).all():
        timeline.append((at, 2, ("granted", (invoice_id, at))))
    for payment_id, invoice_id, at in session.exec(
        select(LedgerEntry.source_id, InvoiceLine.invoice_id, LedgerEntry.recorded_at).distinct()
        .join(Grant, Grant.id == LedgerEntry.grant_id).join(InvoiceLine, InvoiceLine.id == Grant.invoice_line_id)
        .where(LedgerEntry.kind == "credit_note_reversal", LedgerEntry.source_type == "payment_reversal")
    ).all():
        timeline.append((at, 3, ("reopened", (int(payment_id), invoice_id, at))))
    timeline.sort(key=lambda item: (item[0], item[1]))
    posted = 0
    for at, _order, (what, subject) in timeline:
        if what == "approval":
            entries = approval_entries(session, [subject])
        elif what == "credit_note":
            entries = [credit_note_entry(session, subject)]
        elif what == "void":
            entries = [void_entry(session, subject)]
        elif what == "allocation":
            payment, kind, parts, when = subject
            entries = [allocation_entry(payment, kind, parts, when, numbers)]
        elif what == "granted":
            invoice_id, when = subject
            invoice = session.get(Invoice, invoice_id)
            entries = grant_value_entries(session, invoice, kind="grant", source_type="invoice", source_id=invoice_id, at=when)
        elif what == "reopened":
            payment_id, invoice_id, when = subject
            invoice = session.get(Invoice, invoice_id)
            entries = grant_value_entries(session, invoice, kind="reopen", source_type="payment_reversal", source_id=payment_id, at=when)
        else:
            entries = ledger_entries(subject, zone)
        # As it happened: the lock date closes the books of a journal that exists, not this one's.
        post(session, entries, at=at, lock=False)
        posted += len(entries)
    return posted
