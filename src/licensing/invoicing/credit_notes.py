"""Credit notes (SPEC 6) and voiding approved invoices.

A credit note credits an approved invoice: whole, or chosen lines by ``quantity`` (in the
invoice line's units) or net ``amount``. It is a draft until approved; approval numbers it in
its own gapless series (``CN-2027-000001``) and, for every credit-pack line, takes back the
same share of that line's grant:

    credits taken back = credits granted x (net credited / line net), rounded down to 2 places

(a line with a net of zero is shared by quantity instead). Only credits that remain can be
taken back: with too few, approval is refused with the count that remains
(``credits_already_consumed``), unless the note's ``credit_policy`` is ``cap_to_remaining``
(take back what remains, credit the money in full). Taken-back credits leave the balance and
the liability at once (``credit_note_reversal`` entries, counted as removed).

The money credited on a line never exceeds what remains to credit on it, counting every other
credit note of the invoice (drafts included when a note is made; approved ones when approved).

Voiding an approved invoice that no credit note covers takes back all of its credits the same
way, as if a credit note credited it whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.books.journal import post
from licensing.clock import local_date
from licensing.config import Settings, get_settings
from licensing.credits.expiry import record_due_expiries
from licensing.db.repository import get_or_404, get_reference, id_filter, lock
from licensing.errors import (
    Conflict,
    InvoiceNotDraft,
    UnknownReference,
    ValidationFailed,
)
from licensing.events import record_event
from licensing.invoicing import pricing
from licensing.invoicing.approval import buyer_details, seller_details
from licensing.invoicing.granting import take_back
from licensing.invoicing.journal import credit_note_entry, void_entry
from licensing.invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from licensing.invoicing.numbering import allocate_numbers
from licensing.invoicing.payments import apply_credit, check_voidable, invoice_paid_data, refresh_overdue
from licensing.money import ZERO, minor_unit, round_money

POLICIES = ("strict", "cap_to_remaining")
QUANTITY_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class CreditRequest:
    """One line asked for: an invoice line and either a quantity or a net amount."""

    invoice_line_id: str | int
    quantity: Decimal | None = None
    amount: Decimal | None = None


def credited_so_far(session: Session, invoice_id: int, *, approved_only: bool, excluding: int | None = None) -> dict[int, tuple[Decimal, Decimal]]:
    """(net, quantity) already credited on each line of the invoice by its other credit notes."""
    statement = (
        select(CreditNoteLine.invoice_line_id, CreditNoteLine.net, CreditNoteLine.quantity)
        .join(CreditNote, CreditNote.id == CreditNoteLine.credit_note_id)
        .where(CreditNote.invoice_id == invoice_id)
    )
    if approved_only:
        statement = statement.where(CreditNote.status == "approved")
    if excluding is not None:
        statement = statement.where(CreditNote.id != excluding)
    credited: dict[int, tuple[Decimal, Decimal]] = {}
    for line_id, net, quantity in session.exec(statement).all():
        before = credited.get(line_id, (ZERO, ZERO))
        credited[line_id] = (before[0] + net, before[1] + quantity)
    return credited


def _left(line: InvoiceLine, credited: dict[int, tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal]:
    net, quantity = credited.get(line.id, (ZERO, ZERO))
    return line.net - net, line.quantity - quantity


def create_credit_note(
    session: Session,
    *,
    invoice_id: str | int,
    lines: list[CreditRequest] | None = None,
    reason: str = "",
    credit_policy: str = "strict",
    now: datetime,
    actor: str,
    settings: Settings | None = None,
) -> CreditNote:
    """A draft credit note of an approved invoice: whole when ``lines`` is empty."""
    settings = settings or get_settings()
    if credit_policy not in POLICIES:
        raise ValidationFailed("credit_policy must be strict or cap_to_remaining", field="credit_policy")
    invoice = get_reference(session, Invoice, invoice_id, "invoice_id")
    invoice = lock(session, Invoice, invoice.id, "invoice")
    if invoice.status not in ("approved", "paid"):
        raise InvoiceNotDraft(f"invoice {invoice.id} is {invoice.status}: only approved invoices can be credited", invoice_status=invoice.status)
    invoice_lines = {
        line.id: line for line in session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all()
    }
    credited = credited_so_far(session, invoice.id, approved_only=False)
    places = Decimal(1).scaleb(-minor_unit(invoice.currency))
    rows = []
    if not lines:
        for line in invoice_lines.values():
            net_left, quantity_left = _left(line, credited)
            if net_left > 0 or (line.net == 0 and quantity_left > 0):
                rows.append(
                    (
                        line,
                        quantity_left if line.net == 0 else (line.quantity * net_left / line.net).quantize(QUANTITY_PLACES, ROUND_HALF_UP),
                        net_left,
                    )
                )
        if not rows:
            raise ValidationFailed(f"invoice {invoice.id} has nothing left to credit", field="lines")
    seen = set()
    for index, request in enumerate(lines or []):
        field = f"lines.{index}"
        line = invoice_lines.get(id_filter(request.invoice_line_id))
        if line is None:
            raise UnknownReference(f"invoice line {request.invoice_line_id} is not a line of invoice {invoice.id}", field=f"{field}.invoice_line_id")
        if line.id in seen:
            raise ValidationFailed(f"invoice line {line.id} is named twice", field=f"{field}.invoice_line_id")
        seen.add(line.id)
        if (request.quantity is None) == (request.amount is None):
            raise ValidationFailed("give either quantity or amount", field=field)
        net_left, quantity_left = _left(line, credited)
        if request.quantity is not None:
            if request.quantity <= 0:
                raise ValidationFailed("quantity must be greater than zero", field=f"{field}.quantity")
            if request.quantity > quantity_left:
                raise ValidationFailed(
                    f"quantity {request.quantity} is more than the {quantity_left} left to credit on line {line.id}", field=f"{field}.quantity"
                )
            quantity = request.quantity
            net = round_money(line.net * quantity / line.quantity, invoice.currency)
            net = min(net, net_left)
        else:
            amount = request.amount
            if amount <= 0:
                raise ValidationFailed("amount must be greater than zero", field=f"{field}.amount")
            if amount != amount.quantize(places):
                raise ValidationFailed(f"amount has more places than {invoice.currency} allows", field=f"{field}.amount")
            if amount > net_left:
                raise ValidationFailed(f"amount {amount} is more than the {net_left} left to credit on line {line.id}", field=f"{field}.amount")
            net = amount
            quantity = (line.quantity * amount / line.net).quantize(QUANTITY_PLACES, ROUND_HALF_UP)
        rows.append((line, quantity, net))
    totals_net, totals_tax, totals_gross, _ = pricing.totals(((net, line.tax_rate) for line, _quantity, net in rows), invoice.currency)
    note = CreditNote(
        invoice_id=invoice.id, account_id=invoice.account_id, status="draft", reason=reason, credit_policy=credit_policy,
        currency=invoice.currency, issue_date=local_date(now, settings.zone), net=totals_net, tax=totals_tax, gross=totals_gross,
        created_at=now, actor=actor,
    )
    session.add(note)
    session.flush()
    for line, quantity, net in rows:
        session.add(CreditNoteLine(
            credit_note_id=note.id, invoice_line_id=line.id, description=line.description, quantity=quantity,
            unit_price=line.unit_price, tax_rate=line.tax_rate, net=net, tax=pricing.tax_of(net, line.tax_rate, invoice.currency),
        ))
    session.flush()
    return note




def note_lines(session: Session, note_id: int) -> list[CreditNoteLine]:
    return list(session.exec(select(CreditNoteLine).where(CreditNoteLine.credit_note_id == note_id).order_by(CreditNoteLine.id)).all())


def approve_credit_note(
    session: Session, note_id: str | int, *, now: datetime, actor: str, credit_policy: str | None = None, settings: Settings | None = None
) -> CreditNote:
    """Number the note and take back its credits. Approving an approved note returns it.
    ``credit_policy``, when given, replaces the note's own (the operator decides on approval)."""
    settings = settings or get_settings()
    if credit_policy is not None and credit_policy not in POLICIES:
        raise ValidationFailed("credit_policy must be strict or cap_to_remaining", field="credit_policy")
    note = get_or_404(session, CreditNote, note_id, "credit note")
    account = lock(session, Account, note.account_id, "account")
    note = lock(session, CreditNote, note.id, "credit note")
    if note.status == "approved":
        return note
    if credit_policy is not None:
        note.credit_policy = credit_policy
    invoice = lock(session, Invoice, note.invoice_id, "invoice")
    if invoice.status not in ("approved", "paid"):
        raise InvoiceNotDraft(f"invoice {invoice.id} is {invoice.status}: only approved invoices can be credited", invoice_status=invoice.status)
    lines = note_lines(session, note.id)
    invoice_lines = {
        line.id: line for line in session.exec(select(InvoiceLine).where(col(InvoiceLine.id).in_([line.invoice_line_id for line in lines]))).all()
    }
    credited = credited_so_far(session, invoice.id, approved_only=True, excluding=note.id)
    for line in lines:
        net_left, quantity_left = _left(invoice_lines[line.invoice_line_id], credited)
        if line.net > net_left or line.quantity > quantity_left:
            raise Conflict(f"line {line.invoice_line_id} has only {net_left} left to credit", field="lines")
    record_due_expiries(session, account, now=now)
    shares = {line.id: credited_share(line, invoice_lines[line.invoice_line_id]) for line in lines}
    taken = take_back(
        session, account, [(line.invoice_line_id, shares[line.id]) for line in lines], policy=note.credit_policy,
        source_type="credit_note", source_id=note.id, now=now, actor=actor,
    )
    for line in lines:
        line.credits_taken_back = taken.get(line.invoice_line_id, ZERO)
        session.add(line)
    [note.number] = allocate_numbers(session, "CN", local_date(now, settings.zone).year, 1)
    note.status, note.approved_at, note.approved_by, note.issue_date = "approved", now, actor, local_date(now, settings.zone)
    note.seller_details, note.buyer_details = seller_details(settings), buyer_details(account, settings)  # as issued, for good
    session.add(note)
    post(session, [credit_note_entry(session, note)], at=now)
    if apply_credit(invoice, note.gross):
        record_event(session, "invoice.paid", invoice_paid_data(invoice), at=now)
    session.add(invoice)
    refresh_overdue(session, [invoice.account_id])
    record_event(
        session, "credit_note.approved",
        {"credit_note_id": str(note.id), "number": note.number, "invoice_id": str(invoice.id), "account_id": str(account.id),
         "gross": str(round_money(note.gross, note.currency)), "credits_taken_back": f"{sum(taken.values(), ZERO):.2f}"},
        at=now,
    )
    session.flush()
    return note


