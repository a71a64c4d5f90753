"""Credit notes and voiding (SPEC 6, 7 and 8; API.md ``/credit-notes`` and ``/invoices/{id}/void``).

Every expected value is worked out by hand from SPEC.md, in the default operator zone (UTC).
The standard case: a pack of 10 credits at 100.00 (tax 20 %, lifetime P1M) on a monthly
service for January 2027, billed and approved on 2027-01-01 (``INV-2027-000001``): a line of
net 100.00 granting 10 credits worth 10.00 each, valid until 2027-02-01. Corrections happen in
mid-January, while those credits are still valid.

Taken back = credits granted x (net credited / line net), rounded down to 2 places (SPEC 6).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from freezegun import freeze_time
from sqlmodel import col, select

from licensing.accounts.models import Account
from licensing.errors import (
    CreditsAlreadyConsumed,
    InvoiceNotDraft,
    NotFound,
    UnknownReference,
    ValidationFailed,
)
from licensing.events import Event
from licensing.invoicing.approval import approve_invoice
from licensing.invoicing.credit_notes import (
    CreditRequest,
    InvoiceCredited,
    approve_credit_note,
    create_credit_note,
    note_lines,
    void_invoice,
)
from licensing.invoicing.models import CreditNote, Invoice, InvoiceLine
from licensing.reports import liability
from tests import factories
from tests.support import over_http
from tests.support.use_cases import (
    ACTOR,
    bill,
    bill_and_approve,
    grants_of,
    instant,
    ledger_of,
    summary_at,
    use,
)

D = Decimal
PROBLEM = "application/problem+json"

JANUARY_1 = instant("2027-01-01 00:00")
BOOKED = instant("2027-01-10 10:00")  # when 8 of the 10 credits are used
CORRECTED = instant("2027-01-12 09:00")  # when the operator corrects the invoice

# The same moments for the HTTP tests (RFC 3339).
JANUARY_1_TEXT = "2027-01-01T00:00:00Z"
BOOKED_TEXT = "2027-01-10T10:00:00Z"
CORRECTED_TEXT = "2027-01-12T09:00:00+00:00"


# ---------------------------------------------------------------------------------------------
# Helpers, service level: one use case per transaction, as the API does.
# ---------------------------------------------------------------------------------------------


def january_invoice(database, *services, to_date: date = date(2027, 1, 31)):
    """An account whose January 2027 invoice, approved on Jan 1, bills ``services``: (product,
    quantity) pairs, each a monthly service from Jan 1 to ``to_date``. Returns the account, the
    invoice and its lines by product id."""
    account = factories.account(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    for product, quantity in services:
        factories.service(database, licence.id, product.id, from_date=date(2027, 1, 1), to_date=to_date, quantity=D(quantity))
    invoice = bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=JANUARY_1)
    return account, invoice, invoice_lines(database, invoice.id), licence


def invoice_lines(database, invoice_id: int) -> dict[int, InvoiceLine]:
    with database.read() as session:
        lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.id)).all()
    return {line.product_id: line for line in lines}


def create_note(database, invoice_id: int, *requests: CreditRequest, policy: str = "strict", at=CORRECTED) -> CreditNote:
    with database.write() as session:
        return create_credit_note(
            session, invoice_id=invoice_id, lines=list(requests) or None, reason="correction", credit_policy=policy, now=at, actor=ACTOR
        )


def approve_note(database, note_id: int, at=CORRECTED, **policy) -> CreditNote:
    with database.write() as session:
        return approve_credit_note(session, note_id, now=at, actor=ACTOR, **policy)


def void(database, invoice_id: int, at=CORRECTED, policy: str = "strict") -> Invoice:
    with database.write() as session:
        return void_invoice(session, invoice_id, credit_policy=policy, now=at, actor=ACTOR)


def note_state(database, note_id: int) -> tuple:
    """The note and its lines as stored: (status, number, policy, approved_at, net, tax, gross),
    then (invoice line, quantity, net, tax, credits taken back) per line."""
    with database.read() as session:
        note = session.get(CreditNote, note_id)
        lines = note_lines(session, note_id)
    return (
        (note.status, note.number, note.credit_policy, note.approved_at, note.net, note.tax, note.gross),
        [(line.invoice_line_id, line.quantity, line.net, line.tax, line.credits_taken_back) for line in lines],
    )


def invoice_state(database, invoice_id: int) -> tuple:
    with database.read() as session:
        invoice = session.get(Invoice, invoice_id)
    return invoice.status, invoice.number, invoice.approved_at, invoice.voided_at, invoice.voided_by


def credit_state(database, account_id: int) -> tuple:
    """Everything taking credits back could change: the cached balance, the ledger, the grants."""
    with database.read() as session:
        balance = session.get(Account, account_id).balance
    return (
        balance,
        [(e.id, e.kind, e.credits, e.balance_after, e.grant_id, e.source_type, e.source_id) for e in ledger_of(database, account_id)],
        [(g.id, g.remaining, g.used, g.held, g.removed, g.expired) for g in grants_of(database, account_id)],
    )


def notes_of(database, invoice_id: int) -> list[int]:
    with database.read() as session:
        return list(session.exec(select(CreditNote.id).where(CreditNote.invoice_id == invoice_id).order_by(CreditNote.id)).all())


def events_of(database, type_: str) -> list[dict]:
    with database.read() as session:
        events = session.exec(select(Event).where(Event.type == type_).order_by(Event.id)).all()
    return [json.loads(event.data) for event in events]


def liability_of(database, account_id: int, at) -> tuple[Fraction, Fraction]:
    """(credits, value) outstanding for the account at ``at``; an account with nothing
    outstanding is left out of the report, which is a liability of zero."""
    with database.read() as session:
        report = liability(session, at)
    _total, accounts = report.currencies.get("EUR", (None, {}))
    item = accounts.get(account_id)
    return (item.credits, item.value) if item else (Fraction(0), Fraction(0))


# ---------------------------------------------------------------------------------------------
# Helpers, HTTP.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def api(client):
    """The billing client, its routes resolved before any test freezes the clock: FastAPI
    resolves a route's annotations on the first request, and under freezegun ``datetime`` is a
    fake class that pydantic refuses, so one unfrozen request (a 404) resolves them all."""
    assert client.get("/api/v1/no-such-resource").status_code == 404
    return client


call, created = over_http.call, over_http.created


def plain_service_over_http(client, price: str = "310.00") -> str:
    body = {"kind": "service", "name": "Dedicated desk", "price": price, "currency": "EUR", "tax_rate": "20"}
    return created(client, "/api/v1/products", body)["id"]


def january_invoice_over_http(client, *services, to_date: str = "2027-01-31") -> tuple[str, dict, str]:
    """The HTTP twin of ``january_invoice``: (product id, quantity) pairs; returns the account
    id, the approved January invoice and the licence id."""
    account_id = over_http.account(client)
    licence_id = over_http.licence(client, account_id)
    for product_id, quantity in services:
        over_http.service(client, licence_id, product_id, "monthly", "2027-01-01", to_date, quantity=quantity)
    invoice = over_http.bill_and_approve(client, licence_id, "2027-01-01", JANUARY_1_TEXT)
    return account_id, invoice, licence_id


def line_of(invoice: dict, product_id: str) -> dict:
    [line] = [line for line in invoice["lines"] if line["product_id"] == product_id]
    return line


def problem(response, status: int, code: str) -> dict:
    """The response is an RFC 9457 problem with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def get(client, path: str, moment: str = CORRECTED_TEXT, **params) -> dict:
    response = call(client, "GET", path, moment, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def http_state(client, account_id: str, invoice_id: str, moment: str = CORRECTED_TEXT) -> dict:
    """Everything a refused correction must leave as it was, as the API shows it."""
    return {
        "ledger": over_http.ledger(client, account_id, moment),
        "grants": over_http.grants(client, account_id, moment),
        "credits": get(client, f"/api/v1/accounts/{account_id}/credits", moment),
        "invoice": get(client, f"/api/v1/invoices/{invoice_id}", moment),
        "credit_notes": get(client, "/api/v1/credit-notes", moment, invoice_id=invoice_id)["items"],
    }


def liability_over_http(client, account_id: str, moment: str) -> tuple[str, str]:
    """(credits, value) of the account in ``GET /reports/liability``; an account with nothing
    outstanding is not listed, which is a liability of zero."""
    report = get(client, "/api/v1/reports/liability", moment, as_of=moment)
    for currency in report["currencies"]:
        for item in currency["accounts"]:
            if item["account_id"] == account_id:
                return item["credits"], item["value"]
    return "0.00", "0.00"


def whole_line(line: dict) -> dict:
    return {"invoice_line_id": line["id"], "quantity": line["quantity"]}


# ---------------------------------------------------------------------------------------------
# 1. Credits already used: strict refuses, cap_to_remaining takes back what remains
# ---------------------------------------------------------------------------------------------


def test_a_strict_credit_note_for_a_line_whose_credits_were_partly_used_is_refused_and_changes_nothing(database):
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (pack, "1"))
    line = lines[pack.id]
    use(database, account.id, "8", BOOKED)
    note = create_note(database, invoice.id, CreditRequest(line.id, quantity=D("1")))
    assert note_state(database, note.id) == (
        ("draft", None, "strict", None, D("100.00"), D("20.00"), D("120.00")),
        [(line.id, D("1"), D("100.00"), D("20.00"), None)],
    )
    [grant] = grants_of(database, account.id)
    credits_before, note_before = credit_state(database, account.id), note_state(database, note.id)

    with pytest.raises(CreditsAlreadyConsumed) as refusal:
        approve_note(database, note.id)

    assert refusal.value.code == "credits_already_consumed"
    assert refusal.value.extra == {"grant_id": str(grant.id), "credits_to_take_back": "10.00", "credits_remaining": "2.00"}
    assert "only 2.00 remain" in refusal.value.detail
    assert credit_state(database, account.id) == credits_before
    assert note_state(database, note.id) == note_before
    assert [(g.remaining, g.used, g.removed) for g in grants_of(database, account.id)] == [(D("2.00"), D("8.00"), D("0.00"))]
    assert events_of(database, "credit_note.approved") == []


