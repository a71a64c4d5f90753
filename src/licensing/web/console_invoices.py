"""The console's invoices, credit notes and billing run: the approval queue, one invoice with its
corrections and payments, and a billing run started from the browser.

Every figure comes from the API's own route functions (``web.calls``) and every change goes
through them, so a page approves, voids and credits exactly as an API client would."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Request

from licensing import clock
from licensing.api.errors import Forbidden
from licensing.api.routers import credit_notes as credit_notes_api
from licensing.api.routers import invoices as invoices_api
from licensing.api.routers import payments as payments_api
from licensing.api.schemas import BillingRunIn, CreditNoteApproveIn, CreditNoteIn, VoidIn
from licensing.config import get_settings
from licensing.db import Database
from licensing.errors import Conflict, LicensingError, ValidationFailed
from licensing.web import billing
from licensing.web.calls import account_names, allowed, body, call
from licensing.web.pages import page_router, see_other
from licensing.web.render import page, refused
from licensing.web.sessions import ConsoleVisitor, Form, caller_of, database_of

router = page_router("/console")

LIST = "console/invoices/list.html"
INVOICE = "console/invoices/invoice.html"
NOTES = "console/invoices/credit_notes.html"
NOTE = "console/invoices/credit_note.html"
BILLING = "console/invoices/billing.html"
PROGRESS = "console/invoices/billing_progress.html"

# What a page says after a change (``?done=<key>``): fixed texts, never the query's own.
DONE = {
    "approved": "The invoice was approved: it is numbered and its credits are granted.",
    "voided": "The invoice was voided.",
    "note_created": "The credit note was created as a draft. Approve it to issue it.",
    "note_approved": "The credit note was approved.",
    "billing_started": "The billing run has started.",
}
STATUSES = ("draft", "approved", "paid", "void")
POLICIES = (("strict", "Strict: refuse if the credits were used"), ("cap_to_remaining", "Take back what remains"))
SIDE_LIST = 20  # credit notes and payments shown on an invoice's page, per page


def _notice(request: Request) -> str | None:
    done = request.query_params.get("done")
    if done == "approved_all":
        count = request.query_params.get("count", "")
        approved = int(count) if count.isdigit() and len(count) < 10 else 0
        return f"{approved} draft invoice{'s' if approved != 1 else ''} approved."
    return DONE.get(done or "")


# ---------------------------------------------------------------------------------------------
# The list and the approval queue.
# ---------------------------------------------------------------------------------------------


def _filters(request: Request) -> dict[str, Any]:
    """The list's filters from the query: no query at all is the approval queue (drafts)."""
    query = request.query_params
    status = query.get("status", "draft") if "status" not in query or query.get("status") else None
    if status is not None and status not in STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}", field="status")
    account_id = (query.get("account_id") or "").strip() or None
    return {"status": status, "overdue": query.get("overdue") == "true", "account_id": account_id}


def _list_context(request: Request, visitor, database: Database) -> dict[str, Any]:
    caller = caller_of(visitor)
    filters = _filters(request)
    arguments = {"status": filters["status"], "account_id": filters["account_id"], "overdue": True if filters["overdue"] else None}
    invoices = call(invoices_api.list_invoices, caller, database, limit=50, cursor=request.query_params.get("cursor"), **arguments)
    return {
        "visitor": visitor, "section": "Invoices", "title": "Approval queue" if filters["status"] == "draft" else "Invoices",
        "filters": filters, "invoices": invoices, "names": account_names(database, {item["account_id"] for item in invoices["items"]}),
        "can_approve": allowed(invoices_api.approve, caller), "statuses": STATUSES,
    }


# The GET routes name the query parameters they take (any other is refused as over the API);
# the filters are read from ``request.query_params`` so that a refused POST shows the same list.
QueryValue = str | None


@router.get("/invoices")
def invoice_list(
    request: Request, visitor: ConsoleVisitor, status: QueryValue = None, account_id: QueryValue = None, overdue: QueryValue = None,
    cursor: QueryValue = None, done: QueryValue = None, count: QueryValue = None,
):
    database = database_of(request)
    return page(request, LIST, notice=_notice(request), **_list_context(request, visitor, database))


@router.post("/invoices/approve-all")
def approve_all(request: Request, visitor: ConsoleVisitor):
    """Every draft invoice approved through the API's approve route, one at a time (each its own
    unit of work, numbered in id order); a refusal stops there and says how many went through."""
    caller, database = caller_of(visitor), database_of(request)
    if not allowed(invoices_api.approve, caller):
        raise Forbidden(f"role {caller.role!r} may not approve invoices")
    draft_ids, cursor = [], None
    while True:
        found = call(invoices_api.list_invoices, caller, database, status="draft", limit=200, cursor=cursor)
        draft_ids += [item["id"] for item in found["items"]]
        cursor = found["next_cursor"]
        if not cursor:
            break
    approved = 0
    for invoice_id in draft_ids:
        try:
            call(invoices_api.approve, caller, database, invoice_id=invoice_id)
        except LicensingError as error:
            notice = f"{approved} draft invoice{'s' if approved != 1 else ''} approved before invoice {invoice_id} was refused."
            return refused(request, LIST, error, notice=notice, **_list_context(request, visitor, database))
        approved += 1
    return see_other(f"/console/invoices?status=draft&done=approved_all&count={approved}")


