"""Money in: payments recorded against invoices, listed, and reversed; bank statements imported."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from licensing import clock
from licensing.accounts.models import Account
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import (
    Billing,
    BillingAllAccounts,
    DatabaseDep,
    IdempotencyKey,
    Pagination,
    ReadAllBooks,
    ReadBooks,
    check_account,
    check_owner,
    get_owned,
    in_scope,
    paginate,
    write,
)
from licensing.api.schemas import DirectDebitIn, Instant, MandateIn, PaymentIn, PaymentReverseIn
from licensing.db.repository import get_or_404, id_filter
from licensing.invoicing.direct_debits import create_direct_debit, create_mandate, revoke_mandate
from licensing.invoicing.models import DirectDebit, DirectDebitItem, Invoice, Mandate, Payment, StatementEntry
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


@router.post(
    "/accounts/{account_id}/mandates",
    status_code=201,
    summary="Create a SEPA direct debit mandate",
    description=(
        "An EUR account's mandate: `iban` (checked), `bic` (default: from the IBAN's bank when known), `mandate_reference` "
        "(default generated), `signed_on`, `scheme` (`CORE` or `B2B`). A non-EUR account is 409 `currency_mismatch`."
    ),
    responses=docs.documented(docs.Mandate, "The mandate, active.", *docs.AUTH, "not_found", "currency_mismatch", "conflict", status=201),
)
def create_mandate_route(account_id: str, body: MandateIn, caller: Billing, database: DatabaseDep):
    check_account(caller, account_id)

    def action(session):
        created = create_mandate(
            session, account_id, iban=body.iban, bic=body.bic, mandate_reference=body.mandate_reference, signed_on=body.signed_on,
            scheme=body.scheme, now=clock.now(),
        )
        return 201, presenters.mandate(created)

    return write(database, action)


@router.get(
    "/accounts/{account_id}/mandates",
    summary="List an account's mandates",
    description="The account's mandates, revoked ones too, oldest first.",
    responses=docs.documented(docs.MandatePage, "A page of mandates.", *docs.AUTH, "not_found"),
)
def list_mandates(account_id: str, caller: ReadBooks, database: DatabaseDep, page: Pagination):
    check_account(caller, account_id)
    with database.read() as session:
        get_or_404(session, Account, account_id, "account")
        statement = select(Mandate).where(Mandate.account_id == id_filter(account_id))
        return paginate(session, statement, Mandate.id, page, presenters.mandate)


@router.post(
    "/mandates/{mandate_id}/revoke",
    summary="Revoke a mandate",
    description="No collection uses it from now on. A revoked mandate is 409 `mandate_revoked`.",
    responses=docs.documented(docs.Mandate, "The mandate, revoked.", *docs.AUTH, "not_found", "mandate_revoked"),
)
def revoke_mandate_route(mandate_id: str, caller: Billing, database: DatabaseDep):
    def action(session):
        check_owner(session, caller, Mandate, mandate_id, "mandate")
        return 200, presenters.mandate(revoke_mandate(session, mandate_id, now=clock.now()))

    return write(database, action)


@router.post(
    "/direct-debits",
    status_code=201,
    summary="Collect by direct debit",
    description=(
        "A collection on `collection_date` (after today) of every approved, unpaid EUR invoice of an account with an active "
        "mandate of `scheme`, each invoice once ever: a pain.008.001.02 file (`GET /direct-debits/{id}.xml`) and a "
        "`direct_debit` payment per invoice (reverse it for a returned debit). Needs LICENSING_OPERATOR_CREDITOR_ID, _IBAN and "
        "_BIC (else 409 `direct_debit_unavailable`); nothing to collect is 409 `nothing_to_collect`. All accounts."
    ),
    responses=docs.documented(
        docs.DirectDebit, "The collection.", *docs.AUTH, "direct_debit_unavailable", "nothing_to_collect", "idempotency_conflict", status=201
    ),
)
def create_direct_debit_route(
    body: DirectDebitIn, caller: BillingAllAccounts, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None,
):
    def action(session):
        debit = create_direct_debit(session, collection_date=body.collection_date, scheme=body.scheme, now=clock.now(), actor=caller.actor)
        return 201, _present_debit(session, debit)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))


def _present_debit(session, debit: DirectDebit) -> dict:
    items = session.exec(select(DirectDebitItem).where(DirectDebitItem.direct_debit_id == debit.id).order_by(DirectDebitItem.id)).all()
    return presenters.direct_debit(debit, list(items))


@router.get(
    "/direct-debits/{debit_id}.xml",
    response_class=Response,
    summary="Get a collection's pain.008 file",
    description="The pain.008.001.02 file to hand to the bank, as written when the collection was made.",
    responses={200: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "The pain.008 XML."}}
    | docs.problems(*docs.AUTH, "not_found"),
)
def direct_debit_xml(debit_id: str, caller: ReadAllBooks, database: DatabaseDep):
    with database.read() as session:
        debit = get_or_404(session, DirectDebit, debit_id, "direct debit")
        return Response(
            debit.xml, media_type="application/xml", headers={"Content-Disposition": f'attachment; filename="direct-debit-{debit.id}.xml"'}
        )


@router.get(
    "/direct-debits/{debit_id}",
    summary="Get a direct-debit collection",
    description="The collection with the invoices it covers.",
    responses=docs.documented(docs.DirectDebit, "The collection.", *docs.AUTH, "not_found"),
)
def get_direct_debit(debit_id: str, caller: ReadAllBooks, database: DatabaseDep):
    with database.read() as session:
        return _present_debit(session, get_or_404(session, DirectDebit, debit_id, "direct debit"))