def test_approving_the_refused_note_with_cap_to_remaining_takes_back_the_two_left_and_credits_the_money_in_full(database):
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (pack, "1"))
    line = lines[pack.id]
    use(database, account.id, "8", BOOKED)
    note = create_note(database, invoice.id, CreditRequest(line.id, quantity=D("1")))
    with pytest.raises(CreditsAlreadyConsumed):
        approve_note(database, note.id)

    approved = approve_note(database, note.id, credit_policy="cap_to_remaining")

    # The refusal used no number: this is the first credit note of 2027.
    assert note_state(database, approved.id) == (
        ("approved", "CN-2027-000001", "cap_to_remaining", CORRECTED, D("100.00"), D("20.00"), D("120.00")),
        [(line.id, D("1"), D("100.00"), D("20.00"), D("2.00"))],
    )
    [grant] = grants_of(database, account.id)
    assert (grant.credits, grant.remaining, grant.used, grant.removed) == (D("10.00"), D("0.00"), D("8.00"), D("2.00"))
    last = ledger_of(database, account.id)[-1]
    assert (last.kind, last.credits, last.balance_after, last.source_type, last.source_id) == (
        "credit_note_reversal", D("-2.00"), D("0.00"), "credit_note", str(note.id)
    )


def test_a_cap_to_remaining_note_leaves_the_summary_the_ledger_and_the_liability_in_agreement(database):
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (pack, "1"))
    use(database, account.id, "8", BOOKED)
    assert liability_of(database, account.id, CORRECTED) == (2, 20)  # 2 credits worth 10.00 each

    note = create_note(database, invoice.id, CreditRequest(lines[pack.id].id, quantity=D("1")), policy="cap_to_remaining")
    approve_note(database, note.id)

    assert note_state(database, note.id)[1][0][-1] == D("2.00")
    cached, folded = summary_at(database, account.id, CORRECTED)
    assert cached == folded
    figures = cached.total
    assert (figures.granted, figures.remaining, figures.used, figures.held, figures.removed) == (
        D("10.00"), D("0.00"), D("8.00"), D("0.00"), D("2.00")
    )
    assert cached.expiring == [] and cached.pending == []
    assert ledger_of(database, account.id)[-1].balance_after == D("0.00")
    with database.read() as session:
        assert session.get(Account, account.id).balance == D("0.00")
    assert liability_of(database, account.id, CORRECTED) == (0, 0)


