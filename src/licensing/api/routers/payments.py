"""Money in: payments recorded against invoices, listed, and reversed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import col, select

from licensing import clock
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import (
    Billing,
    DatabaseDep,
    IdempotencyKey,
    Pagination,
    ReadBooks,
    check_owner,
    get_owned,
    in_scope,
    paginate,
    write,
)
from licensing.api.schemas import Instant, PaymentIn, PaymentReverseIn
from licensing.db.repository import id_filter
from licensing.invoicing.models import Invoice, Payment
from licensing.invoicing.payments import applied_to, record_payment, reverse_payment

router = APIRouter(prefix="/api/v1", tags=["money in"])


def present(session, payment: Payment) -> dict:
    return presenters.payment(payment, applied_to(session, payment.id))


@router.post(
    "/invoices/{invoice_id}/payments",
    status_code=201,
    summary="Record a payment",
    description=(
        "Money received for an approved invoice: `amount`, `currency` (optional; another than the invoice's is 409 "
        "`currency_mismatch`), `method`, `received_at` (default: now), `reference`. More than `amount_due` is 409 "
        "`overpayment` unless `allow_overpayment` is true: the rest is then the account's unapplied cash, which its next "
        "approved invoices take. A draft or void invoice is 409 `invoice_not_payable`. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(
        docs.Payment, "The payment recorded.", *docs.AUTH, "not_found", "currency_mismatch", "overpayment", "invoice_not_payable",
        "idempotency_conflict", status=201,
    ),
)
def create(invoice_id: str, body: PaymentIn, caller: Billing, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None):
    def action(session):
        check_owner(session, caller, Invoice, invoice_id, "invoice")
        now = clock.now()
        payment = record_payment(
            session, invoice_id, amount=body.amount, currency=body.currency, method=body.method, received_at=body.received_at or now,
            reference=body.reference, allow_overpayment=body.allow_overpayment, now=now, actor=caller.actor,
        )
        return 201, present(session, payment)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))


@router.get(
    "/payments",
    summary="List payments",
    description="Payments, oldest first, filtered by `account_id`, `invoice_id` and `since` (received at or after).",
    responses=docs.documented(docs.PaymentPage, "A page of payments.", *docs.AUTH),
)
def list_payments(
    caller: ReadBooks,
    database: DatabaseDep,
    page: Pagination,
    account_id: Annotated[str | None, Query(max_length=40)] = None,
    invoice_id: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[Instant | None, Query(description="payments received at or after this instant (RFC 3339)")] = None,
):
    statement = in_scope(select(Payment), caller, Payment.account_id)
    if account_id is not None:
        statement = statement.where(Payment.account_id == id_filter(account_id))
    if invoice_id is not None:
        statement = statement.where(Payment.invoice_id == id_filter(invoice_id))
    if since is not None:
        statement = statement.where(col(Payment.received_at) >= since)
    with database.read() as session:
        return paginate(session, statement, Payment.id, page, lambda payment: present(session, payment))


@router.get(
    "/payments/{payment_id}",
    summary="Get a payment",
    description="One payment, with what each invoice holds of it and what is unapplied.",
    responses=docs.documented(docs.Payment, "The payment.", *docs.AUTH, "not_found"),
)
def get_payment(payment_id: str, caller: ReadBooks, database: DatabaseDep):
    with database.read() as session:
        return present(session, get_owned(session, caller, Payment, payment_id, "payment"))


@router.post(
    "/payments/{payment_id}/reverse",
    summary="Reverse a payment",
    description=(
        "A refund, a returned direct debit or a chargeback, with `reason`: every invoice it paid is reopened, its "
        "unapplied rest is gone. A reversed payment is 409 `payment_already_reversed`. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(docs.Payment, "The payment, reversed.", *docs.AUTH, "not_found", "payment_already_reversed", "idempotency_conflict"),
)
def reverse(
    payment_id: str, caller: Billing, database: DatabaseDep, request: Request, body: PaymentReverseIn | None = None,
    idempotency_key: IdempotencyKey = None,
):
    body = body or PaymentReverseIn()

    def action(session):
        check_owner(session, caller, Payment, payment_id, "payment")
        payment = reverse_payment(session, payment_id, reason=body.reason, now=clock.now(), actor=caller.actor)
        return 200, present(session, payment)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))
