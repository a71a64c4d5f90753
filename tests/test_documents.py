"""Invoice and credit note PDFs (SPEC 8): what they show, how they page, what the renderer may
read, and how they are served (HTTP, command line). Every PDF here is rendered by WeasyPrint for
real; text is read back with pypdf; a PNG of page 1 is written with pdftoppm for people to see
(in the temporary folder named by ``tests.pdf_pages.RENDERINGS``)."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from freezegun import freeze_time
from sqlmodel import select

from licensing.config import get_settings
from licensing.documents.pdf import AssetFetcher, document_stylesheet, package_templates, render_pdf
from licensing.documents.service import load_document, pdf_of
from licensing.invoicing.billing import run_billing
from licensing.invoicing.credit_notes import (
    CreditRequest,
    approve_credit_note,
    create_credit_note,
)
from licensing.invoicing.models import Invoice, InvoiceLine
from tests import factories
from tests.pdf_pages import RENDERINGS, attachments, page_png, page_texts, xmp_metadata

D = Decimal
BILLED_AT = datetime(2027, 1, 16, 9, 0, tzinfo=UTC)
HOSTILE_NAME = '<img src="file:///etc/passwd">'
HOSTILE_DESCRIPTION = '<link rel=stylesheet href="http://127.0.0.1:9/x.css">'


def billed_invoice(
    database, *, account_name: str = "St. Mary's Hospital", desk_name: str = "Dedicated desk", services: int = 1, approve: bool = True
):
    """A licence from 2027-01-16 with a credit pack and ``services`` plain services, billed
    (and approved) on its first day: the January invoice."""
    account = factories.account(database, name=account_name, address="12 Harbour Road\n75011 Paris", country="FR", tax_id="FR12345678901")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00", name="Meeting credits")
    desk = factories.plain_service(database, price="310.00", name=desk_name)
    licence = factories.licence(database, account.id, date(2027, 1, 16))
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 16))
    for _ in range(services):
        factories.service(database, licence.id, desk.id, from_date=date(2027, 1, 16))
    run_billing(database, as_of=date(2027, 1, 16), now=BILLED_AT, actor="operator", approve_all=approve)
    with database.read() as session:
        invoice = session.exec(select(Invoice).where(Invoice.licence_id == licence.id)).one()
        lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all()
    return account, invoice, lines


def test_the_invoice_pdf_shows_its_number_buyer_lines_tax_summary_and_total(database):
    _account, invoice, lines = billed_invoice(database)
    document = load_document(database, "invoice", invoice.id)
    pdf = pdf_of(document)

    assert pdf.startswith(b"%PDF-")
    [text] = page_texts(pdf)
    assert "Invoice INV-2027-000001" in text
    assert "St. Mary's Hospital" in text and "12 Harbour Road" in text
    assert "Licensing Demo Workspace" in text and "VAT id FR00123456789" in text
    for line in lines:
        assert line.description in text.replace("\n", " ")
    # the pack: 10 credits in full, usable until Jan 31 (they expire at 00:00 on Feb 1)
    assert "10.00 credits, usable until 31 Jan 2027 (expire on 1 Feb 2027)" in text
    # the desk: 16/31 of 310.00 = 160.00; tax summary 20 % of 260.00 = 52.00; gross 312.00
    assert "Dedicated desk (16/31 of the period)" in text
    assert "20 % 260.00 52.00" in text
    assert "Total due 312.00 EUR" in text
    assert "Issue date 16 Jan 2027".upper() in text.upper() and "Due date 30 Jan 2027".upper() in text.upper()
    assert "Page 1 of 1" in text
    page_png(pdf, RENDERINGS / f"invoice-{database.writer.dialect.name}.png")


def test_a_sixty_line_invoice_spans_pages_each_with_the_table_header_and_numbered(database):
    _account, invoice, lines = billed_invoice(database, services=59)
    assert len(lines) == 60
    pdf = pdf_of(load_document(database, "invoice", invoice.id))

    texts = page_texts(pdf)
    assert len(texts) >= 2
    for number, text in enumerate(texts, start=1):
        assert "DESCRIPTION" in text and "UNIT PRICE" in text, f"page {number} lacks the table header"
        assert f"Page {number} of {len(texts)}" in text
    every_page = "\n".join(texts)
    assert every_page.count("Dedicated desk (16/31 of the period)") == 59
    assert "Total due" in texts[-1]


def test_text_a_user_wrote_is_shown_literally_and_never_fetched(database):
    _account, invoice, _lines = billed_invoice(database, account_name=HOSTILE_NAME, desk_name=f"Desk {HOSTILE_DESCRIPTION}")
    document = load_document(database, "invoice", invoice.id)
    fetcher = AssetFetcher()

    pdf = render_pdf(document, fetcher=fetcher)

    text = " ".join(page_texts(pdf)).replace("\n", "")
    assert HOSTILE_NAME in text
    assert HOSTILE_DESCRIPTION.replace(" ", "") in text.replace(" ", "")
    # the renderer fetched nothing for the document (its stylesheet is parsed once per process) and was refused nothing
    assert fetcher.requested == []
    assert fetcher.refused == []
    assert not any("passwd" in url or "127.0.0.1" in url for url in fetcher.requested)


def test_the_stylesheet_is_parsed_once_and_again_when_it_changes(database, tmp_path, set_operator_setting):
    shutil.copytree(package_templates(), tmp_path / "brand")
    set_operator_setting("templates_dir", str(tmp_path / "brand"))
    _account, invoice, _lines = billed_invoice(database)
    document = load_document(database, "invoice", invoice.id)
    [parsed] = document_stylesheet(get_settings())
    assert document_stylesheet(get_settings()) == [parsed]  # the same parsed object: not read again
    assert "BILLED TO" in page_texts(render_pdf(document))[0]  # "Billed to", upper-cased by the stylesheet

    css = tmp_path / "brand" / "assets" / "document.css"
    css.write_text(css.read_text().replace("text-transform: uppercase", "text-transform: none"))
    os.utime(css, ns=(css.stat().st_atime_ns, css.stat().st_mtime_ns + 1_000_000_000))

    assert document_stylesheet(get_settings()) != [parsed]
    text = page_texts(render_pdf(document))[0]
    assert "Billed to" in text and "BILLED TO" not in text


def test_the_fetcher_refuses_every_url_but_the_template_assets(tmp_path):
    fetcher = AssetFetcher()
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    for url in ("file:///etc/passwd", "http://127.0.0.1:9/x.css", "https://example.com/logo.png", secret.as_uri(),
                fetcher.root.as_uri() + "/document.html", fetcher.root.as_uri() + "/assets/../document.html"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 6
    response = fetcher.fetch((fetcher.root / "assets" / "document.css").as_uri())
    assert response.read().startswith(b"/*")


def test_an_approved_invoice_pdf_is_pdf_a_3b_with_its_e_invoice_embedded(database):
    _account, invoice, _lines = billed_invoice(database)
    pdf = pdf_of(load_document(database, "invoice", invoice.id))

    files = attachments(pdf)
    assert list(files) == ["factur-x.xml"]
    xml = files["factur-x.xml"]
    assert b"INV-2027-000001" in xml and b"urn:cen.eu:en16931:2017" in xml
    xmp = xmp_metadata(pdf)
    assert re.search(rb"pdfaid:part(>|=\")3", xmp) and re.search(rb"pdfaid:conformance(>|=\")B", xmp)
    assert b"EN 16931" in xmp and b"factur-x.xml" in xmp


def test_the_e_invoice_is_one_data_file_and_the_info_and_xmp_say_the_same(database):
    import io

    from lxml import etree
    from pypdf import PdfReader

    _account, invoice, _lines = billed_invoice(database)
    reader = PdfReader(io.BytesIO(pdf_of(load_document(database, "invoice", invoice.id))))
    root = reader.trailer["/Root"]

    [filespec] = [entry.get_object() for entry in root["/AF"]]  # once, not twice (WeasyPrint issue 2917)
    assert (filespec["/F"], filespec["/AFRelationship"]) == ("factur-x.xml", "/Data")
    assert filespec["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"
    assert root["/PageMode"] == "/UseAttachments"

    packet = root["/Metadata"].get_object().get_data()
    xmp = etree.fromstring(packet[packet.index(b"<x:xmpmeta"):packet.index(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")])
    rdf = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "dc": "http://purl.org/dc/elements/1.1/",
           "xmp": "http://ns.adobe.com/xap/1.0/", "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
           "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#"}
    assert len(xmp.findall("rdf:RDF", rdf)) == 1  # one RDF: the Factur-X properties merged into WeasyPrint's
    info = reader.metadata
    assert xmp.findtext(".//dc:title/rdf:Alt/rdf:li", namespaces=rdf) == info.title == "Licensing Demo Workspace: Invoice INV-2027-000001"
    assert xmp.findtext(".//dc:creator/rdf:Seq/rdf:li", namespaces=rdf) == info.author == "Licensing Demo Workspace"
    assert info["/CreationDate"] and xmp.findtext(".//xmp:CreateDate", namespaces=rdf)
    assert [xmp.findtext(f".//fx:{name}", namespaces=rdf) for name in ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel")] == [
        "INVOICE", "factur-x.xml", "1.0", "EN 16931"]
    assert xmp.findtext(".//pdfaSchema:prefix", namespaces=rdf) == "fx"  # the extension schema declares them


def test_each_stream_of_the_pdf_is_compressed_once_though_its_identifier_reads_them_all_again(database, monkeypatch):
    """pydyf compresses a stream every time its bytes are read, and a PDF/A's ``/ID`` (a digest of
    every object) reads them all a second time; the renderer has each compressed once, and what is
    hashed is what was written."""
    import hashlib
    import io
    import zlib

    from pypdf import PdfReader
    from pypdf.generic import StreamObject

    _account, invoice, _lines = billed_invoice(database)
    document = load_document(database, "invoice", invoice.id)
    compressions = 0
    compressobj = zlib.compressobj

    def counted(*args, **kwargs):
        nonlocal compressions
        compressions += 1
        return compressobj(*args, **kwargs)

    monkeypatch.setattr(zlib, "compressobj", counted)
    pdf = pdf_of(document)
    monkeypatch.undo()

    reader = PdfReader(io.BytesIO(pdf))
    streams = [number for number in reader.xref[0] if isinstance(reader.get_object(number), StreamObject)]
    for number in streams:
        reader.get_object(number).get_data()  # every stream decompresses
    assert len(streams) >= 8  # the page, two fonts, the e-invoice, its colour profile, the XMP, ...
    # Once each; the object stream pydyf makes while writing, and the cross-reference stream
    # written after the hash, are not in this list: the object stream is read twice.
    assert compressions <= len(streams) + 3, (compressions, len(streams))
    identifier = reader.trailer["/ID"]
    assert len(identifier) == 2 and len(bytes(identifier[1].original_bytes)) == len(hashlib.md5().hexdigest())


def test_the_cycle_collector_rests_during_a_render_and_runs_once_after_it(database, gc_collections):
    """Python's collector ran six times over a page's live boxes and styles, a sixth of a render:
    it is paused for the render and runs once on what the render left; a collector the caller
    turned off stays off, and nothing the render made stays behind."""
    import gc

    from licensing.documents.pdf import html_to_pdf, render_html

    _account, invoice, _lines = billed_invoice(database)
    html = render_html(load_document(database, "invoice", invoice.id))  # the template before: only the render is counted
    html_to_pdf(html)  # warm: fonts, stylesheet
    gc.collect()
    gc_collections.clear()
    pdf = html_to_pdf(html)
    assert gc.isenabled()
    assert gc_collections == [0]  # the one at the end
    assert gc.get_count()[0] < 700  # the render's objects were looked at, not left for later
    gc.disable()
    try:
        gc_collections.clear()
        assert html_to_pdf(html)[:5] == b"%PDF-"
        assert not gc.isenabled() and gc_collections == []
    finally:
        gc.enable()
    assert "Meeting credits" in page_texts(pdf)[0]


def test_the_e_invoice_extracted_from_the_pdf_passes_the_en16931_xsd_and_schematron_and_matches_the_invoice(database):
    from licensing.documents.einvoice import check_xsd
    from tests.support.einvoice import read, schematron

    _account, invoice, _lines = billed_invoice(database)
    document = load_document(database, "invoice", invoice.id)
    xml = attachments(pdf_of(document))["factur-x.xml"]

    check_xsd(xml)
    errors, _warnings = schematron(xml)
    assert errors == []
    said = read(xml)
    assert said["number"] == "INV-2027-000001"
    assert said["totals"] == ("260.00", "260.00", ("52.00", "EUR"), "312.00", "312.00")
    assert [line[1] for line in said["lines"]] == [line.description for line in document.lines]


def test_a_draft_invoice_pdf_says_draft_and_carries_no_e_invoice(database):
    _account, invoice, _lines = billed_invoice(database, approve=False)
    pdf = pdf_of(load_document(database, "invoice", invoice.id))
    [text] = page_texts(pdf)
    assert "Invoice DRAFT" in text and "Draft: not yet issued" in text
    assert attachments(pdf) == {}


def test_a_credit_note_pdf_names_the_invoice_it_credits_and_the_credits_taken_back(database):
    _account, invoice, lines = billed_invoice(database)
    pack_line = next(line for line in lines if line.credits is not None)
    moment = datetime(2027, 1, 18, 9, 0, tzinfo=UTC)
    with database.write() as session:
        note = create_credit_note(session, invoice_id=invoice.id, lines=[CreditRequest(pack_line.id, quantity=D("0.5"))],
                                  reason="Half a month too many", now=moment, actor="operator")
    with database.write() as session:
        approve_credit_note(session, note.id, now=moment, actor="operator")

    pdf = pdf_of(load_document(database, "credit_note", note.id))

    [text] = page_texts(pdf)
    assert "Credit note CN-2027-000001" in text
    assert "Credits invoice INV-2027-000001 of 16 Jan 2027" in text
    assert "Reason: Half a month too many" in text
    assert "5.00 credits taken back" in text
    assert "Total credited 60.00 EUR" in text
    assert list(attachments(pdf)) == ["factur-x.xml"]
    page_png(pdf, RENDERINGS / f"credit-note-{database.writer.dialect.name}.png")


# ---------------------------------------------------------------------------------------------
# Served over HTTP and on the command line
# ---------------------------------------------------------------------------------------------


def test_the_pdf_is_served_named_by_its_number(client, database):
    _account, invoice, _lines = billed_invoice(database)
    response = client.get(f"/api/v1/invoices/{invoice.id}.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="INV-2027-000001.pdf"'
    assert response.content.startswith(b"%PDF-")
    # the JSON of the same invoice is still at its own path
    assert client.get(f"/api/v1/invoices/{invoice.id}").json()["number"] == "INV-2027-000001"


def test_the_xml_alone_is_served_for_approved_invoices_only(client, database):
    _account, invoice, _lines = billed_invoice(database)
    response = client.get(f"/api/v1/invoices/{invoice.id}.xml")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert b"<ram:ID>INV-2027-000001</ram:ID>" in response.content or b"INV-2027-000001" in response.content
    _account, draft, _lines = billed_invoice(database, approve=False)
    refused = client.get(f"/api/v1/invoices/{draft.id}.xml")
    assert refused.status_code == 409 and refused.json()["code"] == "invoice_not_draft"


def test_document_routes_refuse_unknown_ids_and_the_bookings_role(client, database):
    _account, invoice, _lines = billed_invoice(database)
    assert client.get("/api/v1/invoices/999999.pdf").status_code == 404
    assert client.get("/api/v1/invoices/nope.xml").status_code == 404
    assert client.get("/api/v1/credit-notes/999999.pdf").status_code == 404
    assert client.as_role("bookings").get(f"/api/v1/invoices/{invoice.id}.pdf").status_code == 403
    assert client.as_role(None).get(f"/api/v1/invoices/{invoice.id}.pdf").status_code == 401
    assert client.as_role("read").get(f"/api/v1/invoices/{invoice.id}.pdf").status_code == 200


def test_licensing_invoice_pdf_writes_the_file(database, database_url, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from licensing.cli import app
    from licensing.config import get_settings

    billed_invoice(database)
    monkeypatch.setenv("LICENSING_DATABASE_URL", database_url)
    get_settings.cache_clear()
    target = tmp_path / "january.pdf"
    result = CliRunner().invoke(app, ["invoice", "pdf", "INV-2027-000001", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"%PDF-")
    unknown = CliRunner().invoke(app, ["invoice", "pdf", "INV-2027-999999"])
    assert unknown.exit_code == 2


def test_a_pdf_over_http_under_a_frozen_clock(client, database):
    """Documents do not read the clock: a request at a frozen moment renders the same."""
    _account, invoice, _lines = billed_invoice(database)
    assert client.get("/api/v1/no-such-resource").status_code == 404
    with freeze_time("2027-02-01T10:00:00Z"):
        response = client.get(f"/api/v1/invoices/{invoice.id}.pdf")
    assert response.status_code == 200


def test_the_operator_logo_from_the_settings_is_the_one_file_outside_the_assets_the_renderer_reads(database, set_operator_setting, tmp_path):
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect width="120" height="40" fill="#1f2937"/></svg>')
    set_operator_setting("operator_logo", str(logo))
    _account, invoice, _lines = billed_invoice(database)
    fetcher = AssetFetcher()

    pdf = render_pdf(load_document(database, "invoice", invoice.id), fetcher=fetcher)

    assert pdf.startswith(b"%PDF-")
    assert logo.as_uri() in fetcher.requested
    assert fetcher.refused == []