def test_over_http_a_strict_note_is_refused_with_the_count_left_and_approving_it_capped_takes_back_the_rest(api):
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id, invoice, _ = january_invoice_over_http(api, (pack_id, "1"))
    line = line_of(invoice, pack_id)
    over_http.consumed(api, account_id, "8", BOOKED_TEXT)
    body = {"invoice_id": invoice["id"], "lines": [whole_line(line)], "reason": "sold by mistake"}
    note = created(api, "/api/v1/credit-notes", body, CORRECTED_TEXT)
    assert (note["status"], note["number"], note["credit_policy"], note["net"], note["tax"], note["gross"]) == (
        "draft", None, "strict", "100.00", "20.00", "120.00"
    )
    assert [(item["invoice_line_id"], item["quantity"], item["credits_taken_back"]) for item in note["lines"]] == [(line["id"], "1", None)]
    before = http_state(api, account_id, invoice["id"])

    response = call(api, "POST", f"/api/v1/credit-notes/{note['id']}/approve", CORRECTED_TEXT)

    refusal = problem(response, 409, "credits_already_consumed")
    assert (refusal["credits_remaining"], refusal["credits_to_take_back"]) == ("2.00", "10.00")
    assert "2.00" in refusal["detail"]
    assert http_state(api, account_id, invoice["id"]) == before
    assert get(api, f"/api/v1/credit-notes/{note['id']}") == note

    response = call(api, "POST", f"/api/v1/credit-notes/{note['id']}/approve", CORRECTED_TEXT, json={"credit_policy": "cap_to_remaining"})

    assert response.status_code == 200, response.text
    approved = response.json()
    assert (approved["status"], approved["number"], approved["credit_policy"], approved["gross"]) == (
        "approved", "CN-2027-000001", "cap_to_remaining", "120.00"
    )
    assert [item["credits_taken_back"] for item in approved["lines"]] == ["2.00"]
    summary = over_http.credits_at(api, account_id, CORRECTED_TEXT)
    assert (summary["granted"], summary["remaining"], summary["used"], summary["removed"]) == ("10.00", "0.00", "8.00", "2.00")
    assert over_http.ledger(api, account_id, CORRECTED_TEXT)[-1]["balance_after"] == "0.00"
    assert liability_over_http(api, account_id, CORRECTED_TEXT) == ("0.00", "0.00")


def test_over_http_after_a_cap_to_remaining_note_the_summary_the_ledger_and_the_liability_agree(api):
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id, invoice, _ = january_invoice_over_http(api, (pack_id, "1"))
    line = line_of(invoice, pack_id)
    over_http.consumed(api, account_id, "8", BOOKED_TEXT)
    assert liability_over_http(api, account_id, CORRECTED_TEXT) == ("2.00", "20.00")

    body = {"invoice_id": invoice["id"], "lines": [whole_line(line)], "credit_policy": "cap_to_remaining"}
    note = created(api, "/api/v1/credit-notes", body, CORRECTED_TEXT)
    response = call(api, "POST", f"/api/v1/credit-notes/{note['id']}/approve", CORRECTED_TEXT)

    assert response.status_code == 200, response.text
    approved = response.json()
    assert (approved["status"], approved["number"], approved["net"], approved["tax"], approved["gross"]) == (
        "approved", "CN-2027-000001", "100.00", "20.00", "120.00"
    )
    assert [item["credits_taken_back"] for item in approved["lines"]] == ["2.00"]
    summary = over_http.credits_at(api, account_id, CORRECTED_TEXT)
    assert (summary["granted"], summary["remaining"], summary["used"], summary["held"], summary["removed"]) == (
        "10.00", "0.00", "8.00", "0.00", "2.00"
    )
    assert (summary["expiring"], summary["pending"]) == ([], [])
    entries = over_http.ledger(api, account_id, CORRECTED_TEXT)
    assert [(entry["kind"], entry["credits"], entry["balance_after"]) for entry in entries] == [
        ("grant", "10.00", "10.00"), ("consume", "-8.00", "2.00"), ("credit_note_reversal", "-2.00", "0.00")
    ]
    assert entries[-1]["source"] == {"type": "credit_note", "id": note["id"]}
    [grant] = over_http.grants(api, account_id, CORRECTED_TEXT)
    assert (grant["remaining"], grant["used"], grant["removed"]) == ("0.00", "8.00", "2.00")
    assert liability_over_http(api, account_id, CORRECTED_TEXT) == ("0.00", "0.00")


# ---------------------------------------------------------------------------------------------
# 2. Crediting by amount, and by quantity on a line of several units
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "quantity", "tax", "taken_back", "remaining", "liability_value"),
    [
        pytest.param("25.00", D("0.25"), D("5.00"), D("2.50"), D("7.50"), 75, id="a quarter"),
        # 10 x 33.37 / 100 = 3.337 credits: rounded down to 3.33, never up to 3.34
        pytest.param("33.37", D("0.3337"), D("6.67"), D("3.33"), D("6.67"), Fraction("66.70"), id="rounded down"),
    ],
)
def test_crediting_an_amount_of_a_credit_pack_line_takes_back_the_same_share_of_its_credits(
    database, amount, quantity, tax, taken_back, remaining, liability_value
):
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (pack, "1"))
    line = lines[pack.id]

    note = create_note(database, invoice.id, CreditRequest(line.id, amount=D(amount)))
    approve_note(database, note.id)

    assert note_state(database, note.id) == (
        ("approved", "CN-2027-000001", "strict", CORRECTED, D(amount), tax, D(amount) + tax),
        [(line.id, quantity, D(amount), tax, taken_back)],
    )
    [grant] = grants_of(database, account.id)
    assert (grant.remaining, grant.removed) == (remaining, taken_back)
    last = ledger_of(database, account.id)[-1]
    assert (last.kind, last.credits, last.balance_after) == ("credit_note_reversal", -taken_back, remaining)
    # The credits left keep their value of 10.00 each.
    assert liability_of(database, account.id, CORRECTED) == (Fraction(remaining), liability_value)


