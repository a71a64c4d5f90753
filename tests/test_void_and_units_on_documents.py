"""Documents an operator can read (issue 12).

* A void invoice says so: VOID across its first page, "Voided on <date>: <reason>" by the
  totals, "Total (void)" where an approved one says "Total due", and no payment terms. ``void``
  takes an optional ``reason`` (text, at most 2000 characters, no control characters), kept on the
  invoice (``void_reason``) and shown in its JSON. Its e-invoice is what it was.
* Each line of an invoice or credit note for one of the account's business units names the unit:
  "for Cardiology" under its description on the PDF, a line note (BT-127) in the EN 16931 XML.

The invoice, worked out by hand: a licence from 2027-01-01 with "Meeting credits" (10 credits,
90.00 a month, 20 %) once for Cardiology and once for Neurology, billed and approved on
2027-01-01 (90.00 each, net 180.00, tax 36.00, gross 216.00 EUR); voided on 2027-01-05.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from lxml import etree

from licensing.documents.context import credit_note_document
from licensing.documents.service import load_document, pdf_of, xml_of
from licensing.invoicing.credit_notes import CreditRequest, approve_credit_note, create_credit_note
from licensing.invoicing.models import CreditNote
from tests.pdf_pages import RENDERINGS, attachments, page_png, page_texts
from tests.support.einvoice import NAMESPACES, schematron
from tests.support.over_http import call, created, refused_with
from tests.support.use_cases import instant

D = Decimal
BILLED = "2027-01-01T09:00:00Z"
VOIDED = "2027-01-05T10:00:00+00:00"
REASON = "Billed to the wrong department: replaced by the next invoice."


def approved_invoice(client) -> tuple[dict, dict[str, str]]:
    """The January invoice of an account with Cardiology and Neurology, the same pack for each,
    approved on 2027-01-01; and the units' ids by name."""
    account = created(client, "/api/v1/accounts", {
        "name": "St. Mary's Hospital", "email": "billing@stmarys.test", "currency": "EUR", "address": "12 Harbour Road\n75011 Paris",
        "country": "FR", "tax_id": "FR12345678901",
    })["id"]
    units = {name: created(client, f"/api/v1/accounts/{account}/business-units", {"name": name})["id"] for name in ("Cardiology", "Neurology")}
    pack = created(client, "/api/v1/products", {
        "kind": "credit_pack", "name": "Meeting credits", "price": "90.00", "currency": "EUR", "tax_rate": "20", "credits": "10", "lifetime": "P1M",
    })["id"]
    licence = created(client, "/api/v1/licences", {"account_id": account, "start_date": "2027-01-01", "end_date": "2027-12-31"})["id"]
    for unit in units.values():
        created(client, f"/api/v1/licences/{licence}/services", {
            "product_id": pack, "quantity": "1", "schedule": "monthly", "from_date": "2027-01-01", "business_unit_id": unit,
        })
    run = call(client, "POST", "/api/v1/billing-runs", BILLED, json={"as_of": "2027-01-01"})
    assert run.status_code == 200 and run.json()["invoices_created"] == 1, run.text
    [draft] = call(client, "GET", "/api/v1/invoices", BILLED, params={"licence_id": licence}).json()["items"]
    approved = call(client, "POST", f"/api/v1/invoices/{draft['id']}/approve", BILLED)
    assert approved.status_code == 200, approved.text
    invoice = approved.json()
    assert (invoice["number"][:9], invoice["gross"], invoice["void_reason"]) == ("INV-2027-", "216.00", None)
    return invoice, units


def void(client, invoice_id: str, body: dict | None = None, moment: str = VOIDED):
    return call(client, "POST", f"/api/v1/invoices/{invoice_id}/void", moment, **({"json": body} if body is not None else {}))


def pdf(client, invoice_id: str) -> bytes:
    response = call(client, "GET", f"/api/v1/invoices/{invoice_id}.pdf", VOIDED)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf", response.text
    return response.content


