"""The books (SPEC 11, API.md "The books"): what each event posts, the trial balance, the chart
of accounts, the lock date, the exports over HTTP and the command line, and the journal rebuilt
for a database made before it existed.

One small month of Acme Ltd (EUR, 20 % VAT, UTC), worked out by hand:

* Jan 1 00:00: January's invoice approved: dedicated desk 310.00 and a pack of 10 credits
  100.00 (valid in January): net 410.00, VAT 82.00, gross 492.00;
* Jan 10: 4 credits used (worth 40.00); Jan 12: 1 used, reversed on Jan 13 (10.00 each way);
* Jan 15: 500.00 received by bank transfer: 492.00 pays the invoice, 8.00 is unapplied cash;
* Jan 20: credit note of 100.00 of the desk line (120.00 with VAT), owed back;
* Feb 1 00:00: the 6 credits left expire (60.00 of breakage), recorded by the sweep at 01:00.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest
from sqlmodel import select

from licensing.books.journal import PeriodLocked
from licensing.books.models import JournalEntry, JournalPosting
from licensing.credits.expiry import sweep_expiries
from licensing.credits.models import LedgerEntry
from licensing.credits.revalue import revalue
from licensing.invoicing.credit_notes import CreditRequest
from licensing.invoicing.models import InvoiceLine, Payment
from licensing.invoicing.payments import record_payment, reverse_payment
from tests import factories
from tests.support.use_cases import ACTOR, bill_and_approve, instant
from tests.test_cli import cli  # noqa: F401 - the fixture
from tests.test_reports import consumed, credited, line_of, reversed_at, sell_top_up

D = Decimal
JOURNAL = "/api/v1/journal"


@pytest.fixture
def api(client):
    """The billing client (every route resolved by the ``client`` fixture)."""
    return client


def a_month_of_acme(database) -> dict:
    account = factories.account(database, name="Acme Ltd")
    desk = factories.plain_service(database, price="310.00", tax_rate="20")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00", tax_rate="20")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 1, 31))
    factories.service(database, licence.id, desk.id, from_date=date(2027, 1, 1), to_date=date(2027, 1, 31))
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 1, 31))
    invoice = bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    consumed(database, account.id, "4", instant("2027-01-10 10:00"))
    cancelled = consumed(database, account.id, "1", instant("2027-01-12 10:00"))
    reversed_at(database, cancelled, instant("2027-01-13 10:00"))
    with database.write() as session:
        payment = record_payment(
            session, invoice.id, amount=D("500.00"), received_at=instant("2027-01-15 09:00"), allow_overpayment=True,
            now=instant("2027-01-15 09:00"), actor=ACTOR,
        )
    with database.read() as session:
        desk_line = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.credits.is_(None))).one()
    credited(database, invoice.id, CreditRequest(desk_line.id, amount=D("100.00")), instant("2027-01-20 09:00"))
    assert sweep_expiries(database, now=instant("2027-02-01 01:00")) == 1
    return {"account_id": account.id, "invoice": invoice, "payment_id": payment.id, "consumption": cancelled}


def postings(entry: dict) -> list[tuple]:
    return [(p["account"], p["debit"], p["credit"]) for p in entry["postings"]]


def journal(api, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        response = api.get(JOURNAL, params=params | ({"cursor": cursor} if cursor else {}) | {"limit": 3})
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_a_bookings_journal_entry_is_written_with_its_other_rows_before_the_commit(database):
    """A booking posts its entry at the end of its own writes (on PostgreSQL in their pipeline,
    one round trip for all), not when the transaction commits; what it posts is the same."""
    from licensing.credits.consumption import consume

    account = factories.account(database, name="Acme Ltd")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00", tax_rate="20")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 1, 31))
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 1, 31))
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))

    with database.write() as session:
        consumption, _draws = consume(session, account.id, credits=D("4"), now=instant("2027-01-10 10:00"), actor=ACTOR)
        entry = session.exec(select(JournalEntry).where(JournalEntry.source_type == "consumption")).one()  # before the commit
        lines = session.exec(select(JournalPosting.role, JournalPosting.debit, JournalPosting.credit).where(JournalPosting.entry_id == entry.id)
                             .order_by(JournalPosting.id)).all()

    assert (entry.event, entry.source_id, entry.date) == ("credits_used", str(consumption.id), date(2027, 1, 10))
    # 4 of 10 credits bought for 100.00: 40.00 leaves deferred revenue for the revenue of credits used.
    assert lines == [("deferred_credit_revenue", D("40.00"), D("0")), ("credits_used_revenue", D("0"), D("40.00"))]
    with database.read() as session:
        assert len(session.exec(select(JournalEntry).where(JournalEntry.source_type == "consumption")).all()) == 1  # posted once


def test_each_event_of_a_month_posts_one_balanced_entry_to_the_plain_chart(database, api):
    books = a_month_of_acme(database)
    invoice = books["invoice"]

    entries = journal(api, **{"from": "2027-01-01", "to": "2027-02-28"})

    assert [(e["date"], e["event"], e["source"]["type"], e["document"], postings(e)) for e in entries] == [
        ("2027-01-01", "invoice_approved", "invoice", invoice.number, [
            ("1100", "492.00", "0.00"), ("4000", "0.00", "310.00"), ("2400", "0.00", "100.00"), ("2200", "0.00", "82.00"),
        ]),
        ("2027-01-10", "credits_used", "consumption", None, [("2400", "40.00", "0.00"), ("4100", "0.00", "40.00")]),
        ("2027-01-12", "credits_used", "consumption", None, [("2400", "10.00", "0.00"), ("4100", "0.00", "10.00")]),
        ("2027-01-13", "credits_returned", "consumption", None, [("2400", "0.00", "10.00"), ("4100", "10.00", "0.00")]),
        ("2027-01-15", "payment_received", "payment", invoice.number, [
            ("1100", "0.00", "492.00"), ("1200", "500.00", "0.00"), ("2150", "0.00", "8.00"),
        ]),
        ("2027-01-20", "credit_note_approved", "credit_note", "CN-2027-000001", [
            ("4000", "100.00", "0.00"), ("2200", "20.00", "0.00"), ("1100", "0.00", "120.00"),
        ]),
        ("2027-02-01", "credits_expired", "grant", None, [("2400", "60.00", "0.00"), ("4200", "0.00", "60.00")]),
    ]
    assert {e["currency"] for e in entries} == {"EUR"}
    assert all(e["account_id"] == str(books["account_id"]) for e in entries)
    assert [p["tax_rate"] for p in entries[0]["postings"]] == [None, "20.00", "20.00", "20.00"]
    # SKR03 maps VAT payable per rate: 19 % to 1776, other rates to 1770.
    # The range is inclusive and by the day the entry posts on.
    assert [e["event"] for e in journal(api, **{"from": "2027-02-01", "to": "2027-02-01"})] == ["credits_expired"]


def test_the_trial_balance_at_a_date_balances_and_closes_deferred_revenue_once_credits_expire(database, api):
    a_month_of_acme(database)

    january = api.get("/api/v1/reports/trial-balance", params={"as_of": "2027-01-31"}).json()
    february = api.get("/api/v1/reports/trial-balance", params={"as_of": "2027-02-28"}).json()

    assert january["as_of"] == "2027-01-31"
    assert [(line["account"], line["debit"], line["credit"]) for line in january["lines"]] == [
        ("1100", "0.00", "120.00"),  # owed back on the credit note
        ("1200", "500.00", "0.00"),
        ("2150", "0.00", "8.00"),
        ("2200", "0.00", "62.00"),
        ("2400", "0.00", "60.00"),  # 6 credits outstanding, worth 60.00: the liability report's figure
        ("4000", "0.00", "210.00"),
        ("4100", "0.00", "40.00"),
    ]
    assert january["totals"] == [{"currency": "EUR", "debit": "500.00", "credit": "500.00"}]
    liability = api.get("/api/v1/reports/liability", params={"as_of": "2027-01-31"}).json()
    assert liability["currencies"][0]["value"] == "60.00"
    assert [(line["account"], line["credit"]) for line in february["lines"] if line["account"] in ("2400", "4200")] == [("4200", "60.00")]


def test_the_chart_of_accounts_maps_roles_to_codes_and_relabels_the_whole_journal(database, api):
    a_month_of_acme(database)
    admin = api.as_role("admin")

    assert admin.get("/api/v1/settings/chart-of-accounts").json()["accounts"]["receivables"] == {"code": "1100", "name": "Accounts receivable"}
    response = admin.put("/api/v1/settings/chart-of-accounts", json={"preset": "skr03", "accounts": {"bank": {"code": "1210", "name": "Sparkasse"}}})
    assert response.status_code == 200, response.text
    assert response.json()["accounts"]["bank"] == {"code": "1210", "name": "Sparkasse"}

    [approval] = [e for e in journal(api, **{"from": "2027-01-01", "to": "2027-01-01"})]
    assert postings(approval) == [("1400", "492.00", "0.00"), ("8400", "0.00", "310.00"), ("0990", "0.00", "100.00"), ("1770", "0.00", "82.00")]
    [payment] = [e for e in journal(api, **{"from": "2027-01-15", "to": "2027-01-15"})]
    assert ("1210", "500.00", "0.00") in postings(payment)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"preset": "skr99"}, "preset"),
        ({"accounts": {"petty_cash": "1000"}}, "accounts.petty_cash"),
        ({"accounts": {"bank": ""}}, "accounts.bank"),
        ({"vat_payable": {"lots": "1776"}}, "vat_payable.lots"),
        ({"tax_keys": {"19.00": "nineteen"}}, "tax_keys.19.00"),
    ],
)
def test_a_chart_with_unknown_roles_or_bad_codes_is_refused_and_nothing_changes(database, api, body, field):
    admin = api.as_role("admin")
    response = admin.put("/api/v1/settings/chart-of-accounts", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert field in {error["field"] for error in response.json().get("errors", [])} | {"body"} or field.split(".")[0] == "preset"
    assert admin.get("/api/v1/settings/chart-of-accounts").json()["preset"] == "plain"


def test_the_books_settings_are_for_admins_only(database, api):
    for role in ("billing", "read", "bookings"):
        assert api.as_role(role).put("/api/v1/settings/lock-date", json={"lock_date": "2027-01-31"}).status_code == 403
        assert api.as_role(role).get("/api/v1/settings/chart-of-accounts").status_code == 403
    assert api.as_role(None).get("/api/v1/settings/lock-date").status_code == 401
    assert api.as_role("read").get(JOURNAL).status_code == 200


def lock(api, day: str | None) -> None:
    response = api.as_role("admin").put("/api/v1/settings/lock-date", json={"lock_date": day})
    assert response.status_code == 200, response.text
    assert response.json() == {"lock_date": day}


def test_nothing_posts_on_or_before_the_lock_date_and_a_late_correction_posts_on_the_day_it_is_made(database, api):
    account = factories.account(database, name="Late Ltd")
    week = factories.credit_pack(database, credits="5", lifetime="P7D", price="50.00")
    invoice = sell_top_up(database, account.id, week.id, instant("2027-01-13 09:00"))  # 5 credits, expiring 00:00 Jan 20
    forever = factories.credit_pack(database, credits="5", lifetime=None, price="50.00")
    sell_top_up(database, account.id, forever.id, instant("2027-01-13 09:00"))
    lock(api, "2027-01-31")
    assert api.as_role("admin").get("/api/v1/settings/lock-date").json() == {"lock_date": "2027-01-31"}
    posted = journal(api)

    # A payment received in the closed period: refused, nothing written.
    with pytest.raises(PeriodLocked) as refusal, database.write() as session:
        record_payment(session, invoice.id, amount=D("60.00"), received_at=instant("2027-01-25 09:00"), now=instant("2027-02-03 09:00"), actor=ACTOR)
    assert refusal.value.code == "period_locked" and refusal.value.extra == {"lock_date": "2027-01-31"}
    # Made on a closed day (a booking recorded on Jan 25 while the books are closed up to Jan 31): refused too.
    with pytest.raises(PeriodLocked):
        consumed(database, account.id, "1", instant("2027-01-25 10:00"))
    with database.read() as session:
        assert session.exec(select(Payment)).all() == []
        assert [entry.kind for entry in session.exec(select(LedgerEntry).order_by(LedgerEntry.id))] == ["grant", "grant"]
    assert journal(api) == posted

    # The expiry of Jan 20, recorded on Feb 3, posts on Feb 3: the closed books stay as exported.
    assert sweep_expiries(database, now=instant("2027-02-03 08:00")) == 1
    [expiry] = [entry for entry in journal(api) if entry["event"] == "credits_expired"]
    assert (expiry["date"], postings(expiry)) == ("2027-02-03", [("2400", "50.00", "0.00"), ("4200", "0.00", "50.00")])

    # Over HTTP: a problem with its code; received after the lock date: recorded.
    response = api.post(
        f"/api/v1/invoices/{invoice.id}/payments", json={"amount": "60.00", "received_at": "2027-01-31T23:00:00+00:00", "method": "bank_transfer"}
    )
    assert (response.status_code, response.json()["code"]) == (409, "period_locked")
    lock(api, None)
    response = api.post(
        f"/api/v1/invoices/{invoice.id}/payments", json={"amount": "60.00", "received_at": "2027-01-31T23:00:00+00:00", "method": "bank_transfer"}
    )
    assert response.status_code == 201, response.text


def test_a_lock_date_that_is_not_a_date_is_refused(database, api):
    response = api.as_role("admin").put("/api/v1/settings/lock-date", json={"lock_date": "31/01/2027"})
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")


def test_every_export_format_is_served_and_the_beancount_one_passes_bean_check(database, api, tmp_path):
    a_month_of_acme(database)
    span = {"from": "2027-01-01", "to": "2027-01-31"}

    served = {}
    for format in ("csv", "datev", "xero", "quickbooks", "beancount"):
        response = api.get("/api/v1/exports/journal", params=span | {"format": format})
        assert response.status_code == 200, response.text
        assert "attachment" in response.headers["content-disposition"]
        served[format] = response.content

    assert served["datev"].startswith(b'"EXTF";700;21;"Buchungsstapel";13;')
    assert b"\r\n" in served["datev"]
    assert served["csv"].count(b"\n") == 1 + 16  # a header and one row per posting of January's 6 entries
    path = tmp_path / "acme.beancount"
    path.write_bytes(served["beancount"])
    checked = subprocess.run([sys.executable.rsplit("/", 1)[0] + "/bean-check", str(path)], capture_output=True, text=True)
    assert (checked.returncode, checked.stderr) == (0, "")

    for params, code in [
        (span | {"format": "lotus123"}, "validation_error"),
        ({"from": "2027-02-01", "to": "2027-01-01", "format": "csv"}, "validation_error"),
        ({"from": "2026-12-01", "to": "2027-01-31", "format": "datev"}, "validation_error"),  # one fiscal year per DATEV file
    ]:
        response = api.get("/api/v1/exports/journal", params=params)
        assert (response.status_code, response.json()["code"]) == (422, code), response.text


def canonical_journal(database) -> list[tuple]:
    with database.read() as session:
        entries = session.exec(select(JournalEntry).order_by(JournalEntry.id)).all()
        rows = []
        for entry in entries:
            lines = session.exec(select(JournalPosting).where(JournalPosting.entry_id == entry.id).order_by(JournalPosting.id)).all()
            rows.append((
                entry.date, entry.event, entry.currency, entry.source_type, entry.source_id, entry.account_id, entry.document, entry.description,
                sorted((line.role, line.tax_rate, line.debit, line.credit) for line in lines),
            ))
    return sorted(rows, key=repr)


def test_journal_rebuild_of_a_database_made_before_gives_the_journal_made_live(database, cli):  # noqa: F811
    a_month_of_acme(database)
    with database.write() as session:
        payment = session.exec(select(Payment)).one()
    with database.write() as session:
        reverse_payment(session, payment.id, reason="returned", now=instant("2027-02-02 09:00"), actor=ACTOR)
    live = canonical_journal(database)
    with database.read() as session:
        live_values = {entry.id: entry.value for entry in session.exec(select(LedgerEntry))}

    # As before the journal existed: no entries, and ledger values as migration 0008 computes them.
    with database.write() as session:
        session.exec(JournalPosting.__table__.delete())
        session.exec(JournalEntry.__table__.delete())
        session.exec(LedgerEntry.__table__.update().values(value=0))
        revalue(session)
    with database.read() as session:
        assert {entry.id: entry.value for entry in session.exec(select(LedgerEntry))} == live_values

    url = database.url
    result = cli("journal", "rebuild", url=url)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == f"posted {len(live)} journal entries"
    assert canonical_journal(database) == live

    again = cli("journal", "rebuild", url=url)
    assert again.code == 2 and "has entries already" in again.stderr
    assert cli("journal", "rebuild", "--replace", url=url).code == 0
    assert canonical_journal(database) == live


def test_export_journal_on_the_command_line(database, cli, tmp_path):  # noqa: F811 - the fixture
    a_month_of_acme(database)
    target = tmp_path / "january.csv"

    result = cli("export", "journal", "--from", "2027-01-01", "--to", "2027-01-31", "--format", "csv", "-o", str(target), url=database.url)

    assert result.code == 0, result.stderr
    assert result.stdout.strip() == f"wrote {target}"
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("entry_id,date,")
    assert len(lines) == 1 + 16
    refused = cli("export", "journal", "--from", "2027-01-01", "--to", "2027-01-31", "--format", "lotus123", url=database.url)
    assert refused.code == 2 and "format must be one of" in refused.stderr


def test_credits_granted_on_payment_move_from_awaiting_payment_and_a_reversal_then_a_credit_note_leave_nothing_waiting(database, api):
    """A pack that grants on payment: its net waits (credits awaiting payment) until the invoice is
    paid; a reversal takes back what is left (6 of 10 credits) and puts its value back there; a
    credit note of the whole line then takes that 60.00 from there and the 40.00 used as an
    allowance: nothing stays waiting."""
    account = factories.account(database, name="Paid Later Ltd")
    pack = factories.credit_pack(database, credits="10", lifetime=None, price="100.00", tax_rate="20", grant_on="payment")
    invoice = sell_top_up(database, account.id, pack.id, instant("2027-03-01 09:00"))
    with database.write() as session:
        payment = record_payment(
            session, invoice.id, amount=D("120.00"), received_at=instant("2027-03-02 09:00"), now=instant("2027-03-02 09:00"), actor=ACTOR
        )
    consumed(database, account.id, "4", instant("2027-03-03 10:00"))
    with database.write() as session:
        reverse_payment(session, payment.id, reason="chargeback", now=instant("2027-03-04 09:00"), actor=ACTOR)
    line = line_of(database, invoice.id)
    credited(database, invoice.id, CreditRequest(line.id, amount=D("100.00")), instant("2027-03-05 09:00"), policy="cap_to_remaining")

    entries = journal(api)
    assert [(e["event"], postings(e)) for e in entries if e["event"] not in ("credits_used",)] == [
        ("invoice_approved", [("1100", "120.00", "0.00"), ("2410", "0.00", "100.00"), ("2200", "0.00", "20.00")]),
        ("payment_received", [("1100", "0.00", "120.00"), ("1200", "120.00", "0.00")]),
        ("credits_granted_on_payment", [("2410", "100.00", "0.00"), ("2400", "0.00", "100.00")]),
        ("payment_reversed", [("1100", "120.00", "0.00"), ("1200", "0.00", "120.00")]),
        ("credits_taken_back_on_reopening", [("2400", "60.00", "0.00"), ("2410", "0.00", "60.00")]),
        ("credit_note_approved", [("2410", "60.00", "0.00"), ("4900", "40.00", "0.00"), ("2200", "20.00", "0.00"), ("1100", "0.00", "120.00")]),
    ]
    trial = api.get("/api/v1/reports/trial-balance", params={"as_of": "2027-03-31"}).json()
    balances = {line["account"]: (line["debit"], line["credit"]) for line in trial["lines"]}
    assert "2410" not in balances and "2400" not in balances and "1100" not in balances