def test_crediting_one_unit_of_a_line_of_three_packs_takes_back_one_pack_of_ten_credits(database):
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (pack, "3"))
    line = lines[pack.id]
    assert (line.quantity, line.credits, line.net) == (D("3"), D("30.00"), D("300.00"))

    note = create_note(database, invoice.id, CreditRequest(line.id, quantity=D("1")))
    approve_note(database, note.id)

    # 30 credits x (100.00 / 300.00) = exactly 10: rounding down must not make it 9.99.
    assert note_state(database, note.id) == (
        ("approved", "CN-2027-000001", "strict", CORRECTED, D("100.00"), D("20.00"), D("120.00")),
        [(line.id, D("1"), D("100.00"), D("20.00"), D("10.00"))],
    )
    [grant] = grants_of(database, account.id)
    assert (grant.credits, grant.remaining, grant.removed) == (D("30.00"), D("20.00"), D("10.00"))
    assert liability_of(database, account.id, CORRECTED) == (20, 200)


def test_over_http_crediting_by_amount_and_by_quantity(api):
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id, invoice, _ = january_invoice_over_http(api, (pack_id, "3"))
    line = line_of(invoice, pack_id)
    assert (line["quantity"], line["credits"], line["net"]) == ("3", "30.00", "300.00")

    by_amount = created(
        api, "/api/v1/credit-notes", {"invoice_id": invoice["id"], "lines": [{"invoice_line_id": line["id"], "amount": "25.00"}]}, CORRECTED_TEXT
    )
    by_quantity = created(
        api, "/api/v1/credit-notes", {"invoice_id": invoice["id"], "lines": [{"invoice_line_id": line["id"], "quantity": "1"}]}, CORRECTED_TEXT
    )
    assert [(note["lines"][0]["quantity"], note["net"], note["tax"], note["gross"]) for note in (by_amount, by_quantity)] == [
        ("0.25", "25.00", "5.00", "30.00"), ("1", "100.00", "20.00", "120.00")
    ]
    responses = [call(api, "POST", f"/api/v1/credit-notes/{note['id']}/approve", CORRECTED_TEXT) for note in (by_amount, by_quantity)]
    assert [response.status_code for response in responses] == [200, 200], [response.text for response in responses]
    approved = [response.json() for response in responses]

    # 30 credits x 25/300 = 2.50; 30 credits x 100/300 = 10.00
    assert [(note["number"], note["lines"][0]["credits_taken_back"]) for note in approved] == [
        ("CN-2027-000001", "2.50"), ("CN-2027-000002", "10.00")
    ]
    [grant] = over_http.grants(api, account_id, CORRECTED_TEXT)
    assert (grant["credits"], grant["remaining"], grant["removed"]) == ("30.00", "17.50", "12.50")


# ---------------------------------------------------------------------------------------------
# 3. Service lines: money only
# ---------------------------------------------------------------------------------------------


def test_crediting_a_plain_service_line_credits_money_and_takes_back_no_credits(database):
    desk = factories.plain_service(database, price="310.00")
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (desk, "1"), (pack, "1"))
    before = credit_state(database, account.id)

    note = create_note(database, invoice.id, CreditRequest(lines[desk.id].id, amount=D("155.00")))
    approve_note(database, note.id)

    assert note_state(database, note.id) == (
        ("approved", "CN-2027-000001", "strict", CORRECTED, D("155.00"), D("31.00"), D("186.00")),
        [(lines[desk.id].id, D("0.5"), D("155.00"), D("31.00"), D("0.00"))],
    )
    assert credit_state(database, account.id) == before


def test_over_http_a_service_line_shows_no_credits_taken_back_until_approved_then_zero(api):
    desk_id = plain_service_over_http(api)
    account_id, invoice, _ = january_invoice_over_http(api, (desk_id, "1"))
    desk_line = line_of(invoice, desk_id)
    assert desk_line["credits"] is None
    ledger_before = over_http.ledger(api, account_id, CORRECTED_TEXT)

    note = created(api, "/api/v1/credit-notes", {"invoice_id": invoice["id"], "lines": [whole_line(desk_line)]}, CORRECTED_TEXT)
    assert note["lines"][0]["credits_taken_back"] is None
    response = call(api, "POST", f"/api/v1/credit-notes/{note['id']}/approve", CORRECTED_TEXT)

    assert response.status_code == 200, response.text
    approved = response.json()
    assert (approved["number"], approved["net"], approved["tax"], approved["gross"]) == ("CN-2027-000001", "310.00", "62.00", "372.00")
    assert [(line["invoice_line_id"], line["credits_taken_back"]) for line in approved["lines"]] == [(desk_line["id"], "0.00")]
    assert over_http.ledger(api, account_id, CORRECTED_TEXT) == ledger_before == []


# ---------------------------------------------------------------------------------------------
# 4. Whole invoices, and never more than the invoice
# ---------------------------------------------------------------------------------------------


def test_a_credit_note_without_lines_credits_every_line_of_the_invoice(database):
    desk = factories.plain_service(database, price="310.00")
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (desk, "1"), (pack, "1"))

    note = create_note(database, invoice.id)
    approve_note(database, note.id)

    # net 310.00 + 100.00; tax 20 % of the 410.00 at that rate
    assert note_state(database, note.id) == (
        ("approved", "CN-2027-000001", "strict", CORRECTED, D("410.00"), D("82.00"), D("492.00")),
        [
            (lines[desk.id].id, D("1"), D("310.00"), D("62.00"), D("0.00")),
            (lines[pack.id].id, D("1"), D("100.00"), D("20.00"), D("10.00")),
        ],
    )
    [grant] = grants_of(database, account.id)
    assert (grant.remaining, grant.removed) == (D("0.00"), D("10.00"))