def flat(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# A void invoice says VOID, when and why.
# ---------------------------------------------------------------------------------------------


def test_a_void_invoice_says_void_with_its_reason(client, database):
    invoice, _units = approved_invoice(client)
    before = flat(page_texts(pdf(client, invoice["id"]))[0])
    assert "Total due 216.00 EUR" in before and "VOID" not in before

    voided = void(client, invoice["id"], {"reason": REASON})
    assert voided.status_code == 200, voided.text
    assert (voided.json()["status"], voided.json()["void_reason"], voided.json()["voided_at"]) == ("void", REASON, VOIDED)
    shown = call(client, "GET", f"/api/v1/invoices/{invoice['id']}", VOIDED).json()
    assert (shown["status"], shown["void_reason"], shown["gross"]) == ("void", REASON, "216.00")

    document = pdf(client, invoice["id"])
    [first] = page_texts(document)
    text = flat(first)
    assert "VOID" in text
    assert f"Voided on 5 Jan 2027: {REASON}" in text
    assert "Total (void) 216.00 EUR" in text
    assert "Total due" not in text and "Payment due" not in text and "Due date" not in text.title()
    assert "Voided on 5 Jan 2027".upper() in text.upper()  # the facts name the day, where the due date was
    # its e-invoice is kept as it was: the invoice as issued
    assert attachments(document)["factur-x.xml"] == xml_of(load_document(database, "invoice", invoice["id"]))
    page_png(document, RENDERINGS / f"void-invoice-{database.writer.dialect.name}.png")


def test_void_without_a_reason_still_says_void(client):
    invoice, _units = approved_invoice(client)
    voided = void(client, invoice["id"])  # no body at all
    assert voided.status_code == 200, voided.text
    assert (voided.json()["status"], voided.json()["void_reason"]) == ("void", None)

    text = flat(page_texts(pdf(client, invoice["id"]))[0])
    assert "VOID" in text and "Voided on 5 Jan 2027." in text and "Total (void) 216.00 EUR" in text
    assert "Total due" not in text and "Voided on 5 Jan 2027:" not in text


def test_a_blank_reason_is_no_reason_and_voiding_again_keeps_the_first(client):
    invoice, _units = approved_invoice(client)
    assert void(client, invoice["id"], {"reason": "  \n"}).json()["void_reason"] is None
    again = void(client, invoice["id"], {"reason": "Another reason"}, moment="2027-01-06T10:00:00Z")
    assert (again.status_code, again.json()["void_reason"], again.json()["voided_at"]) == (200, None, VOIDED)

    other, _units = approved_invoice(client)
    assert void(client, other["id"], {"reason": REASON, "credit_policy": "strict"}).json()["void_reason"] == REASON
    assert void(client, other["id"], {"reason": "Changed my mind"}).json()["void_reason"] == REASON


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\ufffe"])
def test_a_void_reason_with_control_characters_is_refused(client, character):
    invoice, _units = approved_invoice(client)
    body = json.dumps({"reason": f"Wrong{character}department"})
    problem = refused_with(
        call(client, "POST", f"/api/v1/invoices/{invoice['id']}/void", VOIDED, content=body, headers={"Content-Type": "application/json"}),
        422,
        "validation_error",
    )
    assert [error["field"] for error in problem["errors"]] == ["reason"]
    # nothing happened: the invoice is still approved, and says what is due
    assert call(client, "GET", f"/api/v1/invoices/{invoice['id']}", VOIDED).json()["status"] == "approved"
    assert "Total due 216.00 EUR" in flat(page_texts(pdf(client, invoice["id"]))[0])


def test_a_void_reason_may_have_lines_but_not_more_than_2000_characters(client):
    invoice, _units = approved_invoice(client)
    problem = refused_with(void(client, invoice["id"], {"reason": "x" * 2001}), 422, "validation_error")
    assert [error["field"] for error in problem["errors"]] == ["reason"]
    voided = void(client, invoice["id"], {"reason": "Wrong department.\nReplaced by the next invoice."})
    assert voided.json()["void_reason"] == "Wrong department.\nReplaced by the next invoice."
    text = flat(page_texts(pdf(client, invoice["id"]))[0])
    assert "Voided on 5 Jan 2027: Wrong department. Replaced by the next invoice." in text


# ---------------------------------------------------------------------------------------------
# Each line names its business unit.
# ---------------------------------------------------------------------------------------------


def test_each_line_names_its_business_unit(client, database):
    invoice, _units = approved_invoice(client)
    lines = invoice["lines"]
    assert [line["description"] for line in lines] == [lines[0]["description"]] * 2  # the same text twice

    [first] = page_texts(pdf(client, invoice["id"]))
    text = flat(first)
    description = flat(lines[0]["description"])
    # each line: its description, then its unit (under it), before the next line's number
    assert f"1 {description} for Cardiology" in text, text
    assert f"2 {description} for Neurology" in text, text
    assert text.index("for Cardiology") < text.index("for Neurology")

    document = load_document(database, "invoice", invoice["id"])
    assert [line.business_unit for line in document.lines] == ["Cardiology", "Neurology"]


def test_the_e_invoice_names_each_lines_business_unit_in_a_line_note(client, database):
    invoice, _units = approved_invoice(client)
    response = call(client, "GET", f"/api/v1/invoices/{invoice['id']}.xml", VOIDED)
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    notes = [
        [note.text for note in item.xpath("ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content", namespaces=NAMESPACES)]
        for item in root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NAMESPACES)
    ]
    assert notes == [["Business unit: Cardiology"], ["Business unit: Neurology"]]
    errors, _warnings = schematron(response.content)
    assert errors == []


