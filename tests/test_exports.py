"""The export formats of the journal, from entries built by hand (no database).

The month of January 2027 on the skr03 chart: an invoice with a services line and a credit pack
at 19 %, a consumption, a payment with 43.00 beyond the invoice, a credit note and an expiry.
Its DATEV file is compared byte for byte with ``tests/data/exports/datev-2027-01.csv``, written
and checked by hand.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data

from licensing.books.chart import PRESETS, Chart
from licensing.books.exports import FORMATS, ExportOptions, export
from licensing.books.views import EntryView, PostingView

DATA = Path(__file__).parent / "data" / "exports"
SKR03 = PRESETS["skr03"]
BEAN_CHECK = Path(sys.executable).parent / "bean-check"


def posting(role: str, debit: str = "0.00", credit: str = "0.00", rate: str | None = None, chart: Chart = SKR03) -> PostingView:
    tax_rate = None if rate is None else Decimal(rate)
    account = chart.account(role, tax_rate)
    return PostingView(role, account.code, account.name, Decimal(debit), Decimal(credit), "EUR", tax_rate)


def entry(
    entry_id: int, day: int, event: str, source: str, description: str, postings: list[PostingView],
    document: str | None = None, member: str | None = "Jörg Müller",
) -> EntryView:
    source_type, source_id = source.split(":")
    return EntryView(entry_id, date(2027, 1, day), "EUR", event, source_type, source_id, description, 7, member, document, tuple(postings))


MONTH = [
    entry(101, 5, "invoice_approved", "invoice:42", "Rechnung RE-2027-0001 für Jörg Müller", [
        posting("receivables", debit="357.00"),
        posting("services_revenue", credit="99.99", rate="19.00"),
        posting("deferred_credit_revenue", credit="200.01", rate="19.00"),
        posting("vat_payable", credit="57.00", rate="19.00"),
    ], document="RE-2027-0001"),
    entry(102, 12, "credits_consumed", "consumption:31", "Buchung Besprechungsraum Łódź,\n2 Stunden", [
        posting("deferred_credit_revenue", debit="50.00"),
        posting("credits_used_revenue", credit="50.00"),
    ]),
    entry(103, 20, "payment_received", "payment:7", 'Zahlung "Überweisung" zu RE-2027-0001', [
        posting("bank", debit="400.00"),
        posting("receivables", credit="357.00"),
        posting("unapplied_cash", credit="43.00"),
    ], document="RE-2027-0001"),
    entry(104, 25, "credit_note_approved", "credit_note:5", "Gutschrift GS-2027-0001 zu RE-2027-0001", [
        posting("deferred_credit_revenue", debit="30.00", rate="19.00"),
        posting("credit_note_allowances", debit="20.00", rate="19.00"),
        posting("vat_payable", debit="9.50", rate="19.00"),
        posting("receivables", credit="59.50"),
    ], document="GS-2027-0001"),
    entry(105, 31, "credits_expired", "grant:12", "Verfall nicht genutzter Guthaben aus dem Paket Zehnerkarte zum Monatsende Januar", [
        posting("deferred_credit_revenue", debit="20.00"),
        posting("breakage_revenue", credit="20.00"),
    ], member=None),
]
OPTIONS = ExportOptions(
    start=date(2027, 1, 1), end=date(2027, 1, 31), chart=SKR03, operator_name="Coworking Köln",
    created_at=datetime(2027, 2, 1, 9, 30, 15, 123000),
)


def rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def sums_per_journal(found: list[dict[str, str]], journal: str, debit, credit) -> dict[str, tuple[Decimal, Decimal]]:
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in found:
        totals[row[journal]][0] += debit(row)
        totals[row[journal]][1] += credit(row)
    return {key: (debits, credits) for key, (debits, credits) in totals.items()}


def test_the_datev_file_of_the_month_is_the_one_checked_by_hand():
    made = export("datev", MONTH, OPTIONS)

    assert made.content == (DATA / "datev-2027-01.csv").read_bytes()
    assert made.filename == "EXTF_Buchungsstapel_20270101_20270131.csv"
    assert made.media_type == "text/csv; charset=windows-1252"


def test_datev_writes_vat_of_a_rate_without_a_tax_key_as_a_line_of_its_own():
    invoice = entry(201, 8, "invoice_approved", "invoice:43", "Rechnung zu 16 %", [
        posting("receivables", debit="116.00"),
        posting("services_revenue", credit="100.00", rate="16.00"),
        posting("vat_payable", credit="16.00", rate="16.00"),
    ], document="RE-2027-0002")

    lines = export("datev", [invoice], OPTIONS).content.decode("cp1252").split("\r\n")

    assert [line.split(";")[:10] for line in lines[2:-1]] == [
        ["100,00", '"S"', '"EUR"', "", "", "", "1400", "8400", '""', "0801"],
        ["16,00", '"S"', '"EUR"', "", "", "", "1400", "1770", '""', "0801"],  # 1770: skr03 has no account for 16 %
    ]


def test_datev_refuses_a_range_across_two_years_since_a_belegdatum_has_no_year():
    with pytest.raises(ValueError, match="one fiscal year"):
        export("datev", MONTH, ExportOptions(start=date(2026, 12, 1), end=date(2027, 1, 31), chart=SKR03))


def test_datev_takes_the_fiscal_year_start_and_the_creation_stamp_from_the_options():
    options = ExportOptions(
        start=date(2027, 1, 1), end=date(2027, 1, 31), chart=PRESETS["skr04"], datev_consultant="29098", datev_client="55003",
        fiscal_year_start=date(2026, 7, 1), account_length=5, created_at=datetime(2027, 2, 3, 4, 5, 6, 7000),
    )

    header = export("datev", [], options).content.decode("cp1252").split("\r\n")[0].split(";")

    assert header[5] == "20270203040506007"
    assert header[10:16] == ["29098", "55003", "20260701", "5", "20270101", "20270131"]
    assert header[26] == '"04"'


def test_the_csv_has_one_row_per_posting_with_plain_amounts():
    made = export("csv", MONTH, OPTIONS)
    found = rows(made.content)

    assert made.filename == "journal-2027-01-01-2027-01-31.csv"
    assert list(found[0]) == [
        "entry_id", "date", "document", "event", "source_type", "source_id", "description",
        "account", "account_name", "role", "debit", "credit", "currency", "tax_rate",
    ]
    assert len(found) == sum(len(e.postings) for e in MONTH)
    assert found[1] == {
        "entry_id": "101", "date": "2027-01-05", "document": "RE-2027-0001", "event": "invoice_approved", "source_type": "invoice",
        "source_id": "42", "description": "Rechnung RE-2027-0001 für Jörg Müller", "account": "8400", "account_name": "Erlöse 19 % USt",
        "role": "services_revenue", "debit": "0.00", "credit": "99.99", "currency": "EUR", "tax_rate": "19.00",
    }
    assert found[4]["description"] == "Buchung Besprechungsraum Łódź,\n2 Stunden"  # the csv module quotes the newline
    for debits, credits in sums_per_journal(found, "entry_id", lambda r: Decimal(r["debit"]), lambda r: Decimal(r["credit"])).values():
        assert debits == credits


def test_xero_has_one_manual_journal_per_entry_with_signed_tax_exempt_lines():
    made = export("xero", MONTH, OPTIONS)
    found = rows(made.content)

    assert made.content.startswith(
        b"*Narration,*Date,Description,*AccountCode,*TaxRate,*Amount,TrackingName1,TrackingOption1,TrackingName2,TrackingOption2\r\n"
    )
    assert [(r["*Narration"], r["*Date"], r["*AccountCode"], r["*Amount"]) for r in found[:4]] == [
        ("Journal entry 101 (RE-2027-0001)", "05/01/2027", "1400", "357.00"),
        ("Journal entry 101 (RE-2027-0001)", "05/01/2027", "8400", "-99.99"),
        ("Journal entry 101 (RE-2027-0001)", "05/01/2027", "0990", "-200.01"),
        ("Journal entry 101 (RE-2027-0001)", "05/01/2027", "1776", "-57.00"),
    ]
    assert found[4]["*Narration"] == "Journal entry 102 (consumption:31)"
    assert found[4]["Description"] == "Buchung Besprechungsraum Łódź, 2 Stunden"
    assert {r["*TaxRate"] for r in found} == {"Tax Exempt"}
    balances = sums_per_journal(found, "*Narration", lambda r: Decimal(r["*Amount"]), lambda r: Decimal(0))
    assert len(balances) == len(MONTH)
    assert all(total == 0 for total, _ in balances.values())


def test_quickbooks_has_one_journal_number_per_entry_with_debits_and_credits():
    made = export("quickbooks", MONTH, OPTIONS)
    found = rows(made.content)

    assert made.content.startswith(b"Journal No,Journal Date,Currency,Memo,Account Name,Debits,Credits,Description,Name\r\n")
    assert found[7] == {
        "Journal No": "103", "Journal Date": "01/20/2027", "Currency": "EUR", "Memo": "Journal entry 103 (RE-2027-0001)",
        "Account Name": "Forderungen aus Lieferungen und Leistungen", "Debits": "", "Credits": "357.00",
        "Description": 'Zahlung "Überweisung" zu RE-2027-0001', "Name": "Jörg Müller",
    }
    balances = sums_per_journal(found, "Journal No", lambda r: Decimal(r["Debits"] or 0), lambda r: Decimal(r["Credits"] or 0))
    assert sorted(balances) == ["101", "102", "103", "104", "105"]
    assert all(debits == credits for debits, credits in balances.values())


@pytest.mark.parametrize("format", ["csv", "xero", "quickbooks"])
def test_a_description_that_would_be_a_formula_is_neutralised(format):
    attack = entry(301, 9, "credits_consumed", "consumption:32", '=HYPERLINK("http://evil.example","x")', [
        posting("deferred_credit_revenue", debit="1.00"),
        posting("credits_used_revenue", credit="1.00"),
    ], member="@SUM(A1)")

    found = rows(export(format, [attack], OPTIONS).content)

    descriptions = {r.get("description") or r.get("Description") for r in found}
    assert descriptions == {'\'=HYPERLINK("http://evil.example","x")'}
    if format == "quickbooks":
        assert {r["Name"] for r in found} == {"'@SUM(A1)"}
    amounts = [r.get("*Amount") for r in found]
    assert amounts in ([None, None], ["1.00", "-1.00"])  # a negative amount stays a number


def beancount_ledger(tmp_path: Path, entries: list[EntryView]) -> Path:
    path = tmp_path / "journal.beancount"
    path.write_bytes(export("beancount", entries, OPTIONS).content)
    return path


def test_bean_check_accepts_the_beancount_export_and_its_balances_are_the_trial_balance(tmp_path):
    tricky = entry(106, 31, "credits_consumed", "consumption:33", 'Raum "Süd" \\ Köln\nzweite Zeile — 東京', [
        posting("deferred_credit_revenue", debit="12.50"),
        posting("credits_used_revenue", credit="12.50"),
    ], member='Zoë "die Chefin" \\ GmbH')
    entries = [*MONTH, tricky]
    path = beancount_ledger(tmp_path, entries)

    checked = subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True, check=False)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")

    loaded, errors, options = loader.load_file(str(path))
    assert errors == []
    assert options["title"] == "Coworking Köln journal 2027-01-01 to 2027-01-31"
    assert options["operating_currency"] == ["EUR"]
    transactions = [e for e in loaded if isinstance(e, data.Transaction)]
    assert (transactions[-1].payee, transactions[-1].narration) == ('Zoë "die Chefin" \\ GmbH', 'Raum "Süd" \\ Köln\nzweite Zeile — 東京')
    assert transactions[0].meta["entry"] == "101"
    assert transactions[0].meta["source"] == "invoice:42"
    assert transactions[0].meta["document"] == "RE-2027-0001"
    assert "Liabilities:0990-Passive-Rechnungsabgrenzung-Guthaben" in {p.account for t in transactions for p in t.postings}

    balances: dict[str, Decimal] = defaultdict(Decimal)
    for transaction in transactions:
        for leg in transaction.postings:
            balances[leg.account.split(":")[1].split("-")[0]] += leg.units.number
    trial_balance: dict[str, Decimal] = defaultdict(Decimal)
    for made in entries:
        for leg in made.postings:
            trial_balance[leg.account] += leg.debit - leg.credit
    assert balances == trial_balance
    assert balances["1400"] == Decimal("-59.50")  # 357.00 invoiced, 357.00 paid, 59.50 credited


def test_beancount_names_two_codes_apart_even_when_they_read_alike(tmp_path):
    def leg(code: str, debit: str, credit: str) -> PostingView:
        return PostingView("bank", code, "Bank", Decimal(debit), Decimal(credit), "EUR")

    transfer = entry(401, 3, "transfer", "adjustment:1", "Umbuchung", [leg("14.00", "5.00", "0.00"), leg("14-00", "0.00", "5.00")])
    path = beancount_ledger(tmp_path, [transfer])

    assert subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, check=False).returncode == 0
    text = path.read_text(encoding="utf-8")
    assert "Assets:14X00002E00-Bank  5.00 EUR" in text
    assert "Assets:14X00002D00-Bank  -5.00 EUR" in text


def test_an_unknown_format_is_refused():
    assert FORMATS == ("csv", "datev", "xero", "quickbooks", "beancount")
    with pytest.raises(ValueError, match="unknown export format 'sage'"):
        export("sage", MONTH, OPTIONS)