def test_once_a_whole_invoice_is_credited_another_note_is_refused_and_nothing_is_written(database):
    desk = factories.plain_service(database, price="310.00")
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (desk, "1"), (pack, "1"))
    first = create_note(database, invoice.id)
    approve_note(database, first.id)
    before = credit_state(database, account.id)

    with pytest.raises(ValidationFailed) as whole_again:
        create_note(database, invoice.id)
    with pytest.raises(ValidationFailed) as one_line_again:
        create_note(database, invoice.id, CreditRequest(lines[pack.id].id, amount=D("0.01")))

    assert whole_again.value.code == one_line_again.value.code == "validation_error"
    assert [error["field"] for error in whole_again.value.extra["errors"]] == ["lines"]
    assert [error["field"] for error in one_line_again.value.extra["errors"]] == ["lines.0.amount"]
    assert notes_of(database, invoice.id) == [first.id]
    assert credit_state(database, account.id) == before


def test_one_line_cannot_be_credited_past_its_net_across_two_notes(database):
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (pack, "1"))
    line = lines[pack.id]
    first = create_note(database, invoice.id, CreditRequest(line.id, amount=D("60.00")))

    # A draft counts: 40.00 (quantity 0.4) is left to credit on the line.
    for request in (CreditRequest(line.id, amount=D("40.01")), CreditRequest(line.id, quantity=D("0.5"))):
        with pytest.raises(ValidationFailed):
            create_note(database, invoice.id, request)
    assert notes_of(database, invoice.id) == [first.id]

    second = create_note(database, invoice.id, CreditRequest(line.id, amount=D("40.00")))
    approve_note(database, first.id)
    approve_note(database, second.id)

    assert [note_state(database, note.id)[1][0][2:] for note in (first, second)] == [
        (D("60.00"), D("12.00"), D("6.00")), (D("40.00"), D("8.00"), D("4.00"))
    ]
    [grant] = grants_of(database, account.id)
    assert (grant.remaining, grant.removed) == (D("0.00"), D("10.00"))
    with pytest.raises(ValidationFailed):
        create_note(database, invoice.id)


def test_over_http_a_second_whole_invoice_note_is_a_validation_error(api):
    desk_id = plain_service_over_http(api)
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id, invoice, _ = january_invoice_over_http(api, (desk_id, "1"), (pack_id, "1"))
    whole = created(api, "/api/v1/credit-notes", {"invoice_id": invoice["id"]}, CORRECTED_TEXT)
    assert [(line["invoice_line_id"], line["net"]) for line in whole["lines"]] == [
        (line_of(invoice, desk_id)["id"], "310.00"), (line_of(invoice, pack_id)["id"], "100.00")
    ]
    assert (whole["net"], whole["tax"], whole["gross"]) == ("410.00", "82.00", "492.00")
    before = http_state(api, account_id, invoice["id"])

    response = call(api, "POST", "/api/v1/credit-notes", CORRECTED_TEXT, json={"invoice_id": invoice["id"]})

    problem(response, 422, "validation_error")
    assert http_state(api, account_id, invoice["id"]) == before
    over_credit = {"invoice_id": invoice["id"], "lines": [{"invoice_line_id": line_of(invoice, pack_id)["id"], "amount": "1.00"}]}
    problem(call(api, "POST", "/api/v1/credit-notes", CORRECTED_TEXT, json=over_credit), 422, "validation_error")
    assert http_state(api, account_id, invoice["id"]) == before


# ---------------------------------------------------------------------------------------------
# 5. Numbering
# ---------------------------------------------------------------------------------------------


def test_credit_notes_are_numbered_on_approval_in_their_own_gapless_series(database):
    pack = factories.credit_pack(database)
    _account, january, lines, licence = january_invoice(database, (pack, "1"), to_date=date(2027, 2, 28))
    line = lines[pack.id]
    first, second = (create_note(database, january.id, CreditRequest(line.id, amount=D("10.00"))) for _ in range(2))
    assert [note_state(database, note.id)[0][:2] for note in (first, second)] == [("draft", None), ("draft", None)]

    # numbered in the order they are approved, not created
    approve_note(database, second.id)
    approve_note(database, first.id)
    february = bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-02-01 00:00"))

    assert [note_state(database, note.id)[0][:2] for note in (second, first)] == [
        ("approved", "CN-2027-000001"), ("approved", "CN-2027-000002")
    ]
    assert (january.number, february.number) == ("INV-2027-000001", "INV-2027-000002")


def test_the_credit_note_series_restarts_with_the_approval_year(database):
    desk = factories.plain_service(database, price="310.00")
    _account, invoice, lines, _ = january_invoice(database, (desk, "1"))
    in_2027 = create_note(database, invoice.id, CreditRequest(lines[desk.id].id, amount=D("10.00")))
    in_2028 = create_note(database, invoice.id, CreditRequest(lines[desk.id].id, amount=D("10.00")))

    approve_note(database, in_2027.id, at=instant("2027-12-31 23:59"))
    approve_note(database, in_2028.id, at=instant("2028-01-01 00:00"))

    assert note_state(database, in_2027.id)[0][:2] == ("approved", "CN-2027-000001")
    assert note_state(database, in_2028.id)[0][:2] == ("approved", "CN-2028-000001")


def test_approving_an_approved_note_returns_it_unchanged_and_takes_nothing_more(database):
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (pack, "1"))
    note = create_note(database, invoice.id, CreditRequest(lines[pack.id].id, quantity=D("0.5")))
    approve_note(database, note.id)
    approved, credits = note_state(database, note.id), credit_state(database, account.id)

    again = approve_note(database, note.id, at=instant("2027-01-20 10:00"))

    assert (again.id, again.number, again.approved_at) == (note.id, "CN-2027-000001", CORRECTED)
    assert note_state(database, note.id) == approved
    assert credit_state(database, account.id) == credits
    assert len(events_of(database, "credit_note.approved")) == 1
    # and the series did not move
    other = create_note(database, invoice.id, CreditRequest(lines[pack.id].id, quantity=D("0.1")))
    assert approve_note(database, other.id).number == "CN-2027-000002"


