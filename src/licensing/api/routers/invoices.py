"""Invoices, their approval, and the billing run."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import select

from licensing import clock
from licensing.api import presenters
from licensing.api.deps import (
    Billing,
    DatabaseDep,
    IdempotencyKey,
    Pagination,
    ReadBooks,
    check_account,
    check_owner,
    in_scope,
    mail_approved_documents,
    paginate,
    write,
)
from licensing.api.schemas import BillingRunIn, VoidIn
from licensing.clock import local_date
from licensing.config import get_settings
from licensing.documents.service import load_document, pdf_of, xml_of
from licensing.invoicing.approval import approve_invoice
from licensing.invoicing.billing import run_billing
from licensing.invoicing.credit_notes import void_invoice
from licensing.invoicing.models import Invoice
from licensing.invoicing.queries import lines_and_grants
from licensing.repository import get_or_404

router = APIRouter(prefix="/api/v1", tags=["invoices"])


def _id_filter(value: str | None) -> int | None:
    if value is None:
        return None
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else -1


def present(session, invoice: Invoice) -> dict:
    lines, grants = lines_and_grants(session, invoice)
    return presenters.invoice(invoice, lines, grants)


@router.get("/invoices")
def list_invoices(
    caller: ReadBooks,
    database: DatabaseDep,
    page: Pagination,
    account_id: Annotated[str | None, Query(max_length=40)] = None,
    licence_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Literal["draft", "approved", "paid", "void"] | None = None,
):
    statement = in_scope(select(Invoice), caller, Invoice.account_id)
    if account_id is not None:
        statement = statement.where(Invoice.account_id == _id_filter(account_id))
    if licence_id is not None:
        statement = statement.where(Invoice.licence_id == _id_filter(licence_id))
    if status is not None:
        statement = statement.where(Invoice.status == status)
    with database.read() as session:
        return paginate(session, statement, Invoice.id, page, lambda invoice: present(session, invoice))


@router.get("/invoices/{invoice_id}.pdf", response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def invoice_pdf(invoice_id: str, caller: ReadBooks, database: DatabaseDep):
    """The invoice as PDF/A-3b with its EN 16931 e-invoice embedded (drafts: marked, without)."""
    check_document_scope(database, caller, Invoice, invoice_id, "invoice")
    return pdf_response(load_document(database, "invoice", invoice_id))


@router.get("/invoices/{invoice_id}.xml", response_class=Response, responses={200: {"content": {"application/xml": {}}}})
def invoice_xml(invoice_id: str, caller: ReadBooks, database: DatabaseDep):
    """The EN 16931 Cross Industry Invoice XML alone (approved invoices)."""
    check_document_scope(database, caller, Invoice, invoice_id, "invoice")
    document = load_document(database, "invoice", invoice_id)
    return Response(xml_of(document), media_type="application/xml", headers={"Content-Disposition": f'inline; filename="{document.number}.xml"'})


def check_document_scope(database, caller, model, document_id: str, what: str) -> None:
    """404 for a document of an account outside a scoped key's accounts (no read for other keys)."""
    if caller.account_ids is not None:
        with database.read() as session:
            check_owner(session, caller, model, document_id, what)


def pdf_response(document) -> Response:
    return Response(pdf_of(document), media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="{document.file_name}"'})


@router.get("/invoices/{invoice_id}")
def get_invoice(invoice_id: str, caller: ReadBooks, database: DatabaseDep):
    with database.read() as session:
        invoice = get_or_404(session, Invoice, invoice_id, "invoice")
        check_account(caller, invoice.account_id, missing=f"invoice {invoice_id} does not exist")
        return present(session, invoice)


@router.post("/invoices/{invoice_id}/approve")
def approve(invoice_id: str, caller: Billing, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None):
    def action(session):
        invoice = approve_invoice(session, invoice_id, at=clock.now(), actor=caller.actor)
        return 200, present(session, invoice)

    response = write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body={})
    mail_approved_documents(database)
    return response


@router.post("/invoices/{invoice_id}/void")
def void(invoice_id: str, caller: Billing, database: DatabaseDep, request: Request, body: VoidIn | None = None, idempotency_key: IdempotencyKey = None):
    body = body or VoidIn()

    def action(session):
        invoice = void_invoice(session, invoice_id, credit_policy=body.credit_policy, now=clock.now(), actor=caller.actor)
        return 200, present(session, invoice)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))


@router.post("/billing-runs")
def billing_run(caller: Billing, database: DatabaseDep, request: Request, body: BillingRunIn | None = None, idempotency_key: IdempotencyKey = None):
    body = body or BillingRunIn()
    now = clock.now()
    as_of = body.as_of or local_date(now, get_settings().zone)
    result = run_billing(database, as_of=as_of, now=now, actor=caller.actor, approve_all=body.approve)
    if result.invoices_approved:
        mail_approved_documents(database)
    return JSONResponse(
        {
            "as_of": result.as_of.isoformat(), "invoices_created": result.invoices_created, "invoices_approved": result.invoices_approved,
            "failed": [{"licence_id": str(failure.licence_id), "error": failure.error} for failure in result.failed],
        }
    )
