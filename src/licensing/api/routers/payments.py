"""Money in: payments recorded against invoices, listed, and reversed; bank statements imported."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from licensing import clock
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import (
    Billing,
    DatabaseDep,
    IdempotencyKey,
    Pagination,
    ReadAllBooks,
    ReadBooks,
    check_owner,
    get_owned,
    in_scope,
    paginate,
    write,
)
from licensing.api.schemas import Instant, PaymentIn, PaymentReverseIn
from licensing.db.repository import id_filter
from licensing.invoicing.models import Invoice, Payment, StatementEntry
from licensing.invoicing.payments import applied_to, record_payment, reverse_payment
from licensing.invoicing.statements import import_statement

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


CAMT_EXAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2027-01-05T18:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>STMT-2027-01-05</Id><CreDtTm>2027-01-05T18:00:00</CreDtTm>
      <Acct><Id><IBAN>FR1420041010050500013M02606</IBAN></Id></Acct>
      <Ntry>
        <Amt Ccy="EUR">120.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2027-01-05</Dt></BookgDt>
        <AcctSvcrRef>2027010500017</AcctSvcrRef>
        <NtryDtls><TxDtls><RmtInf><Strd><CdtrRefInf><Ref>RF94INV2026000001</Ref></CdtrRefInf></Strd></RmtInf></TxDtls></NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""


@router.post(
    "/bank-statements",
    summary="Import a bank statement",
    description=(
        "A camt.053 statement as the body (`Content-Type: application/xml`). Booked credit entries are matched to invoices by "
        "their RF payment reference, else by an invoice number in the remittance text, and recorded as payments (an "
        "overpayment kept as unapplied cash); each entry once, however often its statement is imported. Answers what "
        "matched and what did not. All or nothing: a file that is not a camt.053 statement (422 `invalid_statement`) "
        "records nothing."
    ),
    responses=docs.documented(docs.StatementImport, "What the import recorded.", *docs.AUTH, "invalid_statement"),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/xml": {"schema": {"type": "string", "description": "A camt.053 document."}, "example": CAMT_EXAMPLE}},
        }
    },
)
async def import_bank_statement(request: Request, caller: Billing, database: DatabaseDep):
    content = await request.body()
    return await run_in_threadpool(_import, database, content, caller.actor)


def _import(database, content: bytes, actor: str):
    def action(session):
        result = import_statement(session, content, now=clock.now(), actor=actor)
        return 200, {
            "matched": [presenters.statement_entry(row) for row in result.matched],
            "unmatched": [presenters.statement_entry(row) for row in result.unmatched],
            "already_imported": result.already_imported,
        }

    return write(database, action)


@router.get(
    "/bank-statement-entries",
    summary="List bank statement entries",
    description="Entries of imported statements, oldest first, filtered by `status` (`unmatched`: what is left to settle by hand).",
    responses=docs.documented(docs.StatementEntryPage, "A page of statement entries.", *docs.AUTH),
)
def list_statement_entries(
    caller: ReadAllBooks, database: DatabaseDep, page: Pagination, status: Literal["matched", "unmatched"] | None = None,
):
    statement = select(StatementEntry)
    if status is not None:
        statement = statement.where(StatementEntry.status == status)
    with database.read() as session:
        return paginate(session, statement, StatementEntry.id, page, presenters.statement_entry)
