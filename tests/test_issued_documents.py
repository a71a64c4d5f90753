"""An approved document never changes, and always renders (issue 11).

* Approval keeps the seller (the operator's settings) and the buyer (the account) as issued, with
  the VAT treatment the invoice was issued under: renaming the account, moving it, making it
  tax-exempt or changing the operator's settings afterwards changes drafts only. A credit note
  keeps the parties of its own approval, and takes back the invoice's lines under the invoice's
  VAT treatment.
* Text the XML 1.0 cannot hold (C0 controls but tab, line feed and carriage return; U+FFFE,
  U+FFFF; lone surrogates), stored before the API refused it or written by another path, is left
  out of the ``Document``, so that the PDF, the EN 16931 XML and the mail are made all the same.
  PostgreSQL text cannot hold NUL at all: its half stores the others (BEL, ESC, U+FFFE).

The invoice, worked out by hand: a licence from 2027-01-16 with a dedicated desk at 310.00 a
month (20 %), pro-rated 16/31 -> 160.00, and 10 credits at 100.00 (20 %); approved on 2027-01-16,
due on 2027-01-30 (14 days); net 260.00, tax 52.00, gross 312.00 EUR.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from decimal import Decimal
from email import message_from_bytes
from email.policy import default as default_policy
from email.utils import parseaddr

import pytest
from lxml import etree
from sqlmodel import select

from licensing.accounts.models import Account
from licensing.accounts.services import update_account
from licensing.documents.context import credit_note_document, invoice_document
from licensing.documents.delivery import DeliveryRun, send_due
from licensing.documents.model import Document, Line, Party, xml_text
from licensing.documents.service import load_document, pdf_of, xml_of
from licensing.invoicing.approval import approve_invoice
from licensing.invoicing.billing import run_billing
from licensing.invoicing.credit_notes import CreditRequest, approve_credit_note, create_credit_note
from licensing.invoicing.models import CreditNote, Invoice, InvoiceLine
from licensing.invoicing.top_ups import top_up
from tests import factories
from tests.pdf_pages import RENDERINGS, attachments, page_png, page_texts
from tests.support.einvoice import read, schematron
from tests.support.use_cases import ACTOR, bill_and_approve, instant

D = Decimal
JANUARY_16 = instant("2027-01-16 09:00")  # billed and approved
CORRECTED = instant("2027-01-18 09:00")  # a credit note is made and approved
LATER = instant("2027-02-03 10:00")  # details change; a draft top-up is made; mail is sent

ISSUED_SELLER = Party("Cowork Lyon SAS", ("12 Rue de la République", "69002 Lyon"), "FR", "FR40123456789", "billing@cowork.test")
ISSUED_BUYER = Party("Harbour Studio SARL", ("12 Harbour Road", "75011 Paris"), "FR", "FR12345678901", "billing@acme.test")
NEW_BUYER_NAME = "Northwind Collective"
NEW_SELLER_NAME = "Cowork Berlin GmbH"
# CII requires ApplicableHeaderTradeDelivery even when nothing is delivered: a warning only.
EMPTY_DELIVERY = "PEPPOL-EN16931-R008"


@pytest.fixture
def operator(set_operator_setting):
    set_operator_setting("operator_name", ISSUED_SELLER.name)
    set_operator_setting("operator_address", "\n".join(ISSUED_SELLER.address_lines))
    set_operator_setting("operator_country", ISSUED_SELLER.country)
    set_operator_setting("operator_tax_id", ISSUED_SELLER.tax_id)
    set_operator_setting("operator_email", ISSUED_SELLER.email)
    return set_operator_setting


def january(database, *, batch: bool = True, approve: bool = True, **account_values):
    """The account (``ISSUED_BUYER`` unless told) and its January invoice, approved on Jan 16 by
    the billing run (``batch``, ``approve_invoices`` with the run's lines) or on its own
    (``approve_invoice``)."""
    values = {
        "name": ISSUED_BUYER.name, "address": "\n".join(ISSUED_BUYER.address_lines), "country": ISSUED_BUYER.country,
        "tax_id": ISSUED_BUYER.tax_id,
    } | account_values
    account = factories.account(database, **values)
    desk = factories.plain_service(database, price="310.00")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
    licence = factories.licence(database, account.id, date(2027, 1, 16), date(2027, 12, 31))
    for product in (desk, pack):
        factories.service(database, licence.id, product.id, from_date=date(2027, 1, 16), to_date=date(2027, 12, 31))
    if batch or not approve:
        result = run_billing(database, as_of=date(2027, 1, 16), now=JANUARY_16, actor=ACTOR, approve_all=approve)
        assert result.invoices_created == 1
        with database.read() as session:
            invoice = session.exec(select(Invoice).where(Invoice.licence_id == licence.id)).one()
    else:
        invoice = bill_and_approve(database, licence.id, as_of=date(2027, 1, 16), now=JANUARY_16)
    return account, invoice, pack


def rename(database, account_id: int, **changes) -> None:
    with database.write() as session:
        update_account(session, account_id, **changes)


def draft_top_up(database, account_id: int, pack_id: int) -> Invoice:
    with database.write() as session:
        return top_up(session, account_id, product_id=pack_id, now=LATER, actor=ACTOR)


def credit_half_the_pack(database, invoice: Invoice, *, approve: bool = True) -> CreditNote:
    with database.read() as session:
        pack_line = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.credits.is_not(None))).one()
    with database.write() as session:
        note = create_credit_note(session, invoice_id=invoice.id, lines=[CreditRequest(pack_line.id, quantity=D("0.5"))],
                                  reason="Half a month too many", now=CORRECTED, actor=ACTOR)
    if approve:
        with database.write() as session:
            note = approve_credit_note(session, note.id, now=CORRECTED, actor=ACTOR)
    return note


def text_of(pdf: bytes) -> str:
    return " ".join(page_texts(pdf))


def as_said(party: Party) -> tuple:
    """A party as ``tests.test_einvoice.read`` reads it back from the XML."""
    lines = party.address_lines
    return (party.name, (lines[0], lines[1], ", ".join(lines[2:]) or None), party.country, party.tax_id, party.email)


def valid(xml: bytes) -> None:
    errors, warnings = schematron(xml)
    assert errors == []
    assert [rule for rule, _message in warnings] == [EMPTY_DELIVERY]


# ---------------------------------------------------------------------------------------------
# The buyer as issued
# ---------------------------------------------------------------------------------------------


def test_renaming_an_account_after_approval_keeps_the_buyer_on_the_approved_invoice(database, operator, tmp_path):
    operator("mail_outbox", str(tmp_path))
    account, invoice, pack = january(database)

    rename(database, account.id, name=NEW_BUYER_NAME, address="1 New Street\n69001 Lyon", tax_id="FR99999999999", email="ap@northwind.test")
    draft = draft_top_up(database, account.id, pack.id)

    document = load_document(database, "invoice", invoice.id)
    assert (document.number, document.buyer, document.seller) == ("INV-2027-000001", ISSUED_BUYER, ISSUED_SELLER)
    pdf = pdf_of(document)
    text = text_of(pdf)
    assert "Harbour Studio SARL" in text and "12 Harbour Road" in text and "VAT id FR12345678901" in text
    assert NEW_BUYER_NAME not in text and "New Street" not in text
    xml = xml_of(document)
    assert read(xml)["buyer"] == as_said(ISSUED_BUYER)
    assert attachments(pdf)["factur-x.xml"] == xml
    valid(xml)
    page_png(pdf, RENDERINGS / f"renamed-account-{database.writer.dialect.name}.png", resolution=60)

    # the draft is the account as it is now
    draft_text = text_of(pdf_of(load_document(database, "invoice", draft.id)))
    assert NEW_BUYER_NAME in draft_text and "1 New Street" in draft_text and "Harbour Studio" not in draft_text

    # the mail, sent after the rename, carries the invoice as issued
    assert send_due(database, now=LATER) == DeliveryRun(sent=1)
    mail = message_from_bytes((next(tmp_path.glob("INV-2027-000001.*.eml"))).read_bytes(), policy=default_policy)
    assert parseaddr(mail["To"]) == ("Harbour Studio SARL", "billing@acme.test")
    assert "Hello Harbour Studio SARL," in mail.get_body(("plain",)).get_content()


def test_approval_keeps_the_parties_as_json_and_documents_approved_before_fall_back_to_the_live_details(database, operator):
    account, invoice, _pack = january(database, batch=False)
    with database.read() as session:
        stored = session.get(Invoice, invoice.id)
        seller, buyer = json.loads(stored.seller_details), json.loads(stored.buyer_details)
    assert seller == {
        "name": "Cowork Lyon SAS", "address_lines": ["12 Rue de la République", "69002 Lyon"], "country": "FR",
        "tax_id": "FR40123456789", "email": "billing@cowork.test",
    }
    assert buyer == {
        "name": "Harbour Studio SARL", "address_lines": ["12 Harbour Road", "75011 Paris"], "country": "FR",
        "tax_id": "FR12345678901", "email": "billing@acme.test", "tax_treatment": "S",
    }

    # an invoice approved before approval kept its parties shows the account as it is
    with database.write() as session:
        old = session.get(Invoice, invoice.id)
        old.seller_details = old.buyer_details = None
        session.add(old)
    rename(database, account.id, name=NEW_BUYER_NAME)
    assert load_document(database, "invoice", invoice.id).buyer.name == NEW_BUYER_NAME


def test_a_top_up_approved_at_once_keeps_its_buyer(database, operator):
    account, _invoice, pack = january(database, approve=False)
    with database.write() as session:
        approved = top_up(session, account.id, product_id=pack.id, approve=True, now=JANUARY_16, actor=ACTOR)
    rename(database, account.id, name=NEW_BUYER_NAME)

    document = load_document(database, "invoice", approved.id)
    assert (document.status, document.buyer) == ("approved", ISSUED_BUYER)


# ---------------------------------------------------------------------------------------------
# The seller as issued
# ---------------------------------------------------------------------------------------------


def test_changing_the_operator_settings_keeps_the_seller_on_approved_documents(database, operator):
    account, invoice, pack = january(database, batch=False)
    note = credit_half_the_pack(database, invoice)

    operator("operator_name", NEW_SELLER_NAME)
    operator("operator_address", "Torstraße 1\n10119 Berlin")
    operator("operator_country", "DE")
    operator("operator_tax_id", "DE123456789")
    operator("operator_email", "rechnung@cowork.test")
    operator("payment_terms_days", "30")
    draft = draft_top_up(database, account.id, pack.id)

    for kind, document_id, number in (("invoice", invoice.id, "INV-2027-000001"), ("credit_note", note.id, "CN-2027-000001")):
        document = load_document(database, kind, document_id)
        assert (document.number, document.seller, document.buyer) == (number, ISSUED_SELLER, ISSUED_BUYER)
        text = text_of(pdf_of(document))
        assert "Cowork Lyon SAS" in text and "69002 Lyon" in text and "VAT id FR40123456789" in text
        assert "Berlin" not in text and "DE123456789" not in text
        xml = xml_of(document)
        assert read(xml)["seller"] == as_said(ISSUED_SELLER)
        valid(xml)
    # the invoice's terms are those it was issued with (14 days), not today's setting
    assert load_document(database, "invoice", invoice.id).payment_terms == "Payment due within 14 days of the issue date, by 30 Jan 2027."

    # a draft is the operator as configured now
    fresh = load_document(database, "invoice", draft.id)
    assert (fresh.seller.name, fresh.seller.address_lines, fresh.seller.tax_id) == (NEW_SELLER_NAME, ("Torstraße 1", "10119 Berlin"), "DE123456789")
    assert fresh.payment_terms == "Payment due within 30 days of the issue date, by 5 Mar 2027."


# ---------------------------------------------------------------------------------------------
# Credit notes
# ---------------------------------------------------------------------------------------------


def test_an_approved_credit_note_keeps_its_parties(database, operator):
    account, invoice, _pack = january(database)
    rename(database, account.id, name="Harbour Studio SAS", address="14 Harbour Road\n75011 Paris")
    draft = credit_half_the_pack(database, invoice, approve=False)
    with database.read() as session:
        # a draft credit note is the account as it is now
        assert credit_note_document(session, session.get(CreditNote, draft.id)).buyer.name == "Harbour Studio SAS"
    with database.write() as session:
        note = approve_credit_note(session, draft.id, now=CORRECTED, actor=ACTOR)

    rename(database, account.id, name=NEW_BUYER_NAME, address="1 New Street\n69001 Lyon")
    operator("operator_name", NEW_SELLER_NAME)

    as_credited = Party("Harbour Studio SAS", ("14 Harbour Road", "75011 Paris"), "FR", "FR12345678901", "billing@acme.test")
    document = load_document(database, "credit_note", note.id)
    # the note is issued to the buyer as they were when it was approved; the invoice keeps its own
    assert (document.number, document.buyer, document.seller) == ("CN-2027-000001", as_credited, ISSUED_SELLER)
    assert load_document(database, "invoice", invoice.id).buyer == ISSUED_BUYER
    text = text_of(pdf_of(document))
    assert "Harbour Studio SAS" in text and "14 Harbour Road" in text and "Cowork Lyon SAS" in text
    assert NEW_BUYER_NAME not in text and NEW_SELLER_NAME not in text
    said = read(xml_of(document))
    assert (said["buyer"], said["seller"], said["preceding"]) == (as_said(as_credited), as_said(ISSUED_SELLER), ("INV-2027-000001", "20270116"))


def test_an_account_made_tax_exempt_after_approval_changes_neither_the_invoice_nor_its_credit_note(database, operator):
    account, invoice, pack = january(database)
    rename(database, account.id, tax_exempt=True)
    note = credit_half_the_pack(database, invoice)
    draft = draft_top_up(database, account.id, pack.id)

    with database.read() as session:
        issued = invoice_document(session, session.get(Invoice, invoice.id))
        credited = credit_note_document(session, session.get(CreditNote, note.id))
        fresh = invoice_document(session, session.get(Invoice, draft.id))
    # issued under the standard rate: 20 % of 260.00; the note takes back 50.00 at 20 % as well
    assert [(tax.category, tax.rate, tax.net, tax.tax) for tax in issued.taxes] == [("S", D("20"), D("260.00"), D("52.00"))]
    assert [(tax.category, tax.rate, tax.net, tax.tax) for tax in credited.taxes] == [("S", D("20"), D("50.00"), D("10.00"))]
    for document in (issued, credited):
        valid(xml_of(document))
    # the account's next invoice is exempt
    assert [(tax.category, tax.rate) for tax in fresh.taxes] == [("E", D("0"))]


# ---------------------------------------------------------------------------------------------
# Stored text the XML cannot hold
# ---------------------------------------------------------------------------------------------


def test_stored_control_characters_still_render(database, operator, tmp_path):
    operator("mail_outbox", str(tmp_path))
    # NUL only where the database can store it: PostgreSQL text cannot hold it at all
    nul = "\x00" if database.writer.dialect.name == "sqlite" else ""
    name = f"Bell\x07 Escape\x1b Nonchar\ufffe Null{nul} Studio"
    shown = "Bell Escape Nonchar Null Studio"
    account, invoice, _pack = january(database, approve=False)
    with database.write() as session:  # past the API's check, as rows written before it
        stored = session.get(Account, account.id)
        stored.name, stored.address = name, f"12 Harbour\x07 Road\n\x1b\ufffe\n75011 Paris{nul}"
        session.add(stored)
        desk = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).first()
        desk.description = "Dedicated desk \x1b[31mred\x1b[0m"
        session.add(desk)
    with database.read() as session:
        assert session.get(Account, account.id).name == name  # stored as written

    # the draft renders
    assert shown in text_of(pdf_of(load_document(database, "invoice", invoice.id)))

    with database.write() as session:
        approve_invoice(session, invoice.id, at=JANUARY_16, actor=ACTOR)
    with database.read() as session:
        # kept as issued, control characters and all (the JSON is ASCII: \u escapes)
        details = session.get(Invoice, invoice.id).buyer_details
        assert details.isascii() and json.loads(details)["name"] == name

    document = load_document(database, "invoice", invoice.id)
    assert (document.number, document.buyer.name, document.buyer.address_lines) == ("INV-2027-000001", shown, ("12 Harbour Road", "75011 Paris"))
    assert document.lines[0].description == "Dedicated desk [31mred[0m"

    xml = xml_of(document)
    root = etree.fromstring(xml)  # well-formed
    assert root is not None and read(xml)["buyer"][:2] == (shown, ("12 Harbour Road", "75011 Paris", None))
    valid(xml)

    pdf = pdf_of(document)
    assert shown in text_of(pdf) and "Dedicated desk [31mred[0m" in text_of(pdf)
    assert attachments(pdf)["factur-x.xml"] == xml
    page_png(pdf, RENDERINGS / f"control-characters-{database.writer.dialect.name}.png", resolution=60)

    # the mail: its headers, bodies and attachment are built, and the .eml written
    assert send_due(database, now=LATER) == DeliveryRun(sent=1)
    mail = message_from_bytes((next(tmp_path.glob("INV-2027-000001.*.eml"))).read_bytes(), policy=default_policy)
    assert parseaddr(mail["To"]) == (shown, "billing@acme.test")
    assert f"Hello {shown}," in mail.get_body(("plain",)).get_content()
    assert shown in mail.get_body(("html",)).get_content()
    [attachment] = mail.iter_attachments()
    assert attachment.get_content().startswith(b"%PDF-")

    # a credit note of it renders too
    note = credit_half_the_pack(database, invoice)
    credited = load_document(database, "credit_note", note.id)
    assert credited.buyer.name == shown
    etree.fromstring(xml_of(credited))
    assert shown in text_of(pdf_of(credited))


def test_a_document_holds_only_text_the_xml_can_carry():
    dirty = "a\x00b\x07c\x08d\x0be\x0cf\x1bg\x1fh\ufffei\uffffj\ud800k\udfffl"
    assert xml_text(dirty) == "abcdefghijkl"
    assert xml_text("tab\there\nline\r\n, é € 𝄞 \ufffd") == "tab\there\nline\r\n, é € 𝄞 \ufffd"  # what XML allows stays
    assert xml_text(None) is None and xml_text("") == ""

    party = Party(dirty, ("\x07", f"1 Rue{dirty}"), "F\x00R", "FR\x1b1", "a\x07@b.test")
    assert party == Party("abcdefghijkl", ("1 Rueabcdefghijkl",), "FR", "FR1", "a@b.test")
    line = Line(1, f"desk{dirty}", date(2027, 1, 1), date(2027, 1, 31), D(1), D(1), D(0), "Z", D(1), D(0))
    assert line.description == "deskabcdefghijkl"
    document = Document(
        kind="invoice", id=1, number="INV\x07-1", status="approved", issue_date=date(2027, 1, 1), due_date=None, currency="EUR",
        seller=party, buyer=party, lines=(line,), taxes=(), net=D(1), tax=D(0), gross=D(1), payment_terms=f"terms{dirty}",
        reason=f"why{dirty}", notes=(f"note{dirty}",), credited_invoice_number="INV\x00-0",
    )
    assert (document.number, document.payment_terms, document.reason, document.notes, document.credited_invoice_number) == (
        "INV-1", "termsabcdefghijkl", "whyabcdefghijkl", ("noteabcdefghijkl",), "INV-0"
    )
    assert dataclasses.replace(document, notes=(*document.notes, "more\x1b")).notes == ("noteabcdefghijkl", "more")
