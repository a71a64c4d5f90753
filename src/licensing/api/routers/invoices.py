"""Invoices, their approval, and the billing run."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import col, select

from licensing import clock
from licensing.accounts.models import Account
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import (
    Billing,
    Caller,
    DatabaseDep,
    IdempotencyKey,
    Pagination,
    ReadBooks,
    get_owned,
    in_scope,
    paginate,
    write,
)
from licensing.api.schemas import BillingRunIn, Day, VoidIn
from licensing.clock import local_date
from licensing.config import get_settings
from licensing.db import Database
from licensing.db.repository import id_filter
from licensing.documents.service import load_document, pdf_of, xml_of
from licensing.errors import ValidationFailed
from licensing.invoicing.approval import approve_invoice
from licensing.invoicing.billing import run_billing
from licensing.invoicing.credit_notes import void_invoice
from licensing.invoicing.models import Invoice
from licensing.invoicing.payments import due_of
from licensing.invoicing.queries import lines_and_grants
from licensing.invoicing.references import invoice_reference

router = APIRouter(prefix="/api/v1", tags=["invoices"])


def present(session, invoice: Invoice) -> dict:
    lines, grants = lines_and_grants(session, invoice)
    return presenters.invoice(invoice, lines, grants, today=operator_today())


def operator_today():
    """Today in the operator's zone: what ``days_overdue`` counts to."""
    return local_date(clock.now(), get_settings().zone)


