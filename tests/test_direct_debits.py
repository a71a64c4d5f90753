"""SEPA direct debit (issue 14): mandates (IBAN checked, CORE or B2B, revocation, EUR accounts
only), a collection covering each approved, unpaid EUR invoice of an account with an active
mandate once, its pain.008 file valid against the ISO 20022 XSD and read back, and a returned
debit reversing its payment (each on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import xmlschema
from lxml import etree
from sqlmodel import select

from licensing.errors import CurrencyMismatch, ValidationFailed
from licensing.invoicing.direct_debits import (
    DirectDebitUnavailable,
    MandateRevoked,
    NothingToCollect,
    create_direct_debit,
    create_mandate,
    revoke_mandate,
)
from licensing.invoicing.models import DirectDebitItem, Invoice, Mandate
from licensing.invoicing.payments import record_payment, reverse_payment
from tests import factories
from tests.support.use_cases import ACTOR, bill_and_approve, instant

PAIN_008_XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.008.001.02.xsd"  # the ISO 20022 schema as published
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}
NOW = instant("2027-01-16 09:00")
DEBTOR_IBAN, OTHER_IBAN = "DE89370400440532013000", "FR7630006000011234567890189"


@pytest.fixture
def creditor(set_operator_setting):
    set_operator_setting("operator_iban", "FR1420041010050500013M02606")
    set_operator_setting("operator_bic", "PSSTFRPPPAR")
    set_operator_setting("operator_creditor_id", "FR72ZZZ123456")


def member(database, name: str, currency: str = "EUR"):
    account = factories.account(database, name=name, currency=currency)
    desk = factories.plain_service(database, currency=currency)
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 1, 31))
    factories.service(database, licence.id, desk.id, from_date=date(2027, 1, 1), to_date=date(2027, 1, 31))
    return account, bill_and_approve(database, licence.id, date(2027, 1, 1), instant("2027-01-01 09:00"))


def mandate(database, account_id, iban=DEBTOR_IBAN, **values):
    with database.write() as session:
        return create_mandate(session, account_id, iban=iban, signed_on=date(2026, 12, 1), now=NOW, **values)


def collect(database, day=date(2027, 1, 20), **values):
    with database.write() as session:
        return create_direct_debit(session, collection_date=day, now=NOW, actor=ACTOR, **values)


def invoice_states(database) -> list[tuple[str, str, Decimal]]:
    with database.read() as session:
        return [(i.number, i.status, i.amount_paid) for i in session.exec(select(Invoice).order_by(Invoice.id))]


def test_a_collection_covers_each_unpaid_invoice_with_a_mandate_once_in_a_valid_pain008(database, creditor):
    alpha, first = member(database, "Alpha GmbH")
    beta, second = member(database, "Beta SARL")
    _gamma, _third = member(database, "Gamma Ltd")  # no mandate
    delta, _fourth = member(database, "Delta BV")  # its mandate is revoked
    alpha_mandate = mandate(database, alpha.id, bic="COBADEFFXXX")
    beta_mandate = mandate(database, beta.id, iban=OTHER_IBAN, mandate_reference="BETA-2026-001")
    with database.write() as session:
        revoke_mandate(session, mandate(database, delta.id).id, now=NOW)
        record_payment(session, second.id, amount=Decimal("100.00"), received_at=NOW, now=NOW, actor=ACTOR)

    debit = collect(database)

    assert (debit.count, debit.total) == (2, Decimal("644.00"))
    xmlschema.XMLSchema(str(PAIN_008_XSD)).validate(debit.xml)  # raises when the file breaks the schema
    document = etree.fromstring(debit.xml.encode())
    assert document.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert document.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "644.00"
    payment_info = document.find("p:CstmrDrctDbtInitn/p:PmtInf", NS)
    assert payment_info.findtext("p:ReqdColltnDt", namespaces=NS) == "2027-01-20"
    assert payment_info.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == "FR1420041010050500013M02606"
    assert payment_info.findtext("p:PmtTpInf/p:LclInstrm/p:Cd", namespaces=NS) == "CORE"
    assert payment_info.findtext(".//p:CdtrSchmeId//p:Othr/p:Id", namespaces=NS) == "FR72ZZZ123456"
    transactions = [
        (
            tx.findtext("p:InstdAmt", namespaces=NS), tx.find("p:InstdAmt", NS).get("Ccy"), tx.findtext(".//p:MndtId", namespaces=NS),
            tx.findtext(".//p:DtOfSgntr", namespaces=NS), tx.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS),
            tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS), tx.findtext("p:RmtInf/p:Ustrd", namespaces=NS),
        )
        for tx in document.iterfind(".//p:DrctDbtTxInf", NS)
    ]
    assert transactions == [
        ("372.00", "EUR", alpha_mandate.mandate_reference, "2026-12-01", DEBTOR_IBAN, "INV-2027-000001", "Invoice INV-2027-000001"),
        ("272.00", "EUR", "BETA-2026-001", "2026-12-01", OTHER_IBAN, "INV-2027-000002", "Invoice INV-2027-000002"),
    ]
    assert alpha_mandate.mandate_reference == f"LIC-{alpha.id}-{alpha_mandate.id}"
    assert [state[:2] for state in invoice_states(database)] == [
        ("INV-2027-000001", "paid"), ("INV-2027-000002", "paid"), ("INV-2027-000003", "approved"), ("INV-2027-000004", "approved"),
    ]
    with pytest.raises(NothingToCollect):
        collect(database, date(2027, 1, 21))
    assert first.id and beta_mandate.id


def test_a_returned_debit_reverses_its_payment_and_the_invoice_is_not_collected_again(database, creditor):
    alpha, invoice = member(database, "Alpha GmbH")
    mandate(database, alpha.id)
    collect(database)
    with database.read() as session:
        (payment_id,) = [row.payment_id for row in session.exec(select(DirectDebitItem))]

    with database.write() as session:
        reverse_payment(session, payment_id, reason="returned debit (AM04: insufficient funds)", now=instant("2027-01-23 09:00"), actor=ACTOR)
    assert invoice_states(database) == [("INV-2027-000001", "approved", Decimal("0.0000"))]
    with pytest.raises(NothingToCollect):
        collect(database, date(2027, 1, 30))
    assert invoice.id


def test_refusals_write_nothing(database, set_operator_setting, creditor):
    alpha, _invoice = member(database, "Alpha GmbH")
    pounds, _pounds_invoice = member(database, "Pounds Ltd", currency="GBP")

    with pytest.raises(ValidationFailed, match="iban"):
        mandate(database, alpha.id, iban="DE89370400440532013001")
    with pytest.raises(ValidationFailed, match="bic"):
        mandate(database, alpha.id, bic="ABCD12XY")
    with pytest.raises(ValidationFailed, match="scheme"):
        mandate(database, alpha.id, scheme="COR1")
    with pytest.raises(CurrencyMismatch):
        mandate(database, pounds.id)
    with database.read() as session:
        assert session.exec(select(Mandate)).all() == []

    mandate(database, alpha.id)
    with pytest.raises(ValidationFailed, match="collection_date"):
        collect(database, date(2027, 1, 16))  # today
    with pytest.raises(NothingToCollect):
        collect(database, scheme="B2B")
    set_operator_setting("operator_creditor_id", "")
    with pytest.raises(DirectDebitUnavailable):
        collect(database)
    assert invoice_states(database)[0][1] == "approved"

    revoked = mandate(database, alpha.id)
    with database.write() as session:
        revoke_mandate(session, revoked.id, now=NOW)
    with pytest.raises(MandateRevoked), database.write() as session:
        revoke_mandate(session, revoked.id, now=NOW)


def test_mandates_and_a_collection_over_http(client, database, creditor):
    from tests.support.over_http import at, refused_with

    call, created = at("2027-01-16T09:00:00Z")
    alpha, invoice = member(database, "Alpha GmbH")
    pounds, _ = member(database, "Pounds Ltd", currency="GBP")

    made = created(client, f"/api/v1/accounts/{alpha.id}/mandates", {"iban": "DE89 3704 0044 0532 0130 00", "signed_on": "2026-12-01"})
    assert (made["iban"], made["bic"], made["scheme"], made["status"]) == (DEBTOR_IBAN, "COBADEFFXXX", "CORE", "active")
    bad_iban = {"iban": "DE00", "signed_on": "2026-12-01"}
    refused_with(call(client, "POST", f"/api/v1/accounts/{alpha.id}/mandates", json=bad_iban), 422, "validation_error")
    in_pounds = {"iban": DEBTOR_IBAN, "signed_on": "2026-12-01"}
    refused_with(call(client, "POST", f"/api/v1/accounts/{pounds.id}/mandates", json=in_pounds), 409, "currency_mismatch")
    assert [m["id"] for m in call(client, "GET", f"/api/v1/accounts/{alpha.id}/mandates").json()["items"]] == [made["id"]]

    debit = created(client, "/api/v1/direct-debits", {"collection_date": "2027-01-20"})
    assert (debit["count"], debit["total"], [item["invoice_id"] for item in debit["items"]]) == (1, "372.00", [str(invoice.id)])
    xml = call(client, "GET", f"/api/v1/direct-debits/{debit['id']}.xml")
    assert xml.headers["content-type"].startswith("application/xml")
    xmlschema.XMLSchema(str(PAIN_008_XSD)).validate(xml.text)
    assert call(client, "GET", f"/api/v1/direct-debits/{debit['id']}").json() == debit
    refused_with(call(client, "POST", "/api/v1/direct-debits", json={"collection_date": "2027-01-21"}), 409, "nothing_to_collect")

    revoked = call(client, "POST", f"/api/v1/mandates/{made['id']}/revoke")
    assert revoked.json()["status"] == "revoked"
    refused_with(call(client, "POST", f"/api/v1/mandates/{made['id']}/revoke"), 409, "mandate_revoked")