@router.post("/invoices/{invoice_id}/approve")
def approve_one(invoice_id: str, request: Request, visitor: ConsoleVisitor, form: Form):
    caller, database = caller_of(visitor), database_of(request)
    from_list = form.get("back") == "list"
    try:
        invoice = call(invoices_api.approve, caller, database, invoice_id=invoice_id)
    except LicensingError as error:
        if from_list:
            return refused(request, LIST, error, **_list_context(request, visitor, database))
        return refused(request, INVOICE, error, **_invoice_context(request, visitor, database, invoice_id))
    if from_list:
        return see_other("/console/invoices?status=draft&done=approved")
    return see_other(f"/console/invoices/{invoice['id']}?done=approved")


# ---------------------------------------------------------------------------------------------
# One invoice: its facts, lines, documents, credit notes and payments; approve, void, credit.
# ---------------------------------------------------------------------------------------------


def _invoice_context(request: Request, visitor, database: Database, invoice_id: str, **forms: Any) -> dict[str, Any]:
    caller = caller_of(visitor)
    invoice = call(invoices_api.get_invoice, caller, database, invoice_id=invoice_id)
    notes = call(credit_notes_api.list_credit_notes, caller, database, invoice_id=invoice["id"], limit=SIDE_LIST)
    payments = call(
        payments_api.list_payments, caller, database, invoice_id=invoice["id"], limit=SIDE_LIST,
        cursor=request.query_params.get("payments_cursor"),
    )
    title = invoice["number"] or f"Draft invoice {invoice['id']}"
    return {
        "visitor": visitor, "section": "Invoices", "title": title, "invoice": invoice, "notes": notes, "payments": payments,
        "account_name": account_names(database, {invoice["account_id"]}).get(invoice["account_id"]),
        "can_approve": allowed(invoices_api.approve, caller), "can_void": allowed(invoices_api.void, caller),
        "can_credit": allowed(credit_notes_api.create, caller), "can_approve_note": allowed(credit_notes_api.approve, caller),
        "policies": POLICIES, "void_form": forms.get("void_form") or {}, "credit_form": forms.get("credit_form") or {},
    }


@router.get("/invoices/{invoice_id}.pdf")
def invoice_pdf(invoice_id: str, request: Request, visitor: ConsoleVisitor):
    return call(invoices_api.invoice_pdf, caller_of(visitor), database_of(request), invoice_id=invoice_id)


@router.get("/invoices/{invoice_id}")
def invoice_page(invoice_id: str, request: Request, visitor: ConsoleVisitor, done: QueryValue = None, payments_cursor: QueryValue = None):
    return page(request, INVOICE, notice=_notice(request), **_invoice_context(request, visitor, database_of(request), invoice_id))


@router.post("/invoices/{invoice_id}/void")
def void_invoice(invoice_id: str, request: Request, visitor: ConsoleVisitor, form: Form):
    caller, database = caller_of(visitor), database_of(request)
    values = {"credit_policy": form.get("void_credit_policy", ""), "reason": form.get("void_reason", "")}
    try:
        invoice = call(invoices_api.void, caller, database, invoice_id=invoice_id, body=body(VoidIn, values))
    except LicensingError as error:
        return refused(request, INVOICE, error, **_invoice_context(request, visitor, database, invoice_id, void_form=values))
    return see_other(f"/console/invoices/{invoice['id']}?done=voided")


def _credit_note_body(invoice_id: str, form: dict[str, Any]) -> CreditNoteIn:
    """The API's credit note body from the form: each line given a quantity or a net amount (no
    line at all: the whole invoice, as the API reads a body without lines)."""
    lines = []
    for name in form:
        if name.startswith("quantity_") or name.startswith("amount_"):
            line_id = name.split("_", 1)[1]
            if any(line["invoice_line_id"] == line_id for line in lines):
                continue
            quantity, amount = (str(form.get(f"{kind}_{line_id}", "")).strip() for kind in ("quantity", "amount"))
            if quantity or amount:
                lines.append({"invoice_line_id": line_id} | ({"quantity": quantity} if quantity else {}) | ({"amount": amount} if amount else {}))
    values = {
        "invoice_id": invoice_id, "reason": form.get("note_reason", ""), "credit_policy": form.get("note_credit_policy", ""),
        "lines": lines or None,
    }
    return body(CreditNoteIn, values)


@router.post("/invoices/{invoice_id}/credit-notes")
def create_credit_note(invoice_id: str, request: Request, visitor: ConsoleVisitor, form: Form):
    caller, database = caller_of(visitor), database_of(request)
    try:
        call(credit_notes_api.create, caller, database, body=_credit_note_body(invoice_id, form))
    except LicensingError as error:
        return refused(request, INVOICE, error, **_invoice_context(request, visitor, database, invoice_id, credit_form=form))
    return see_other(f"/console/invoices/{invoice_id}?done=note_created#credit-notes")


