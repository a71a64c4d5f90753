"""Payment instructions on documents (issue 14): the operator's IBAN and BIC, the invoice's ISO
11649 reference and, for EUR, an EPC QR code that a real decoder (Debian's ``zbarimg``) reads back
into the EPC069-12 payload; a paid invoice says so. Real PDFs from the real renderer."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from decimal import Decimal
from xml.etree import ElementTree

import pytest
from pydantic import ValidationError

from licensing.config import Settings
from licensing.documents.model import epc_payload
from licensing.documents.service import load_document, pdf_of
from licensing.invoicing.payments import record_payment
from tests import factories
from tests.pdf_pages import page_png, page_texts
from tests.support.use_cases import ACTOR, bill_and_approve, instant

IBAN, BIC = "FR1420041010050500013M02606", "PSSTFRPPPAR"
JANUARY = instant("2027-01-01 09:00")
ZBAR = {"z": "http://zbar.sourceforge.net/2008/barcode"}
zbarimg = pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (Debian's zbar-tools) is not installed: scripts/test installs it")


def invoice_pdf(database, currency: str = "EUR", pay: str | None = None) -> tuple[object, bytes]:
    account = factories.account(database, currency=currency)
    desk = factories.plain_service(database, currency=currency)
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    factories.service(database, licence.id, desk.id, from_date=date(2027, 1, 1))
    invoice = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    if pay:
        with database.write() as session:
            record_payment(session, invoice.id, amount=Decimal(pay), received_at=JANUARY, now=JANUARY, actor=ACTOR)
    return invoice, pdf_of(load_document(database, "invoice", invoice.id))


def qr_codes(pdf: bytes, tmp_path) -> list[str]:
    """Every QR code zbarimg finds on page 1, rendered at 200 dpi (its XML output: a payload may
    hold empty lines)."""
    png = page_png(pdf, tmp_path / "page.png", resolution=200)
    result = subprocess.run(["zbarimg", "--xml", "-q", str(png)], capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 4), result.stderr  # 4: no code found
    if not result.stdout.strip():
        return []
    found = ElementTree.fromstring(result.stdout)
    return [symbol.findtext("z:data", namespaces=ZBAR) for symbol in found.iter(f"{{{ZBAR['z']}}}symbol") if symbol.get("type") == "QR-Code"]


def one_line(text: str) -> str:
    return " ".join(text.split())


@zbarimg
def test_an_eur_invoice_carries_bank_details_its_reference_and_a_qr_code_a_bank_app_reads(database, set_operator_setting, tmp_path):
    set_operator_setting("operator_iban", "FR14 2004 1010 0505 0001 3M02 606")  # as printed: stored compact
    set_operator_setting("operator_bic", BIC)
    invoice, pdf = invoice_pdf(database)

    text = one_line(page_texts(pdf)[0])
    assert "How to pay" in text
    assert "IBAN FR14 2004 1010 0505 0001 3M02 606" in text
    assert f"BIC {BIC}" in text
    assert "Reference RF44 INV2 0270 0000 1" in text
    (code,) = qr_codes(pdf, tmp_path)
    assert code.split("\n") == [
        "BCD", "002", "1", "SCT", BIC, "Licensing Demo Workspace", IBAN, "EUR372.00", "", "RF44INV2027000001",
    ]
    assert invoice.number == "INV-2027-000001"


@zbarimg
def test_the_qr_code_asks_for_what_is_left_and_a_paid_invoice_says_paid_without_one(database, set_operator_setting, tmp_path):
    set_operator_setting("operator_iban", IBAN)
    _invoice, partly = invoice_pdf(database, pay="100.00")
    (code,) = qr_codes(partly, tmp_path)
    assert "EUR272.00" in code.split("\n")

    _invoice, paid = invoice_pdf(database, pay="372.00")
    text = one_line(page_texts(paid)[0])
    assert "Paid Nothing is left to pay on this invoice." in text
    assert "How to pay" not in text and "Payment due within" not in text
    assert qr_codes(paid, tmp_path) == []


@zbarimg
def test_other_currencies_and_operators_without_an_iban_get_the_reference_but_no_qr_code(database, set_operator_setting, tmp_path):
    set_operator_setting("operator_iban", IBAN)
    _invoice, pounds = invoice_pdf(database, currency="GBP")
    assert "IBAN FR14 2004" in one_line(page_texts(pounds)[0])
    assert qr_codes(pounds, tmp_path) == []

    set_operator_setting("operator_iban", "")
    invoice, no_bank = invoice_pdf(database)
    text = one_line(page_texts(no_bank)[0])
    assert "IBAN" not in text
    assert "Please quote the payment reference RF" in text
    assert qr_codes(no_bank, tmp_path) == []
    assert invoice.id


def test_an_issued_invoice_keeps_the_bank_details_it_was_issued_with(database, set_operator_setting):
    set_operator_setting("operator_iban", IBAN)
    invoice, _pdf = invoice_pdf(database)
    set_operator_setting("operator_iban", "DE89370400440532013000")

    document = load_document(database, "invoice", invoice.id)
    assert document.seller.iban == IBAN
    assert "FR14 2004" in one_line(page_texts(pdf_of(document))[0])


def test_bank_settings_are_checked(monkeypatch):
    for name, value in (("LICENSING_OPERATOR_IBAN", "FR1420041010050500013M02607"), ("LICENSING_OPERATOR_BIC", "NOTABIC")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError, match="valid"):
            Settings()
        monkeypatch.delenv(name)
    monkeypatch.setenv("LICENSING_OPERATOR_IBAN", "de89 3704 0044 0532 0130 00")
    assert Settings().operator_iban == "DE89370400440532013000"


def test_the_epc_payload_follows_epc069_12():
    payload = epc_payload(name="Acme  Coworking\nLtd", iban="DE89370400440532013000", bic=None, amount=Decimal("12.3"), reference="RF18539007547034")
    assert payload.split("\n") == ["BCD", "002", "1", "SCT", "", "Acme Coworking Ltd", "DE89370400440532013000", "EUR12.30", "", "RF18539007547034"]
    long_name = epc_payload(name="x" * 200, iban="DE89370400440532013000", bic=None, amount=Decimal(1), reference="RF18539007547034")
    assert len(long_name.split("\n")[5]) == 70
