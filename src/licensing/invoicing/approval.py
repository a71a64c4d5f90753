"""Approval (SPEC 3): the next number and, in the same transaction, one grant per credit-pack line
(``invoicing.granting``: the dates of grants; packs that grant on payment wait for it).

Approval also keeps the seller and the buyer as issued (``seller_details``/``buyer_details``,
JSON of the fields of ``documents.model.Party``; the buyer's also holds the VAT treatment the
invoice was issued under): an approved document shows them whatever the operator's settings or
the account say later. The JSON is ASCII (control characters and everything outside ASCII as
``\\u`` escapes), so that any text an account holds can be stored: NUL too, which PostgreSQL
text cannot hold.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.books.journal import post
from licensing.clock import local_date
from licensing.config import Settings, get_settings
from licensing.credits.expiry import record_due_expiries_of
from licensing.db.bulk import update_rows
from licensing.db.repository import get_or_404, lock_all, lock_rows
from licensing.errors import InvoiceNotDraft
from licensing.events import event_row, record_events
from licensing.invoicing.granting import grant_lines
from licensing.invoicing.journal import Approved, approval_entries, name_entry
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.invoicing.numbering import allocate_numbers
from licensing.invoicing.payments import refresh_overdue, settle_unapplied_cash
from licensing.invoicing.tax import tax_treatment
from licensing.money import round_money


def seller_fields(settings: Settings) -> dict:
    """The seller as documents show it, from the operator's settings: the fields of
    ``documents.model.Party`` (which ``documents.context`` builds from this dict)."""
    fields = _party_fields(
        settings.operator_name, settings.operator_address, settings.operator_country, settings.operator_tax_id, settings.operator_email
    )
    # Where the invoice is to be paid, as issued: a later change of bank account leaves it be.
    return fields | ({"iban": settings.operator_iban, "bic": settings.operator_bic or None} if settings.operator_iban else {})


def buyer_fields(account: Account) -> dict:
    """The buyer as documents show it, from the account (see ``seller_fields``)."""
    return _party_fields(account.name, account.address, account.country, account.tax_id, account.email)


def _party_fields(name: str | None, address: str | None, country: str | None, tax_id: str | None, email: str | None) -> dict:
    return {
        "name": name or "", "address_lines": [line.strip() for line in (address or "").splitlines() if line.strip()],
        "country": country or None, "tax_id": tax_id or None, "email": email or None,
    }


def seller_details(settings: Settings) -> str:
    """The seller's JSON an approved document keeps."""
    return json.dumps(seller_fields(settings), separators=(",", ":"))


def buyer_details(account: Account, settings: Settings) -> str:
    """The buyer's JSON an approved document keeps, with the VAT treatment it is issued under."""
    return json.dumps(buyer_fields(account) | {"tax_treatment": tax_treatment(account, settings)}, separators=(",", ":"))


def approve_invoice(session: Session, invoice_id: str | int, *, at: datetime, actor: str, settings: Settings | None = None) -> Invoice:
    """Number the invoice and grant its credit packs. Approving an approved invoice returns it
    unchanged; approving a void one is refused."""
    invoice = get_or_404(session, Invoice, invoice_id, "invoice")
    approve_invoices(session, [invoice.id], at=at, actor=actor, settings=settings)
    session.refresh(invoice)
    return invoice