# ---------------------------------------------------------------------------------------------
# Credit notes.
# ---------------------------------------------------------------------------------------------


@router.get("/credit-notes")
def credit_note_list(request: Request, visitor: ConsoleVisitor, status: QueryValue = None, invoice_id: QueryValue = None, cursor: QueryValue = None):
    caller, database = caller_of(visitor), database_of(request)
    status = status or None
    if status not in (None, "draft", "approved"):
        raise ValidationFailed("status must be draft or approved", field="status")
    invoice_id = (invoice_id or "").strip() or None
    notes = call(credit_notes_api.list_credit_notes, caller, database, invoice_id=invoice_id, status=status, limit=50, cursor=cursor)
    return page(
        request, NOTES, visitor=visitor, section="Invoices", title="Credit notes", notes=notes, filters={"status": status, "invoice_id": invoice_id},
        names=account_names(database, {item["account_id"] for item in notes["items"]}),
    )


def _note_context(visitor, database: Database, note_id: str) -> dict[str, Any]:
    caller = caller_of(visitor)
    note = call(credit_notes_api.get_credit_note, caller, database, note_id=note_id)
    return {
        "visitor": visitor, "section": "Invoices", "title": note["number"] or f"Draft credit note {note['id']}", "note": note,
        "account_name": account_names(database, {note["account_id"]}).get(note["account_id"]),
        "can_approve_note": allowed(credit_notes_api.approve, caller), "policies": POLICIES,
    }


@router.get("/credit-notes/{note_id}.pdf")
def credit_note_pdf(note_id: str, request: Request, visitor: ConsoleVisitor):
    return call(credit_notes_api.credit_note_pdf, caller_of(visitor), database_of(request), note_id=note_id)


@router.get("/credit-notes/{note_id}")
def credit_note_page(note_id: str, request: Request, visitor: ConsoleVisitor, done: QueryValue = None):
    return page(request, NOTE, notice=_notice(request), **_note_context(visitor, database_of(request), note_id))


@router.post("/credit-notes/{note_id}/approve")
def approve_credit_note(note_id: str, request: Request, visitor: ConsoleVisitor, form: Form):
    """Approve a draft credit note (``credit_policy`` given: it replaces the note's own); the
    page it was approved from (the invoice's or the note's) shows the outcome."""
    caller, database = caller_of(visitor), database_of(request)
    note = call(credit_notes_api.get_credit_note, caller, database, note_id=note_id)
    from_invoice = form.get("back") == "invoice"
    try:
        approve_body = body(CreditNoteApproveIn, {"credit_policy": form.get("credit_policy", "")})
        call(credit_notes_api.approve, caller, database, note_id=note["id"], body=approve_body)
    except LicensingError as error:
        if from_invoice:
            return refused(request, INVOICE, error, **_invoice_context(request, visitor, database, note["invoice_id"]))
        return refused(request, NOTE, error, **_note_context(visitor, database, note["id"]))
    if from_invoice:
        return see_other(f"/console/invoices/{note['invoice_id']}?done=note_approved#credit-notes")
    return see_other(f"/console/credit-notes/{note['id']}?done=note_approved")


# ---------------------------------------------------------------------------------------------
# The billing run.
# ---------------------------------------------------------------------------------------------


def _today() -> date:
    return clock.local_date(clock.now(), get_settings().zone)


def _billing_context(request: Request, visitor, form: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "visitor": visitor, "section": "Billing run", "title": "Billing run", "run": billing.latest(request.app),
        "can_run": allowed(invoices_api.billing_run, caller_of(visitor)), "form": form or {"as_of": _today().isoformat()},
    }


@router.get("/billing")
def billing_page(request: Request, visitor: ConsoleVisitor, done: QueryValue = None):
    return page(request, BILLING, notice=_notice(request), **_billing_context(request, visitor))


@router.get("/billing/progress")
def billing_progress(request: Request, visitor: ConsoleVisitor):
    """The run's progress alone: what the billing page polls while the run goes on."""
    return page(request, PROGRESS, run=billing.latest(request.app))


@router.post("/billing")
def start_billing(request: Request, visitor: ConsoleVisitor, form: Form):
    """Start the billing use case in a thread (``web.billing``); the page then shows its progress."""
    caller = caller_of(visitor)
    if not allowed(invoices_api.billing_run, caller):
        raise Forbidden(f"role {caller.role!r} may not run billing (needs admin or billing)")
    values = {"as_of": str(form.get("as_of", "")).strip(), "approve": "true" if form.get("approve") else ""}
    try:
        run = body(BillingRunIn, values)
        billing.start(request.app, database_of(request), as_of=run.as_of or _today(), approve=run.approve, actor=caller.actor)
    except billing.RunAlreadyGoing:
        error = Conflict("A billing run started from the console is still going: wait for it to finish before starting another.")
        return refused(request, BILLING, error, **_billing_context(request, visitor, values))
    except LicensingError as error:
        return refused(request, BILLING, error, **_billing_context(request, visitor, values))
    return see_other("/console/billing?done=billing_started")
