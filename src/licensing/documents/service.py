"""The use cases of documents: the Document of an invoice or credit note (read in a short
transaction), and its PDF and e-invoice XML (rendered outside any transaction)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from sqlmodel import Session, select

from licensing.db import Database
from licensing.db.repository import get_or_404
from licensing.documents.context import credit_note_document, invoice_document
from licensing.documents.model import Document
from licensing.errors import EInvoiceUnavailable, InvoiceNotDraft, NotFound
from licensing.invoicing.models import CreditNote, Invoice

log = logging.getLogger("licensing.documents")


def load_document(database: Database, kind: str, document_id: str | int, *, visible: Callable[[int], bool] | None = None) -> Document:
    """The Document of invoice or credit note ``document_id``: 404 when there is none, and when
    ``visible`` (given the document's account id) says it may not be seen."""
    model, what = (Invoice, "invoice") if kind == "invoice" else (CreditNote, "credit note")
    with database.read() as session:
        row = get_or_404(session, model, document_id, what)
        if visible is not None and not visible(row.account_id):
            raise NotFound(f"{what} {document_id} does not exist")
        return invoice_document(session, row) if kind == "invoice" else credit_note_document(session, row)


def find_by_number(session: Session, number: str) -> tuple[str, int]:
    """("invoice" or "credit_note", id) of the document with this number."""
    invoice_id = session.exec(select(Invoice.id).where(Invoice.number == number)).first()
    if invoice_id is not None:
        return "invoice", invoice_id
    note_id = session.exec(select(CreditNote.id).where(CreditNote.number == number)).first()
    if note_id is not None:
        return "credit_note", note_id
    raise NotFound(f"no invoice or credit note is numbered {number!r}")


def xml_of(document: Document) -> bytes:
    """The EN 16931 XML of an approved document; drafts have none (no number yet)."""
    if document.number is None:
        raise InvoiceNotDraft(f"{document.title.lower()} {document.id} is a draft: it has no e-invoice until it is approved", status=document.status)
    from licensing.documents.einvoice import build_xml

    try:
        return build_xml(document)
    except ValueError as error:
        raise EInvoiceUnavailable(f"{document.title.lower()} {document.number} cannot be an EN 16931 e-invoice: {error}") from None


def pdf_of(document: Document, **options) -> bytes:
    """The PDF: with its embedded e-invoice once approved, marked as a draft before. When the
    e-invoice cannot be made (an account without a country, an operator without a VAT id) the
    PDF is still rendered, without it, and says so (the XML route answers why)."""
    from licensing.documents.pdf import render_pdf

    xml = None
    if document.number:
        try:
            xml = xml_of(document)
        except EInvoiceUnavailable as error:
            log.warning("%s", error.detail)
            document = replace(document, notes=(*document.notes, "This document carries no e-invoice: " + error.detail.split(": ", 1)[-1]))
    return render_pdf(document, xml=xml, **options)
