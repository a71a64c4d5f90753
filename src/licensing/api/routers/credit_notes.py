"""Credit notes and transfers: corrections an operator makes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import select

from licensing import clock
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import (
    Billing,
    DatabaseDep,
    IdempotencyKey,
    Pagination,
    ReadBooks,
    get_owned,
    in_scope,
    paginate,
    write,
)
from licensing.api.routers.invoices import document_file
from licensing.api.schemas import CreditNoteApproveIn, CreditNoteIn, TransferIn
from licensing.credits.adjustments import transfer
from licensing.db.repository import id_filter
from licensing.invoicing.credit_notes import (
    CreditRequest,
    approve_credit_note,
    create_credit_note,
    note_lines,
)
from licensing.invoicing.models import CreditNote, Invoice
from licensing.invoicing.payments import refund_due

router = APIRouter(prefix="/api/v1", tags=["corrections"])


def present(session, note: CreditNote) -> dict:
    invoice = session.get(Invoice, note.invoice_id)
    refund = refund_due(session, note, invoice) if invoice else Decimal(0)
    return presenters.credit_note(note, note_lines(session, note.id), invoice.number if invoice else None, refund)


@router.post(
    "/credit-notes",
    status_code=201,
    summary="Create a credit note",
    description=(
        "A draft credit note for an approved invoice: `lines` (each an `invoice_line_id` with a `quantity` or a net "
        "`amount`; none: the whole invoice), `reason`, `credit_policy`. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(
        docs.CreditNote,
        "The credit note created (a draft).",
        *docs.AUTH,
        "unknown_reference",
        "invoice_not_draft",
        "invoice_credited",
        "conflict",
        "idempotency_conflict",
        status=201,
    ),
)
def create(body: CreditNoteIn, caller: Billing, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None):
    def action(session):
        note = create_credit_note(
            session, invoice_id=body.invoice_id, reason=body.reason, credit_policy=body.credit_policy, now=clock.now(), actor=caller.actor,
            lines=[CreditRequest(line.invoice_line_id, line.quantity, line.amount) for line in body.lines or []],
        )
        return 201, present(session, note)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))


@router.get(
    "/credit-notes",
    summary="List credit notes",
    description="Credit notes filtered by `invoice_id`, `account_id` and `status`.",
    responses=docs.documented(docs.CreditNotePage, "A page of credit notes.", *docs.AUTH),
)
def list_credit_notes(
    caller: ReadBooks,
    database: DatabaseDep,
    page: Pagination,
    invoice_id: Annotated[str | None, Query(max_length=40)] = None,
    account_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Literal["draft", "approved"] | None = None,
):
    statement = in_scope(select(CreditNote), caller, CreditNote.account_id)
    if invoice_id is not None:
        statement = statement.where(CreditNote.invoice_id == id_filter(invoice_id))
    if account_id is not None:
        statement = statement.where(CreditNote.account_id == id_filter(account_id))
    if status is not None:
        statement = statement.where(CreditNote.status == status)
    with database.read() as session:
        return paginate(session, statement, CreditNote.id, page, lambda note: present(session, note))


@router.get(
    "/credit-notes/{note_id}.pdf",
    response_class=Response,
    summary="Get a credit note as PDF",
    description="The credit note as PDF/A-3b with its EN 16931 e-invoice embedded (drafts: marked, without).",
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}, "description": "The PDF."}}
    | docs.problems(*docs.AUTH, "not_found"),
)
def credit_note_pdf(note_id: str, caller: ReadBooks, database: DatabaseDep):
    return document_file(database, caller, "credit_note", note_id, "pdf")


@router.get(
    "/credit-notes/{note_id}.xml",
    response_class=Response,
    summary="Get a credit note as EN 16931 XML",
    description="The EN 16931 Cross Industry Invoice XML of an approved credit note alone.",
    responses={200: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "The XML."}}
    | docs.problems(*docs.AUTH, "not_found", "invoice_not_draft", "einvoice_unavailable"),
)
def credit_note_xml(note_id: str, caller: ReadBooks, database: DatabaseDep):
    return document_file(database, caller, "credit_note", note_id, "xml")


@router.get(
    "/credit-notes/{note_id}",
    summary="Get a credit note",
    description="One credit note with its lines.",
    responses=docs.documented(docs.CreditNote, "The credit note.", *docs.AUTH, "not_found"),
)
def get_credit_note(note_id: str, caller: ReadBooks, database: DatabaseDep):
    with database.read() as session:
        note = get_owned(session, caller, CreditNote, note_id, "credit note")
        return present(session, note)


@router.post(
    "/credit-notes/{note_id}/approve",
    summary="Approve a credit note",
    description=(
        "Number the note and take back its credits; `credit_policy` in the body, when given, replaces the note's own "
        "(`strict` refuses with 409 `credits_already_consumed` when the credits were used). Idempotent with "
        "`Idempotency-Key`."
    ),
    responses=docs.documented(
        docs.CreditNote,
        "The credit note, approved.",
        *docs.AUTH,
        "not_found",
        "invoice_not_draft",
        "credits_already_consumed",
        "conflict",
        "idempotency_conflict",
    ),
)
def approve(
    note_id: str,
    caller: Billing,
    database: DatabaseDep,
    request: Request,
    body: CreditNoteApproveIn | None = None,
    idempotency_key: IdempotencyKey = None,
):
    body = body or CreditNoteApproveIn()

    def action(session):
        note = approve_credit_note(session, note_id, now=clock.now(), actor=caller.actor, credit_policy=body.credit_policy)
        return 200, present(session, note)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))


@router.post(
    "/transfers",
    status_code=201,
    summary="Transfer credits",
    description=(
        "Move `credits` from one account or business unit to another (same currency), effective at once. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(
        docs.Transfer,
        "The transfer, grant by grant.",
        *docs.AUTH,
        "unknown_reference",
        "insufficient_credits",
        "currency_mismatch",
        "idempotency_conflict",
        status=201,
    ),
)
def create_transfer(body: TransferIn, caller: Billing, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None):
    def action(session):
        moved, moves = transfer(
            session, from_account_id=body.from_account_id, to_account_id=body.to_account_id,
            from_business_unit_id=body.from_business_unit_id, to_business_unit_id=body.to_business_unit_id,
            credits=body.credits, reason=body.reason, now=clock.now(), actor=caller.actor,
        )
        return 201, presenters.transfer(moved, moves)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))
