"""Money in (SPEC 12): payments recorded against invoices, reversed, and the account's unapplied
cash settled against its next invoices.

What is due on an approved invoice is its gross, less the gross of its approved credit notes
(``amount_credited``), less what payments applied to it (``amount_paid``); never below zero.
``payment_status`` follows: ``paid`` when nothing is due (by payments, credit notes or both),
``partially_paid`` when something was paid and something is due, else ``unpaid``. The invoice's
``status`` is ``paid`` exactly when its payment status is (and ``approved`` again when a reversal
reopens it); a payment never changes its lines or number.

Every part of a payment goes somewhere, recorded as a ``PaymentAllocation``: to the invoice (up
to what is due) and, for an overpayment the caller allowed, to the account's unapplied cash,
which the account's next approved invoices take, oldest payment first, in the approving
transaction. A reversal (refund, returned debit, chargeback) adds the negative of what each
invoice still holds of the payment, and of what is still unapplied, and reopens those invoices.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.config import get_settings
from licensing.db.bulk import insert_rows
from licensing.db.repository import get_or_404, lock
from licensing.errors import Conflict, CurrencyMismatch, ValidationFailed
from licensing.events import event_row, record_event, record_events
from licensing.invoicing.granting import grant_on_payment, take_back_on_reopening
from licensing.invoicing.journal import post_allocations
from licensing.invoicing.models import CreditNote, Invoice, Payment, PaymentAllocation
from licensing.money import ZERO, minor_unit, round_money

METHODS = ("bank_transfer", "card", "cash", "direct_debit", "other")


class Overpayment(Conflict):
    code = "overpayment"
    title = "Payment exceeds what is due"


class InvoiceNotPayable(Conflict):
    code = "invoice_not_payable"
    title = "Only approved invoices take payments"


class InvoiceHasPayments(Conflict):
    code = "invoice_paid"
    title = "Invoice has payments"


class PaymentAlreadyReversed(Conflict):
    code = "payment_already_reversed"
    title = "Payment already reversed"


@dataclass(frozen=True, slots=True)
class Due:
    """What an invoice's payments and credit notes leave to pay, at a date."""

    amount_paid: Decimal
    amount_due: Decimal
    payment_status: str  # unpaid, partially_paid, paid
    days_overdue: int


def amount_due(invoice) -> Decimal:
    return max(invoice.gross - invoice.amount_credited - invoice.amount_paid, ZERO)


def due_of(invoice, today: date) -> Due:
    """What is due on ``invoice`` (an approved or paid one; a draft or void invoice is not
    payable: nothing due), and how many days past its due date at ``today``."""
    if invoice.status not in ("approved", "paid"):
        return Due(invoice.amount_paid, ZERO, "unpaid", 0)
    due = amount_due(invoice)
    status = "paid" if due <= 0 else "partially_paid" if invoice.amount_paid > 0 else "unpaid"
    overdue = max((today - invoice.due_date).days, 0) if due > 0 else 0
    return Due(invoice.amount_paid, due, status, overdue)


def apply_credit(invoice: Invoice, gross: Decimal) -> bool:
    """An approved credit note of ``gross`` reduces what is due on ``invoice``; whether that left
    nothing to pay (the invoice is then ``paid``)."""
    invoice.amount_credited += gross
    return _settle_status(invoice)


def check_voidable(invoice: Invoice) -> None:
    """An invoice that payments hold money of cannot be voided: reverse them first."""
    if invoice.amount_paid > 0:
        raise InvoiceHasPayments(
            f"invoice {invoice.id} has {invoice.amount_paid} paid: reverse its payments before voiding it",
            amount_paid=str(round_money(invoice.amount_paid, invoice.currency)),
        )


def _settle_status(invoice: Invoice) -> bool:
    """Make ``status`` follow what is due (paid exactly when nothing is); whether it became paid."""
    before = invoice.status
    invoice.status = "paid" if amount_due(invoice) <= 0 else "approved"
    return before != "paid" and invoice.status == "paid"