def credited_share(note_line: CreditNoteLine, line: InvoiceLine) -> Fraction:
    """The exact share of an invoice line that a credit note line credits: net credited / line
    net (by quantity for a line with a net of zero). Exact, so that 100.00 of 300.00 is 1/3."""
    if line.net:
        return Fraction(note_line.net) / Fraction(line.net)
    return Fraction(note_line.quantity) / Fraction(line.quantity)


def void_invoice(
    session: Session, invoice_id: str | int, *, credit_policy: str = "strict", reason: str | None = None, now: datetime, actor: str
) -> Invoice:
    """Void an approved invoice that no credit note covers, taking back its credits (as a
    credit note of the whole invoice would), keeping ``reason`` (shown on its document; blank is
    none). Voiding a void invoice returns it as it is (its first reason stays); drafts are
    refused (they are deleted, not voided)."""
    if credit_policy not in POLICIES:
        raise ValidationFailed("credit_policy must be strict or cap_to_remaining", field="credit_policy")
    invoice = get_or_404(session, Invoice, invoice_id, "invoice")
    account = lock(session, Account, invoice.account_id, "account")
    invoice = lock(session, Invoice, invoice.id, "invoice")
    if invoice.status == "void":
        return invoice
    if invoice.status == "draft":
        raise InvoiceNotDraft(f"invoice {invoice.id} is a {invoice.status}: drafts are deleted, not voided", invoice_status=invoice.status)
    check_voidable(invoice)
    notes = session.exec(select(CreditNote.id).where(CreditNote.invoice_id == invoice.id)).all()
    if notes:
        raise InvoiceCredited(
            f"invoice {invoice.id} is covered by credit note(s) {', '.join(map(str, notes))}: credit the rest instead",
            credit_note_ids=[str(n) for n in notes],
        )
    record_due_expiries(session, account, now=now)
    line_ids = session.exec(select(InvoiceLine.id).where(InvoiceLine.invoice_id == invoice.id, col(InvoiceLine.credits).is_not(None))).all()
    take_back(
        session,
        account,
        [(line_id, Fraction(1)) for line_id in line_ids],
        policy=credit_policy,
        source_type="invoice_void",
        source_id=invoice.id,
        now=now,
        actor=actor,
    )
    invoice.status, invoice.voided_at, invoice.voided_by = "void", now, actor
    invoice.void_reason = reason.strip() if reason and reason.strip() else None
    session.add(invoice)
    post(session, [void_entry(session, invoice)], at=now)
    refresh_overdue(session, [invoice.account_id])
    record_event(
        session, "invoice.voided", {"invoice_id": str(invoice.id), "number": invoice.number, "account_id": str(account.id), "actor": actor}, at=now
    )
    session.flush()
    return invoice


class InvoiceCredited(Conflict):
    code = "invoice_credited"
    title = "Invoice covered by a credit note"