def test_a_credit_note_line_names_the_unit_of_the_invoice_line_it_credits(client, database):
    invoice, _units = approved_invoice(client)
    neurology_line = invoice["lines"][1]
    moment = instant("2027-01-05 10:00")
    with database.write() as session:
        note = create_credit_note(session, invoice_id=invoice["id"], lines=[CreditRequest(neurology_line["id"], quantity=D("0.5"))],
                                  reason="Half a month", now=moment, actor="operator")
    with database.write() as session:
        approve_credit_note(session, note.id, now=moment, actor="operator")
    with database.read() as session:
        document = credit_note_document(session, session.get(CreditNote, note.id))
    assert [(line.description, line.business_unit) for line in document.lines] == [(neurology_line["description"], "Neurology")]
    text = flat(page_texts(pdf_of(document))[0])
    assert f"1 {flat(neurology_line['description'])} for Neurology" in text
    assert "Cardiology" not in text


def test_lines_without_a_unit_show_none(client, database):
    account = created(client, "/api/v1/accounts", {"name": "Acme Ltd", "email": "a@acme.test", "currency": "EUR", "country": "FR"})["id"]
    desk = created(client, "/api/v1/products", {"kind": "service", "name": "Dedicated desk", "price": "310.00", "currency": "EUR", "tax_rate": "20"})[
        "id"
    ]
    licence = created(client, "/api/v1/licences", {"account_id": account, "start_date": "2027-01-01", "end_date": "2027-12-31"})["id"]
    created(client, f"/api/v1/licences/{licence}/services", {"product_id": desk, "quantity": "1", "schedule": "monthly", "from_date": "2027-01-01"})
    call(client, "POST", "/api/v1/billing-runs", BILLED, json={"as_of": "2027-01-01", "approve": True})
    [invoice] = call(client, "GET", "/api/v1/invoices", BILLED, params={"licence_id": licence}).json()["items"]
    document = load_document(database, "invoice", invoice["id"])
    assert [line.business_unit for line in document.lines] == [None]
    # the description, then straight its service period
    assert f"1 {flat(invoice['lines'][0]['description'])} Service period" in flat(page_texts(pdf_of(document))[0])