def record_payment(
    session: Session,
    invoice_id: int | str,
    *,
    amount: Decimal,
    currency: str | None = None,
    method: str = "bank_transfer",
    received_at: datetime,
    reference: str | None = None,
    allow_overpayment: bool = False,
    now: datetime,
    actor: str,
) -> Payment:
    """Record money received for an invoice. Refused, with nothing written: an amount of zero or
    less or with more places than the currency has, another currency (``currency_mismatch``), a
    draft or void invoice (``invoice_not_payable``), more than is due unless
    ``allow_overpayment`` (``overpayment``; the excess is then the account's unapplied cash)."""
    if method not in METHODS:
        raise ValidationFailed(f"method must be one of {', '.join(METHODS)}", field="method")
    invoice = get_or_404(session, Invoice, invoice_id, "invoice")
    if amount <= 0:
        raise ValidationFailed("amount must be greater than zero", field="amount")
    if amount != amount.quantize(Decimal(1).scaleb(-minor_unit(invoice.currency))):
        raise ValidationFailed(f"amount has more decimal places than {invoice.currency} has", field="amount")
    if currency is not None and currency != invoice.currency:
        raise CurrencyMismatch(f"invoice {invoice.id} is in {invoice.currency}, the payment in {currency}", invoice_currency=invoice.currency)
    account = lock(session, Account, invoice.account_id, "account")
    invoice = lock(session, Invoice, invoice.id, "invoice")
    if invoice.status not in ("approved", "paid"):
        raise InvoiceNotPayable(f"invoice {invoice.id} is {invoice.status}: only approved invoices take payments", invoice_status=invoice.status)
    due = amount_due(invoice)
    applied = min(amount, due)
    excess = amount - applied
    if excess > 0 and not allow_overpayment:
        raise Overpayment(
            f"the payment of {round_money(amount, invoice.currency)} is more than the {round_money(due, invoice.currency)} due on invoice "
            f"{invoice.id}: allow_overpayment keeps the rest as unapplied cash",
            amount_due=str(round_money(due, invoice.currency)),
        )
    payment = Payment(
        account_id=invoice.account_id, invoice_id=invoice.id, currency=invoice.currency, amount=amount, method=method,
        received_at=received_at, reference=reference, recorded_by=actor, created_at=now,
    )
    session.add(payment)
    session.flush()
    parts = [(invoice.id, applied)] if applied > 0 else []
    if excess > 0:
        parts.append((None, excess))
    _allocate(session, payment, parts, kind="payment", at=now)
    invoice.amount_paid += applied
    paid = _settle_status(invoice)
    session.add(invoice)
    refresh_overdue(session, [invoice.account_id])
    record_event(session, "payment.received", _payment_data(payment, applied=applied, unapplied=excess), at=now)
    if paid:
        record_event(session, "invoice.paid", invoice_paid_data(invoice), at=now)
        grant_on_payment(session, invoice, account, at=now, actor=actor, settings=get_settings())
    session.flush()
    return payment


def reverse_payment(session: Session, payment_id: int | str, *, reason: str | None = None, now: datetime, actor: str) -> Payment:
    """Reverse a payment (refund, returned debit, chargeback): each invoice gives back what it
    holds of it and is reopened, the unapplied rest is gone. A reversed payment is refused
    (``payment_already_reversed``)."""
    payment = get_or_404(session, Payment, payment_id, "payment")
    lock(session, Account, payment.account_id, "account")
    payment = lock(session, Payment, payment.id, "payment")
    if payment.status == "reversed":
        raise PaymentAlreadyReversed(f"payment {payment.id} was reversed at {payment.reversed_at.isoformat()}")
    held = applied_to(session, payment.id)
    invoices = {invoice_id: lock(session, Invoice, invoice_id, "invoice") for invoice_id in sorted(i for i in held if i is not None)}
    _allocate(session, payment, [(invoice_id, -amount) for invoice_id, amount in held.items()], kind="reversal", at=now)
    payment.status, payment.reversed_at, payment.reversed_by = "reversed", now, actor
    payment.reversal_reason = reason.strip() if reason and reason.strip() else None
    session.add(payment)
    account = session.get(Account, payment.account_id)
    for invoice_id, invoice in invoices.items():
        was_paid = invoice.status == "paid"
        invoice.amount_paid -= held[invoice_id]
        _settle_status(invoice)
        session.add(invoice)
        if was_paid and invoice.status == "approved":  # reopened: credits that came with its payment go back
            take_back_on_reopening(session, invoice, account, source_id=payment.id, at=now, actor=actor)
    refresh_overdue(session, [payment.account_id])
    record_event(
        session, "payment.reversed",
        _payment_data(payment) | {"reason": payment.reversal_reason, "reopened_invoice_ids": [str(i) for i in invoices]},
        at=now,
    )
    session.flush()
    return payment


def settle_unapplied_cash(session: Session, invoices: list, *, at: datetime) -> None:
    """Let just approved ``invoices`` (rows with id, account_id, currency, gross) take their
    accounts' unapplied cash, oldest payment first, invoices in the order given. The caller holds
    the accounts' locks and the invoices are in its transaction."""
    by_account: dict[int, list] = defaultdict(list)
    for invoice in invoices:
        by_account[invoice.account_id].append(invoice)
    available = session.exec(
        select(PaymentAllocation.account_id, PaymentAllocation.payment_id, func.sum(PaymentAllocation.amount))
        .where(col(PaymentAllocation.account_id).in_(list(by_account)), col(PaymentAllocation.invoice_id).is_(None))
        .group_by(PaymentAllocation.account_id, PaymentAllocation.payment_id)
        .having(func.sum(PaymentAllocation.amount) > 0)
        .order_by(PaymentAllocation.account_id, PaymentAllocation.payment_id)
    ).all()
    if not available:
        return
    cash: dict[int, list[list]] = defaultdict(list)  # account -> [[payment id, amount left]]
    for account_id, payment_id, amount in available:
        cash[account_id].append([payment_id, amount])
    payments = {payment.id: payment for payment in session.exec(select(Payment).where(col(Payment.id).in_([row[1] for row in available])))}
    # Fresh from the database: the approval wrote their new state with Core statements.
    approved_ids = [invoice.id for account_id in cash for invoice in by_account[account_id]]
    fresh = {
        invoice.id: invoice
        for invoice in session.exec(
            select(Invoice).where(col(Invoice.id).in_(approved_ids)).with_for_update().execution_options(populate_existing=True)
        )
    }
    rows, events, paid_now = [], [], []
    for account_id, pool in cash.items():
        for approved in by_account[account_id]:
            invoice = fresh[approved.id]
            for entry in pool:
                payment_id, left = entry
                due = amount_due(invoice)
                if due <= 0 or left <= 0 or payments[payment_id].currency != invoice.currency:
                    continue
                taken = min(left, due)
                entry[1] = left - taken
                payment = payments[payment_id]
                rows += [_allocation(payment, None, -taken, "settlement", at), _allocation(payment, invoice.id, taken, "settlement", at)]
                invoice.amount_paid += taken
            if _settle_status(invoice):
                events.append(event_row("invoice.paid", invoice_paid_data(invoice), at=at))
                paid_now.append(invoice)
            session.add(invoice)
    insert_rows(session, PaymentAllocation.__table__, rows)
    post_allocations(session, payments, rows, at=at)
    record_events(session, events)
    for invoice in paid_now:
        grant_on_payment(session, invoice, session.get(Account, invoice.account_id), at=at, actor="payment", settings=get_settings())
    session.flush()