def test_over_http_drafts_have_no_number_and_approving_twice_answers_the_same_note(api):
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id, invoice, _ = january_invoice_over_http(api, (pack_id, "1"))
    line = line_of(invoice, pack_id)
    notes = [
        created(
            api, "/api/v1/credit-notes", {"invoice_id": invoice["id"], "lines": [{"invoice_line_id": line["id"], "amount": "10.00"}]}, CORRECTED_TEXT
        )
        for _ in range(2)
    ]
    assert [note["number"] for note in notes] == [None, None]

    first = call(api, "POST", f"/api/v1/credit-notes/{notes[0]['id']}/approve", CORRECTED_TEXT)
    again = call(api, "POST", f"/api/v1/credit-notes/{notes[0]['id']}/approve", "2027-01-13T10:00:00Z")
    second = call(api, "POST", f"/api/v1/credit-notes/{notes[1]['id']}/approve", "2027-01-13T10:00:00Z")

    assert [response.status_code for response in (first, again, second)] == [200, 200, 200]
    assert again.json() == first.json()
    assert (first.json()["number"], first.json()["invoice_number"], second.json()["number"]) == (
        "CN-2027-000001", "INV-2027-000001", "CN-2027-000002"
    )
    assert [(entry["kind"], entry["credits"]) for entry in over_http.ledger(api, account_id, "2027-01-13T10:00:00Z")] == [
        ("grant", "10.00"), ("credit_note_reversal", "-1.00"), ("credit_note_reversal", "-1.00")
    ]


# ---------------------------------------------------------------------------------------------
# 6. Refusals
# ---------------------------------------------------------------------------------------------


def test_a_draft_invoice_cannot_be_credited(database):
    pack = factories.credit_pack(database)
    account = factories.account(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 1, 31))
    assert bill(database, date(2027, 1, 1), JANUARY_1) == (1, 0)
    with database.read() as session:
        [draft] = session.exec(select(Invoice).where(Invoice.licence_id == licence.id)).all()

    with pytest.raises(InvoiceNotDraft) as refusal:
        create_note(database, draft.id)

    assert refusal.value.code == "invoice_not_draft"
    assert notes_of(database, draft.id) == []


def test_unknown_ids_are_unknown_references_in_a_body_and_not_found_in_a_path(database):
    pack = factories.credit_pack(database)
    _account, invoice, _lines, _ = january_invoice(database, (pack, "1"))

    for invoice_id in (999999, "999999", "not-an-id"):
        with pytest.raises(UnknownReference):
            create_note(database, invoice_id)
    with pytest.raises(UnknownReference):
        create_note(database, invoice.id, CreditRequest(999999, quantity=D("1")))
    for note_id in (999999, "not-an-id"):
        with pytest.raises(NotFound):
            approve_note(database, note_id)
    with pytest.raises(NotFound):
        void(database, 999999)
    assert notes_of(database, invoice.id) == []


def test_over_http_malformed_or_misdirected_credit_notes_are_refused_and_write_nothing(api):
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id, january, licence_id = january_invoice_over_http(api, (pack_id, "1"), to_date="2027-02-28")
    february = over_http.bill_and_approve(api, licence_id, "2027-02-01", "2027-02-01T00:00:00Z")
    line, february_line = line_of(january, pack_id), line_of(february, pack_id)
    moment = "2027-02-02T09:00:00Z"
    before = http_state(api, account_id, january["id"], moment)

    def posted(body: dict):
        return call(api, "POST", "/api/v1/credit-notes", moment, json=body)

    def with_line(**request) -> dict:
        return {"invoice_id": january["id"], "lines": [{"invoice_line_id": line["id"], **request}]}

    assert problem(posted({"invoice_id": "999999"}), 422, "unknown_reference")
    assert problem(posted({"invoice_id": "not-an-id"}), 422, "unknown_reference")
    assert problem(
        posted({"invoice_id": january["id"], "lines": [{"invoice_line_id": february_line["id"], "quantity": "1"}]}), 422, "unknown_reference"
    )
    assert problem(posted({"invoice_id": january["id"], "lines": [{"invoice_line_id": "999999", "quantity": "1"}]}), 422, "unknown_reference")
    for request in (
        {"quantity": "1", "amount": "100.00"},  # both
        {},  # neither
        {"amount": "-5.00"},
        {"amount": "0.00"},
        {"amount": "25.001"},  # more places than EUR has
        {"amount": "25.00001"},
        {"amount": "100.01"},  # more than the line
        {"amount": 25},  # a number, not a decimal string
        {"quantity": "-1"},
        {"quantity": "0"},
        {"quantity": "1.5"},  # more than the line's quantity
    ):
        problem(posted(with_line(**request)), 422, "validation_error")
    problem(posted({"invoice_id": january["id"], "credit_policy": "generous"}), 422, "validation_error")

    assert http_state(api, account_id, january["id"], moment) == before
    assert get(api, "/api/v1/credit-notes", moment)["items"] == []
    assert problem(call(api, "GET", "/api/v1/credit-notes/999999", moment), 404, "not_found")
    assert problem(call(api, "POST", "/api/v1/credit-notes/999999/approve", moment), 404, "not_found")


def test_over_http_crediting_a_draft_invoice_is_invoice_not_draft(api):
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id = over_http.account(api)
    licence_id = over_http.licence(api, account_id)
    over_http.service(api, licence_id, pack_id, "monthly", "2027-01-01", "2027-01-31")
    over_http.billing_run(api, "2027-01-01", JANUARY_1_TEXT)
    [draft] = over_http.invoices(api, licence_id, JANUARY_1_TEXT, status="draft")

    response = call(api, "POST", "/api/v1/credit-notes", CORRECTED_TEXT, json={"invoice_id": draft["id"]})

    problem(response, 409, "invoice_not_draft")
    assert get(api, "/api/v1/credit-notes")["items"] == []
    assert get(api, f"/api/v1/invoices/{draft['id']}") == draft