def approve_invoices(
    session: Session,
    invoice_ids: list[int],
    *,
    at: datetime,
    actor: str,
    settings: Settings | None = None,
    known_lines: dict[int, list[dict]] | None = None,
) -> list[int]:
    """Approve the drafts among ``invoice_ids``, numbered in the order given; returns the ids
    approved now. Already approved invoices are left as they are; a void one is refused.
    ``known_lines`` holds every line of some invoices as just written (the billing run's), so
    that they need not be read back."""
    known_lines = known_lines or {}
    settings = settings or get_settings()
    invoices = {
        invoice.id: invoice
        for invoice in lock_rows(
            session, Invoice, invoice_ids, Invoice.id, Invoice.account_id, Invoice.licence_id, Invoice.status, Invoice.gross, Invoice.currency
        )
    }
    for invoice in invoices.values():
        if invoice.status == "void":
            raise InvoiceNotDraft(f"invoice {invoice.id} is void and cannot be approved", invoice_status=invoice.status)
    drafts = [invoices[invoice_id] for invoice_id in dict.fromkeys(invoice_ids) if invoices[invoice_id].status == "draft"]
    if not drafts:
        return []
    accounts = {account.id: account for account in lock_all(session, Account, {invoice.account_id for invoice in drafts})}
    record_due_expiries_of(session, accounts, now=at)

    draft_ids = [invoice.id for invoice in drafts]
    unknown = [invoice_id for invoice_id in draft_ids if invoice_id not in known_lines]
    read: dict[int, list[dict]] = {invoice_id: [] for invoice_id in unknown}
    if unknown:
        for row in session.exec(
            select(
                InvoiceLine.id, InvoiceLine.invoice_id, InvoiceLine.product_id, InvoiceLine.business_unit_id,
                InvoiceLine.contract_service_id, InvoiceLine.schedule, InvoiceLine.period_start, InvoiceLine.nominal_start,
                InvoiceLine.credits, InvoiceLine.net,
            ).where(col(InvoiceLine.invoice_id).in_(unknown), col(InvoiceLine.credits).is_not(None)).order_by(InvoiceLine.id)
        ):
            read[row.invoice_id].append(row._asdict())
    lines = [
        line
        for invoice_id in draft_ids
        for line in (known_lines[invoice_id] if invoice_id in known_lines else read[invoice_id])
        if line["credits"] is not None
    ]
    if lines:
        grant_lines(
            session, accounts, lines, account_of={invoice.id: invoice.account_id for invoice in drafts},
            licence_of={invoice.id: invoice.licence_id for invoice in drafts}, at=at, actor=actor, settings=settings, on="approval",
        )
    today = local_date(at, settings.zone)
    due = today + timedelta(days=settings.payment_terms_days)
    seller = seller_details(settings)
    buyers = {account_id: buyer_details(account, settings) for account_id, account in accounts.items()}
    # The journal's entries built before the numbers, named after them (``name_entry``).
    unnumbered = {invoice.id: Approved(None, today, at, invoice.currency, invoice.account_id, invoice.gross) for invoice in drafts}
    entries = approval_entries(session, draft_ids, known=unnumbered, known_lines=known_lines)
    # Numbered last, just before what needs the numbers: the series' row stays locked until the
    # commit, and billing workers approving at once take turns only for this part.
    numbers = allocate_numbers(session, "INV", today.year, len(drafts))
    update_rows(session, Invoice.__table__, [
        {
            "id": invoice.id, "number": number, "status": "approved", "approved_at": at, "approved_by": actor, "issue_date": today, "due_date": due,
            "seller_details": seller, "buyer_details": buyers[invoice.account_id],
        }
        for invoice, number in zip(drafts, numbers, strict=True)
    ])
    events = [
        event_row(
            "invoice.approved",
            {
                "invoice_id": str(invoice.id),
                "number": number,
                "account_id": str(invoice.account_id),
                "gross": str(round_money(invoice.gross, invoice.currency)),
            },
            at=at,
        )
        for invoice, number in zip(drafts, numbers, strict=True)
    ]

    record_events(session, events)
    post(session, [name_entry(entry, number) for entry, number in zip(entries, numbers, strict=True)], at=at)
    settle_unapplied_cash(session, drafts, at=at)  # an account's overpayments pay its next invoices
    refresh_overdue(session, accounts)  # the accounts' oldest open due date (LICENSING_BLOCK_CONSUMPTION_AFTER_DAYS)
    return draft_ids