def refresh_overdue(session: Session, account_ids) -> None:
    """Write each account's ``overdue_since``: the due date of its oldest approved invoice with
    something still due (an ``approved`` invoice is one: a paid one is ``paid``), or none."""
    ids = sorted(set(account_ids))
    if not ids:
        return
    session.flush()  # invoice statuses changed through the ORM, before the statement reads them
    accounts, invoices = Account.__table__, Invoice.__table__
    oldest = (
        select(func.min(invoices.c.due_date))
        .where(invoices.c.account_id == accounts.c.id, invoices.c.status == "approved")
        .scalar_subquery()
    )
    session.execute(update(accounts).where(accounts.c.id.in_(ids)).values(overdue_since=oldest))


def refund_due(session: Session, note: CreditNote, invoice: Invoice) -> Decimal:
    """What the operator owes back for an approved credit note: the part of the credit that its
    invoice could not absorb because it had been paid. The engine records no refunds: this is
    what remains to pay back outside it. Of several notes, the latest approved exceed first."""
    if note.status != "approved":
        return ZERO
    over = invoice.amount_paid + invoice.amount_credited - invoice.gross
    if over <= 0:
        return ZERO
    later = session.exec(
        select(func.coalesce(func.sum(CreditNote.gross), 0)).where(
            CreditNote.invoice_id == invoice.id, CreditNote.status == "approved",
            (col(CreditNote.approved_at) > note.approved_at) | ((col(CreditNote.approved_at) == note.approved_at) & (col(CreditNote.id) > note.id)),
        )
    ).one()
    return max(ZERO, min(note.gross, over - later))


def unapplied_cash(session: Session, account_id: int) -> Decimal:
    return session.exec(
        select(func.coalesce(func.sum(PaymentAllocation.amount), 0)).where(
            PaymentAllocation.account_id == account_id, col(PaymentAllocation.invoice_id).is_(None)
        )
    ).one()


def applied_to(session: Session, payment_id: int) -> dict[int | None, Decimal]:
    """Where a payment stands: what each invoice holds of it (None: unapplied)."""
    rows = session.exec(
        select(PaymentAllocation.invoice_id, func.sum(PaymentAllocation.amount))
        .where(PaymentAllocation.payment_id == payment_id)
        .group_by(PaymentAllocation.invoice_id)
    ).all()
    return {invoice_id: Decimal(amount) for invoice_id, amount in rows if amount}


def _allocate(session: Session, payment: Payment, parts: list[tuple[int | None, Decimal]], *, kind: str, at: datetime) -> None:
    rows = [_allocation(payment, invoice_id, amount, kind, at) for invoice_id, amount in parts if amount]
    insert_rows(session, PaymentAllocation.__table__, rows)
    post_allocations(session, {payment.id: payment}, rows, at=at)


def _allocation(payment: Payment, invoice_id: int | None, amount: Decimal, kind: str, at: datetime) -> dict:
    return {"payment_id": payment.id, "account_id": payment.account_id, "invoice_id": invoice_id, "amount": amount, "kind": kind, "created_at": at}


def _payment_data(payment: Payment, **amounts: Decimal) -> dict:
    data = {
        "payment_id": str(payment.id), "invoice_id": str(payment.invoice_id), "account_id": str(payment.account_id),
        "amount": str(round_money(payment.amount, payment.currency)), "currency": payment.currency, "method": payment.method,
    }
    return data | {name: str(round_money(value, payment.currency)) for name, value in amounts.items()}


def invoice_paid_data(invoice: Invoice) -> dict:
    return {
        "invoice_id": str(invoice.id), "number": invoice.number, "account_id": str(invoice.account_id),
        "amount_paid": str(round_money(invoice.amount_paid, invoice.currency)),
    }