def test_over_http_bookings_may_not_credit_and_read_may_only_look(api):
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id, invoice, _ = january_invoice_over_http(api, (pack_id, "1"))
    note = created(api, "/api/v1/credit-notes", {"invoice_id": invoice["id"]}, CORRECTED_TEXT)
    bookings, read = api.as_role("bookings"), api.as_role("read")
    before = http_state(api, account_id, invoice["id"])

    with freeze_time(CORRECTED_TEXT):
        assert problem(bookings.post("/api/v1/credit-notes", json={"invoice_id": invoice["id"]}), 403, "forbidden")
        assert problem(bookings.post(f"/api/v1/credit-notes/{note['id']}/approve"), 403, "forbidden")
        assert problem(read.post("/api/v1/credit-notes", json={"invoice_id": invoice["id"]}), 403, "forbidden")
        assert problem(read.post(f"/api/v1/credit-notes/{note['id']}/approve"), 403, "forbidden")
        assert problem(read.post(f"/api/v1/invoices/{invoice['id']}/void"), 403, "forbidden")
        assert problem(api.as_role(None).get(f"/api/v1/credit-notes/{note['id']}"), 401, "unauthorized")
        listed, one = read.get("/api/v1/credit-notes"), read.get(f"/api/v1/credit-notes/{note['id']}")

    assert (listed.status_code, one.status_code) == (200, 200)
    assert (listed.json()["items"], one.json()) == ([note], note)
    assert http_state(api, account_id, invoice["id"]) == before


# ---------------------------------------------------------------------------------------------
# 7. Voiding an approved invoice
# ---------------------------------------------------------------------------------------------


def test_voiding_an_approved_invoice_takes_back_all_its_credits_and_keeps_its_number(database):
    desk = factories.plain_service(database, price="310.00")
    pack = factories.credit_pack(database)
    small_pack = factories.credit_pack(database, credits="5", price="50.00")
    account, invoice, _lines, _ = january_invoice(database, (desk, "1"), (pack, "1"), (small_pack, "1"))
    big_grant, small_grant = grants_of(database, account.id)

    voided = void(database, invoice.id)

    assert (voided.status, voided.number) == ("void", "INV-2027-000001")
    assert invoice_state(database, invoice.id) == ("void", "INV-2027-000001", JANUARY_1, CORRECTED, ACTOR)
    assert [(g.remaining, g.removed) for g in grants_of(database, account.id)] == [(D("0.00"), D("10.00")), (D("0.00"), D("5.00"))]
    reversals = [entry for entry in ledger_of(database, account.id) if entry.kind == "credit_note_reversal"]
    assert [(e.grant_id, e.credits, e.balance_after, e.source_type, e.source_id, e.occurred_at) for e in reversals] == [
        (big_grant.id, D("-10.00"), D("5.00"), "invoice_void", str(invoice.id), CORRECTED),
        (small_grant.id, D("-5.00"), D("0.00"), "invoice_void", str(invoice.id), CORRECTED),
    ]
    cached, folded = summary_at(database, account.id, CORRECTED)
    assert cached == folded
    assert (cached.total.granted, cached.total.remaining, cached.total.removed) == (D("15.00"), D("0.00"), D("15.00"))
    assert liability_of(database, account.id, CORRECTED) == (0, 0)


def test_voiding_after_some_credits_were_used_is_refused_unless_capped_to_what_remains(database):
    pack = factories.credit_pack(database)
    account, invoice, _lines, _ = january_invoice(database, (pack, "1"))
    use(database, account.id, "8", BOOKED)
    [grant] = grants_of(database, account.id)
    credits_before, invoice_before = credit_state(database, account.id), invoice_state(database, invoice.id)

    with pytest.raises(CreditsAlreadyConsumed) as refusal:
        void(database, invoice.id)

    assert refusal.value.extra == {"grant_id": str(grant.id), "credits_to_take_back": "10.00", "credits_remaining": "2.00"}
    assert credit_state(database, account.id) == credits_before
    assert invoice_state(database, invoice.id) == invoice_before == ("approved", "INV-2027-000001", JANUARY_1, None, None)
    assert events_of(database, "invoice.voided") == []

    voided = void(database, invoice.id, policy="cap_to_remaining")

    assert (voided.status, voided.number) == ("void", "INV-2027-000001")
    [grant] = grants_of(database, account.id)
    assert (grant.remaining, grant.used, grant.removed) == (D("0.00"), D("8.00"), D("2.00"))
    last = ledger_of(database, account.id)[-1]
    assert (last.kind, last.credits, last.balance_after, last.source_type) == ("credit_note_reversal", D("-2.00"), D("0.00"), "invoice_void")


def test_an_invoice_covered_by_a_credit_note_cannot_be_voided(database):
    pack = factories.credit_pack(database)
    account, invoice, lines, _ = january_invoice(database, (pack, "1"))
    note = create_note(database, invoice.id, CreditRequest(lines[pack.id].id, quantity=D("0.5")))
    approve_note(database, note.id)
    credits_before, invoice_before = credit_state(database, account.id), invoice_state(database, invoice.id)

    with pytest.raises(InvoiceCredited) as refusal:
        void(database, invoice.id)

    assert refusal.value.code == "invoice_credited"
    assert credit_state(database, account.id) == credits_before
    assert invoice_state(database, invoice.id) == invoice_before


def test_voiding_twice_returns_the_void_invoice_and_takes_nothing_more(database):
    pack = factories.credit_pack(database)
    account, invoice, _lines, _ = january_invoice(database, (pack, "1"))
    void(database, invoice.id)
    invoice_after, credits_after = invoice_state(database, invoice.id), credit_state(database, account.id)

    again = void(database, invoice.id, at=instant("2027-01-20 10:00"))

    assert (again.status, again.voided_at) == ("void", CORRECTED)
    assert invoice_state(database, invoice.id) == invoice_after
    assert credit_state(database, account.id) == credits_after
    assert len(events_of(database, "invoice.voided")) == 1


