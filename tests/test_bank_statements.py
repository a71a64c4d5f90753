"""Bank statements (camt.053) imported through the use case, over HTTP and by the command line:
entries matched by RF reference, then by invoice number in the remittance text; unmatched
entries kept; every entry recorded once however often its statement is imported; a bad file
records nothing (each on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlmodel import select

from licensing.config import get_settings
from licensing.invoicing.models import Invoice, Payment, StatementEntry
from licensing.invoicing.payments import unapplied_cash
from licensing.invoicing.references import invoice_reference
from licensing.invoicing.statements import InvalidStatement, import_statement
from tests import factories
from tests.support.over_http import at, refused_with, routes_resolved_before_the_clock_is_frozen  # noqa: F401 - fixture
from tests.support.use_cases import ACTOR, bill_and_approve, instant

D = Decimal
IMPORTED = instant("2027-01-06 08:00")
OPERATOR_IBAN = "FR1420041010050500013M02606"


def camt053(*entries: str, statement_id: str = "STMT-2027-01-05", namespace: str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{namespace}">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>MSG-{statement_id}</MsgId><CreDtTm>2027-01-05T18:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>{statement_id}</Id><CreDtTm>2027-01-05T18:00:00</CreDtTm>
      <Acct><Id><IBAN>{OPERATOR_IBAN}</IBAN></Id></Acct>
      {"".join(entries)}
    </Stmt>
  </BkToCstmrStmt>
</Document>""".encode()


def entry(amount: str, *, bank_reference: str, reference: str | None = None, text: str | None = None, credit: bool = True,
          status: str = "BOOK", currency: str = "EUR", booked: str = "2027-01-05", debtor: str = "St. Mary's Hospital") -> str:
    remittance = (f"<Strd><CdtrRefInf><Ref>{reference}</Ref></CdtrRefInf></Strd>" if reference else "") + (f"<Ustrd>{text}</Ustrd>" if text else "")
    return f"""
      <Ntry>
        <Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>{"CRDT" if credit else "DBIT"}</CdtDbtInd><Sts>{status}</Sts>
        <BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{booked}</Dt></ValDt>
        <AcctSvcrRef>{bank_reference}</AcctSvcrRef>
        <NtryDtls><TxDtls><RltdPties><Dbtr><Nm>{debtor}</Nm></Dbtr></RltdPties><RmtInf>{remittance}</RmtInf></TxDtls></NtryDtls>
      </Ntry>"""


def three_invoices(database) -> list[Invoice]:
    """INV-2027-000001 .. 000003, each 372.00 EUR, approved on Jan 1."""
    desk = factories.plain_service(database)
    invoices = []
    for index in range(3):
        account = factories.account(database, name=f"Member {index + 1}")
        licence = factories.licence(database, account.id, date(2027, 1, 1))
        factories.service(database, licence.id, desk.id, from_date=date(2027, 1, 1))
        invoices.append(bill_and_approve(database, licence.id, date(2027, 1, 1), instant("2027-01-01 09:00")))
    return invoices


def statement_of(invoices: list[Invoice]) -> bytes:
    first, second, _third = invoices
    return camt053(
        entry("372.00", bank_reference="B1", reference=invoice_reference(first.number)),  # by RF reference
        entry("100.00", bank_reference="B2", text=f"Rent January {second.number.replace('-', '')} thank you"),  # by number in the text
        entry("55.00", bank_reference="B3", text="Coffee club"),  # names nothing
        entry("999.00", bank_reference="B4", reference=invoice_reference(first.number), credit=False),  # a debit: not money in
        entry("10.00", bank_reference="B5", reference=invoice_reference(first.number), status="PDNG"),  # pending: not yet
    )


def imported(database, content: bytes):
    with database.write() as session:
        return import_statement(session, content, now=IMPORTED, actor=ACTOR)


def state(database) -> tuple:
    with database.read() as session:
        payments = [(p.invoice_id, p.amount, p.method, p.received_at) for p in session.exec(select(Payment).order_by(Payment.id))]
        entries = [(e.status, e.amount, e.invoice_id) for e in session.exec(select(StatementEntry).order_by(StatementEntry.id))]
        paid = [(i.number, i.status, i.amount_paid) for i in session.exec(select(Invoice).order_by(Invoice.id))]
    return payments, entries, paid


def test_a_statement_with_matched_unmatched_and_duplicate_entries_imported_twice(database):
    invoices = three_invoices(database)
    first, second, _third = invoices
    content = statement_of(invoices)

    result = imported(database, content)
    assert ([row.invoice_id for row in result.matched], len(result.unmatched), result.already_imported) == ([first.id, second.id], 1, 0)
    assert result.unmatched[0].remittance == "Coffee club"
    assert result.unmatched[0].reason == "no invoice named by the reference or the remittance text"
    once = state(database)
    payments, entries, paid = once
    january_5 = instant("2027-01-05 00:00")  # the booking date, at 00:00 in the operator's zone (UTC here)
    assert payments == [(first.id, D("372.0000"), "bank_transfer", january_5), (second.id, D("100.0000"), "bank_transfer", january_5)]
    assert entries == [("matched", D("372.0000"), first.id), ("matched", D("100.0000"), second.id), ("unmatched", D("55.0000"), None)]
    assert paid == [
        ("INV-2027-000001", "paid", D("372.0000")), ("INV-2027-000002", "approved", D("100.0000")), ("INV-2027-000003", "approved", D("0")),
    ]

    again = imported(database, content)
    assert (again.matched, again.unmatched, again.already_imported) == ([], [], 3)
    # the next day's statement repeats one entry and brings a new one
    next_day = camt053(
        entry("100.00", bank_reference="B2", text=f"Rent January {second.number}"),
        entry("272.00", bank_reference="B6", text=f"rest of {second.number.lower()}"),
        statement_id="STMT-2027-01-06",
    )
    later = imported(database, next_day)
    assert ([row.invoice_id for row in later.matched], later.already_imported) == ([second.id], 1)
    assert state(database)[2][1] == ("INV-2027-000002", "paid", D("372.0000"))