@router.get(
    "/invoices",
    summary="List invoices",
    description=(
        "Invoices filtered by `account_id`, `licence_id`, `status` and issue dates; `?format=csv` answers every "
        "matching invoice as one CSV file, oldest first."
    ),
    responses=docs.documented(
        docs.InvoicePage, "A page of invoices (JSON), or CSV.", *docs.AUTH, csv="Every matching row as one CSV file (`?format=csv`), not paginated."
    ),
)
def list_invoices(
    caller: ReadBooks,
    database: DatabaseDep,
    page: Pagination,
    account_id: Annotated[str | None, Query(max_length=40)] = None,
    licence_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Literal["draft", "approved", "paid", "void"] | None = None,
    payment_status: Annotated[
        Literal["unpaid", "partially_paid", "paid"] | None, Query(description="approved invoices by what is left to pay")
    ] = None,
    overdue: Annotated[bool | None, Query(description="true: invoices past their due date with something still due")] = None,
    issued_from: Annotated[Day | None, Query(description="invoices issued on or after this date (YYYY-MM-DD)")] = None,
    issued_to: Annotated[Day | None, Query(description="invoices issued on or before this date (YYYY-MM-DD)")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: every matching invoice as one CSV file, oldest first")] = "json",
):
    if issued_from is not None and issued_to is not None and issued_to < issued_from:
        raise ValidationFailed("issued_to is before issued_from", field="issued_to")
    statement = in_scope(select(Invoice), caller, Invoice.account_id)
    if account_id is not None:
        statement = statement.where(Invoice.account_id == id_filter(account_id))
    if licence_id is not None:
        statement = statement.where(Invoice.licence_id == id_filter(licence_id))
    if status is not None:
        statement = statement.where(Invoice.status == status)
    if payment_status == "paid":
        statement = statement.where(Invoice.status == "paid")
    elif payment_status is not None:
        paid_something = col(Invoice.amount_paid) > 0
        statement = statement.where(Invoice.status == "approved", paid_something if payment_status == "partially_paid" else ~paid_something)
    if overdue is not None:
        late = (Invoice.status == "approved") & (col(Invoice.due_date) < operator_today())
        statement = statement.where(late if overdue else ~late)
    if issued_from is not None:
        statement = statement.where(Invoice.issue_date >= issued_from)
    if issued_to is not None:
        statement = statement.where(Invoice.issue_date <= issued_to)
    with database.read() as session:
        if format == "csv":
            return _invoices_csv(session, statement)
        return paginate(session, statement, Invoice.id, page, lambda invoice: present(session, invoice))


INVOICE_CSV_COLUMNS = (
    "id", "number", "status", "kind", "account_id", "account_name", "licence_id", "issue_date", "due_date", "period_start",
    "period_end", "currency", "net", "tax", "gross", "amount_paid", "amount_due", "payment_status", "payment_reference",
)


def _invoices_csv(session, statement) -> Response:
    """The matching invoices as CSV (no pagination: the whole list, for a spreadsheet)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(INVOICE_CSV_COLUMNS)
    names = dict(session.exec(select(Account.id, Account.name)).all())
    today = operator_today()
    for invoice in session.exec(statement.order_by(Invoice.id)).all():
        due = due_of(invoice, today)
        writer.writerow([
            invoice.id, invoice.number or "", invoice.status, invoice.kind, invoice.account_id, names.get(invoice.account_id, ""),
            invoice.licence_id or "", invoice.issue_date, invoice.due_date, invoice.period_start or "", invoice.period_end or "",
            invoice.currency, *(presenters.money_text(amount, invoice.currency) for amount in (invoice.net, invoice.tax, invoice.gross)),
            presenters.money_text(invoice.amount_paid, invoice.currency), presenters.money_text(due.amount_due, invoice.currency),
            due.payment_status, invoice_reference(invoice.number) or "",
        ])
    return Response(buffer.getvalue(), media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="invoices.csv"'})


@router.get(
    "/invoices/{invoice_id}.pdf",
    response_class=Response,
    summary="Get an invoice as PDF",
    description="The invoice as PDF/A-3b with its EN 16931 e-invoice embedded (drafts: marked, without), named by its number.",
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}, "description": "The PDF."}}
    | docs.problems(*docs.AUTH, "not_found"),
)
def invoice_pdf(invoice_id: str, caller: ReadBooks, database: DatabaseDep):
    return document_file(database, caller, "invoice", invoice_id, "pdf")


@router.get(
    "/invoices/{invoice_id}.xml",
    response_class=Response,
    summary="Get an invoice as EN 16931 XML",
    description="The EN 16931 Cross Industry Invoice XML alone (approved invoices; a draft is 409 `invoice_not_draft`).",
    responses={200: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "The XML."}}
    | docs.problems(*docs.AUTH, "not_found", "invoice_not_draft", "einvoice_unavailable"),
)
def invoice_xml(invoice_id: str, caller: ReadBooks, database: DatabaseDep):
    return document_file(database, caller, "invoice", invoice_id, "xml")


def document_file(database: Database, caller: Caller, kind: str, document_id: str, file: str) -> Response:
    """The PDF (an attachment) or the XML (inline) of an invoice or credit note the key may see;
    404 for one of another account, as if it did not exist."""
    document = load_document(database, kind, document_id, visible=caller.may_see)
    if file == "pdf":
        content, media_type, disposition = pdf_of(document), "application/pdf", f'attachment; filename="{document.file_name}"'
    else:
        content, media_type, disposition = xml_of(document), "application/xml", f'inline; filename="{document.number}.xml"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


@router.get(
    "/invoices/{invoice_id}",
    summary="Get an invoice",
    description="One invoice with its lines.",
    responses=docs.documented(docs.Invoice, "The invoice.", *docs.AUTH, "not_found"),
)
def get_invoice(invoice_id: str, caller: ReadBooks, database: DatabaseDep):
    with database.read() as session:
        invoice = get_owned(session, caller, Invoice, invoice_id, "invoice")
        return present(session, invoice)


@router.post(
    "/invoices/{invoice_id}/approve",
    summary="Approve an invoice",
    description=(
        "Number the invoice and grant its credit packs; approving an approved invoice answers it unchanged, a void one "
        "is 409 `invoice_not_draft`. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(docs.Invoice, "The invoice, approved.", *docs.AUTH, "not_found", "invoice_not_draft", "idempotency_conflict"),
)
def approve(invoice_id: str, caller: Billing, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None):
    def action(session):
        invoice = approve_invoice(session, invoice_id, at=clock.now(), actor=caller.actor)
        return 200, present(session, invoice)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body={})


@router.post(
    "/invoices/{invoice_id}/void",
    summary="Void an invoice",
    description=(
        "Void an approved invoice that no credit note covers, taking back its credits (`credit_policy`), with an "
        "optional `reason` shown on its document; a draft is 409 `invoice_not_draft` (drafts are deleted instead)."
    ),
    responses=docs.documented(
        docs.Invoice,
        "The invoice, void.",
        *docs.AUTH,
        "not_found",
        "invoice_not_draft",
        "invoice_credited",
        "credits_already_consumed",
        "idempotency_conflict",
    ),
)
def void(
    invoice_id: str, caller: Billing, database: DatabaseDep, request: Request, body: VoidIn | None = None, idempotency_key: IdempotencyKey = None
):
    body = body or VoidIn()

    def action(session):
        invoice = void_invoice(session, invoice_id, credit_policy=body.credit_policy, reason=body.reason, now=clock.now(), actor=caller.actor)
        return 200, present(session, invoice)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))


@router.post(
    "/billing-runs",
    summary="Run billing",
    description=(
        "Generate every invoice due up to `as_of` (default today), approving those of `auto_approve` licences (or all "
        "with `approve`); counts this run's work only (a repeat reports 0)."
    ),
    responses=docs.documented(docs.BillingRun, "What the run did.", *docs.AUTH, "idempotency_conflict"),
)
def billing_run(caller: Billing, database: DatabaseDep, request: Request, body: BillingRunIn | None = None, idempotency_key: IdempotencyKey = None):
    body = body or BillingRunIn()
    now = clock.now()
    as_of = body.as_of or local_date(now, get_settings().zone)
    result = run_billing(database, as_of=as_of, now=now, actor=caller.actor, approve_all=body.approve)
    return JSONResponse(
        {
            "as_of": result.as_of.isoformat(), "invoices_created": result.invoices_created, "invoices_approved": result.invoices_approved,
            "failed": [{"licence_id": str(failure.licence_id), "error": failure.error} for failure in result.failed],
        }
    )