def test_a_void_invoice_can_be_neither_approved_nor_credited_and_a_draft_cannot_be_voided(database):
    pack = factories.credit_pack(database)
    account, invoice, _lines, licence = january_invoice(database, (pack, "1"), to_date=date(2027, 2, 28))
    void(database, invoice.id)
    assert bill(database, date(2027, 2, 1), instant("2027-02-01 00:00")) == (1, 0)
    with database.read() as session:
        [draft] = session.exec(select(Invoice).where(Invoice.licence_id == licence.id, Invoice.status == "draft")).all()
    credits_before = credit_state(database, account.id)

    with pytest.raises(InvoiceNotDraft), database.write() as session:
        approve_invoice(session, invoice.id, at=CORRECTED, actor=ACTOR)
    with pytest.raises(InvoiceNotDraft):
        create_note(database, invoice.id)
    with pytest.raises(InvoiceNotDraft):
        void(database, draft.id)

    assert invoice_state(database, invoice.id)[:2] == ("void", "INV-2027-000001")
    assert invoice_state(database, draft.id) == ("draft", None, None, None, None)
    assert credit_state(database, account.id) == credits_before
    assert notes_of(database, invoice.id) == []


def test_over_http_voiding_takes_back_the_credits_left_and_refuses_what_it_must(api):
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id, invoice, _ = january_invoice_over_http(api, (pack_id, "1"))
    over_http.consumed(api, account_id, "8", BOOKED_TEXT)
    before = http_state(api, account_id, invoice["id"])
    path = f"/api/v1/invoices/{invoice['id']}/void"

    refusal = problem(call(api, "POST", path, CORRECTED_TEXT), 409, "credits_already_consumed")
    assert refusal["credits_remaining"] == "2.00"
    assert problem(call(api, "POST", path, CORRECTED_TEXT, json={"credit_policy": "strict"}), 409, "credits_already_consumed")
    assert problem(call(api, "POST", path, CORRECTED_TEXT, json={"credit_policy": "all"}), 422, "validation_error")
    assert http_state(api, account_id, invoice["id"]) == before

    response = call(api, "POST", path, CORRECTED_TEXT, json={"credit_policy": "cap_to_remaining"})

    assert response.status_code == 200, response.text
    voided = response.json()
    assert (voided["status"], voided["number"], voided["voided_at"]) == ("void", "INV-2027-000001", CORRECTED_TEXT)
    last = over_http.ledger(api, account_id, CORRECTED_TEXT)[-1]
    assert (last["kind"], last["credits"], last["balance_after"], last["source"]) == (
        "credit_note_reversal", "-2.00", "0.00", {"type": "invoice_void", "id": invoice["id"]}
    )
    summary = over_http.credits_at(api, account_id, CORRECTED_TEXT)
    assert (summary["granted"], summary["remaining"], summary["used"], summary["removed"]) == ("10.00", "0.00", "8.00", "2.00")
    assert liability_over_http(api, account_id, CORRECTED_TEXT) == ("0.00", "0.00")

    again = call(api, "POST", path, "2027-01-20T10:00:00Z")
    assert (again.status_code, again.json()) == (200, voided)
    problem(call(api, "POST", f"/api/v1/invoices/{invoice['id']}/approve", "2027-01-20T10:00:00Z"), 409, "invoice_not_draft")
    problem(call(api, "POST", "/api/v1/credit-notes", "2027-01-20T10:00:00Z", json={"invoice_id": invoice["id"]}), 409, "invoice_not_draft")
    assert get(api, f"/api/v1/invoices/{invoice['id']}", "2027-01-20T10:00:00Z") == voided


def test_over_http_an_invoice_with_a_credit_note_is_not_voided_but_credited(api):
    pack_id = over_http.credit_pack(api, "10", "P1M")
    account_id, invoice, _ = january_invoice_over_http(api, (pack_id, "1"))
    line = line_of(invoice, pack_id)
    note = created(
        api, "/api/v1/credit-notes", {"invoice_id": invoice["id"], "lines": [{"invoice_line_id": line["id"], "quantity": "0.5"}]}, CORRECTED_TEXT
    )
    assert call(api, "POST", f"/api/v1/credit-notes/{note['id']}/approve", CORRECTED_TEXT).status_code == 200
    before = http_state(api, account_id, invoice["id"])

    response = call(api, "POST", f"/api/v1/invoices/{invoice['id']}/void", CORRECTED_TEXT)

    problem(response, 409, "invoice_credited")
    assert http_state(api, account_id, invoice["id"]) == before


# ---------------------------------------------------------------------------------------------
# 8. Events
# ---------------------------------------------------------------------------------------------


def test_approving_a_credit_note_and_voiding_an_invoice_are_recorded_as_events(database):
    pack = factories.credit_pack(database)
    account, credited, lines, _ = january_invoice(database, (pack, "1"))
    note = create_note(database, credited.id, CreditRequest(lines[pack.id].id, quantity=D("0.5")))
    assert events_of(database, "credit_note.approved") == []
    approve_note(database, note.id)
    other_pack = factories.credit_pack(database, credits="5", price="50.00")
    other_account, voided, _lines, _ = january_invoice(database, (other_pack, "1"))
    void(database, voided.id)

    [approved] = events_of(database, "credit_note.approved")
    assert {key: value for key, value in approved.items() if key != "gross"} == {
        "credit_note_id": str(note.id), "number": "CN-2027-000001", "invoice_id": str(credited.id),
        "account_id": str(account.id), "credits_taken_back": "5.00",
    }
    assert D(approved["gross"]) == D("60.00")
    assert events_of(database, "invoice.voided") == [
        {"invoice_id": str(voided.id), "number": "INV-2027-000002", "account_id": str(other_account.id), "actor": ACTOR}
    ]
    with database.read() as session:
        moments = session.exec(
            select(Event.created_at).where(col(Event.type).in_(["credit_note.approved", "invoice.voided"])).order_by(Event.id)
        ).all()
    assert moments == [CORRECTED, CORRECTED]