def test_an_entry_for_an_invoice_that_cannot_take_it_is_kept_unmatched_with_the_reason(database):
    first, _second, third = three_invoices(database)
    result = imported(database, camt053(
        entry("372.00", bank_reference="C1", reference=invoice_reference(first.number), currency="GBP"),
        entry("1.005", bank_reference="C2", text=third.number),
    ))
    assert [(row.invoice_id, row.reason) for row in result.unmatched] == [
        (first.id, "invoice INV-2027-000001 is in EUR, the entry in GBP"), (third.id, "the amount 1.005 is not one EUR can hold"),
    ]
    assert state(database)[0] == []


def test_an_overpaying_entry_is_recorded_and_the_rest_kept_as_unapplied_cash(database):
    first, _second, _third = three_invoices(database)
    result = imported(database, camt053(entry("400.00", bank_reference="D1", reference=invoice_reference(first.number))))
    assert len(result.matched) == 1
    with database.read() as session:
        assert unapplied_cash(session, first.account_id) == D("28.0000")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"<Document><unclosed></Document>", "not well-formed XML"),
        (b"not xml at all", "not well-formed XML"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"><CstmrCdtTrfInitn/></Document>', "not a camt.053 statement"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"/>', "holds no statement"),
        (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>', "not a camt.053 statement"),
    ],
    ids=["malformed", "not-xml", "another-message", "no-statement", "external-entity"],
)
def test_a_file_that_is_not_a_camt053_statement_is_refused_and_records_nothing(database, content, message):
    three_invoices(database)
    before = state(database)
    with pytest.raises(InvalidStatement, match=message):
        imported(database, content)
    assert state(database) == before


def test_a_statement_is_imported_whole_or_not_at_all(database):
    invoices = three_invoices(database)
    broken = camt053(
        entry("372.00", bank_reference="E1", reference=invoice_reference(invoices[0].number)),
        entry("100.00", bank_reference="E2", booked="not-a-date"),
    )
    before = state(database)
    with pytest.raises(InvalidStatement, match="no booking date"):
        imported(database, broken)
    assert state(database) == before


call, created = at("2027-01-06T08:00:00Z")


def test_importing_over_http_and_listing_what_is_left(client, database):
    invoices = three_invoices(database)
    xml = {"Content-Type": "application/xml"}

    response = call(client, "POST", "/api/v1/bank-statements", content=statement_of(invoices), headers=xml)
    assert response.status_code == 200, response.text
    body = response.json()
    assert ([row["invoice_id"] for row in body["matched"]], [row["remittance"] for row in body["unmatched"]], body["already_imported"]) == (
        [str(invoices[0].id), str(invoices[1].id)], ["Coffee club"], 0
    )
    assert body["matched"][0]["reference"] == invoice_reference(invoices[0].number)
    assert body["matched"][0]["debtor_name"] == "St. Mary's Hospital"
    again = call(client, "POST", "/api/v1/bank-statements", content=statement_of(invoices), headers=xml).json()
    assert (again["matched"], again["unmatched"], again["already_imported"]) == ([], [], 3)

    unmatched = call(client, "GET", "/api/v1/bank-statement-entries", params={"status": "unmatched"}).json()["items"]
    assert [(row["amount"], row["status"], row["booked_on"]) for row in unmatched] == [("55.00", "unmatched", "2027-01-05")]
    refused_with(call(client, "POST", "/api/v1/bank-statements", content=b"<nope/>", headers=xml), 422, "invalid_statement")
    assert client.as_role("bookings").post("/api/v1/bank-statements", content=statement_of(invoices), headers=xml).status_code == 403


def test_the_command_line_imports_a_statement_file(database, tmp_path, monkeypatch, capsys):
    from licensing import cli

    invoices = three_invoices(database)
    path = tmp_path / "statement.xml"
    path.write_bytes(statement_of(invoices))
    monkeypatch.setenv("LICENSING_DATABASE_URL", database.url)
    get_settings.cache_clear()

    assert cli.run(["payments", "import", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: 2 matched, 1 unmatched, 0 already imported" in out
    assert "unmatched\t2027-01-05\t55.00 EUR\tCoffee club\tno invoice named" in out
    assert cli.run(["payments", "import", str(path)]) == 0
    assert f"{path}: 0 matched, 0 unmatched, 3 already imported" in capsys.readouterr().out

    path.write_bytes(b"<nope/>")
    assert cli.run(["payments", "import", str(path)]) == 2
    assert "nothing was recorded" in capsys.readouterr().err
