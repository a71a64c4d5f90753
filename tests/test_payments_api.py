"""Money in over HTTP (API.md "Money in"): record, list, get and reverse payments, what invoices
show of them, the filters, and every refusal with its code and nothing written (each on SQLite
and PostgreSQL)."""

from __future__ import annotations

from tests.support.over_http import account as new_account
from tests.support.over_http import (  # noqa: F401 - the fixture resolves the routes before the clock is frozen
    at,
    refused_with,
    routes_resolved_before_the_clock_is_frozen,
)

call, created = at("2027-01-01T09:00:00Z")
JANUARY = "2027-01-01T09:00:00Z"


def desk_invoice(client, as_of: str = "2027-01-01", moment: str = JANUARY, licence_id: str | None = None) -> dict:
    """A 310.00 EUR desk at 20 % tax (372.00), billed and approved; the licence is made once."""
    if licence_id is None:
        account_id = new_account(client)
        desk = created(client, "/api/v1/products", {"kind": "service", "name": "Desk", "price": "310.00", "currency": "EUR", "tax_rate": "20"})["id"]
        licence_id = created(client, "/api/v1/licences", {"account_id": account_id, "start_date": "2027-01-01"})["id"]
        service = {"product_id": desk, "quantity": "1", "schedule": "monthly", "from_date": "2027-01-01"}
        created(client, f"/api/v1/licences/{licence_id}/services", service)
    assert call(client, "POST", "/api/v1/billing-runs", moment, json={"as_of": as_of}).json()["invoices_created"] == 1
    (draft,) = call(client, "GET", "/api/v1/invoices", moment, params={"licence_id": licence_id, "status": "draft"}).json()["items"]
    invoice = call(client, "POST", f"/api/v1/invoices/{draft['id']}/approve", moment).json()
    return invoice | {"licence_id": licence_id}


def invoice(client, invoice_id: str, moment: str = "2027-01-20T09:00:00Z") -> dict:
    return call(client, "GET", f"/api/v1/invoices/{invoice_id}", moment).json()


def payment_fields(body: dict) -> tuple:
    return body["status"], body["amount_paid"], body["amount_due"], body["payment_status"], body["days_overdue"]


def test_an_invoice_shows_what_is_due_and_its_payment_reference(client):
    approved = desk_invoice(client)

    assert payment_fields(invoice(client, approved["id"])) == ("approved", "0.00", "372.00", "unpaid", 5)
    assert approved["payment_reference"] == "RF" + approved["payment_reference"][2:4] + approved["number"].replace("-", "")
    assert payment_fields(invoice(client, approved["id"], "2027-01-15T09:00:00Z"))[-1] == 0


def test_a_partial_then_a_full_payment_over_http(client):
    approved = desk_invoice(client)
    path = f"/api/v1/invoices/{approved['id']}/payments"

    first = created(client, path, {"amount": "100.00", "reference": "SEPA 0105-17", "received_at": "2027-01-05T10:00:00+01:00"})
    assert {key: first[key] for key in ("amount", "currency", "method", "status", "applied", "unapplied", "received_at")} == {
        "amount": "100.00", "currency": "EUR", "method": "bank_transfer", "status": "received",
        "applied": [{"invoice_id": approved["id"], "amount": "100.00"}], "unapplied": "0.00", "received_at": "2027-01-05T09:00:00+00:00",
    }
    assert payment_fields(invoice(client, approved["id"])) == ("approved", "100.00", "272.00", "partially_paid", 5)

    created(client, path, {"amount": "272.00", "method": "card", "currency": "EUR"})
    assert payment_fields(invoice(client, approved["id"])) == ("paid", "372.00", "0.00", "paid", 0)

    listed = call(client, "GET", "/api/v1/payments", params={"invoice_id": approved["id"]}).json()["items"]
    assert [(p["amount"], p["method"]) for p in listed] == [("100.00", "bank_transfer"), ("272.00", "card")]
    assert call(client, "GET", f"/api/v1/payments/{first['id']}").json() == first
    assert [i["id"] for i in call(client, "GET", "/api/v1/invoices", params={"status": "paid"}).json()["items"]] == [approved["id"]]


def test_an_overpayment_is_refused_then_kept_and_settled_against_the_next_invoice_over_http(client):
    january = desk_invoice(client)
    path = f"/api/v1/invoices/{january['id']}/payments"
    before = call(client, "GET", "/api/v1/payments").json()

    refused = refused_with(call(client, "POST", path, json={"amount": "500.00"}), 409, "overpayment")
    assert refused["amount_due"] == "372.00"
    assert call(client, "GET", "/api/v1/payments").json() == before

    payment = created(client, path, {"amount": "500.00", "allow_overpayment": True})
    assert (payment["applied"], payment["unapplied"]) == ([{"invoice_id": january["id"], "amount": "372.00"}], "128.00")

    february = desk_invoice(client, "2027-02-01", "2027-02-01T09:00:00Z", licence_id=january["licence_id"])
    assert payment_fields(invoice(client, february["id"], "2027-02-02T09:00:00Z")) == ("approved", "128.00", "244.00", "partially_paid", 0)
    settled = call(client, "GET", f"/api/v1/payments/{payment['id']}").json()
    assert (settled["applied"], settled["unapplied"]) == (
        [{"invoice_id": january["id"], "amount": "372.00"}, {"invoice_id": february["id"], "amount": "128.00"}], "0.00"
    )


def test_a_reversal_reopens_the_invoice_and_is_refused_twice(client):
    approved = desk_invoice(client)
    payment = created(client, f"/api/v1/invoices/{approved['id']}/payments", {"amount": "372.00"})
    assert invoice(client, approved["id"])["status"] == "paid"

    response = call(client, "POST", f"/api/v1/payments/{payment['id']}/reverse", json={"reason": "chargeback"})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["reversal_reason"], response.json()["applied"]) == ("reversed", "chargeback", [])
    assert payment_fields(invoice(client, approved["id"])) == ("approved", "0.00", "372.00", "unpaid", 5)

    refused_with(call(client, "POST", f"/api/v1/payments/{payment['id']}/reverse"), 409, "payment_already_reversed")


def test_filters_by_payment_status_and_overdue(client):
    unpaid = desk_invoice(client)
    partly = desk_invoice(client)
    paid = desk_invoice(client)
    created(client, f"/api/v1/invoices/{partly['id']}/payments", {"amount": "10.00"})
    created(client, f"/api/v1/invoices/{paid['id']}/payments", {"amount": "372.00"})

    def ids(moment: str = "2027-01-20T09:00:00Z", **params) -> list[str]:
        return [item["id"] for item in call(client, "GET", "/api/v1/invoices", moment, params=params).json()["items"]]

    assert ids(payment_status="unpaid") == [unpaid["id"]]
    assert ids(payment_status="partially_paid") == [partly["id"]]
    assert ids(payment_status="paid") == [paid["id"]]
    assert ids(overdue="true") == [unpaid["id"], partly["id"]]
    assert ids("2027-01-15T09:00:00Z", overdue="true") == []  # due on the 15th: not yet overdue


def test_refused_payments_answer_a_code_and_write_nothing(client):
    approved = desk_invoice(client)
    path = f"/api/v1/invoices/{approved['id']}/payments"
    before = call(client, "GET", "/api/v1/payments").json()

    refused_with(call(client, "POST", path, json={"amount": "0"}), 422, "validation_error")
    refused_with(call(client, "POST", path, json={"amount": "-1.00"}), 422, "validation_error")
    refused_with(call(client, "POST", path, json={"amount": "1.001"}), 422, "validation_error")
    refused_with(call(client, "POST", path, json={"amount": 10}), 422, "validation_error")  # a JSON number: amounts are strings
    refused_with(call(client, "POST", path, json={"amount": "10.00", "currency": "GBP"}), 409, "currency_mismatch")
    refused_with(call(client, "POST", path, json={"amount": "10.00", "method": "cheque"}), 422, "validation_error")
    refused_with(call(client, "POST", "/api/v1/invoices/999/payments", json={"amount": "10.00"}), 404, "not_found")
    refused_with(call(client, "POST", "/api/v1/payments/999/reverse"), 404, "not_found")
    assert call(client, "GET", "/api/v1/payments").json() == before
    assert payment_fields(invoice(client, approved["id"]))[:2] == ("approved", "0.00")


def test_a_payment_is_recorded_once_per_idempotency_key(client):
    approved = desk_invoice(client)
    path = f"/api/v1/invoices/{approved['id']}/payments"
    headers = {"Idempotency-Key": "bank-line-4711"}

    first = call(client, "POST", path, json={"amount": "100.00"}, headers=headers)
    again = call(client, "POST", path, json={"amount": "100.00"}, headers=headers)
    assert (first.status_code, again.status_code, again.json()) == (201, 201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    refused_with(call(client, "POST", path, json={"amount": "50.00"}, headers=headers), 409, "idempotency_conflict")
    assert invoice(client, approved["id"])["amount_paid"] == "100.00"


def test_the_receivables_report_over_http(client):
    approved = desk_invoice(client)
    created(client, f"/api/v1/invoices/{approved['id']}/payments", {"amount": "72.00"})

    response = call(client, "GET", "/api/v1/reports/receivables", "2027-02-20T09:00:00Z", params={"as_of": "2027-02-20"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "as_of": "2027-02-20",
        "currencies": [{
            "currency": "EUR", "total": "300.00",
            "buckets": {"current": "0.00", "1-30": "0.00", "31-60": "300.00", "61-90": "0.00", "90+": "0.00"},
            "accounts": [{
                "account_id": approved["account_id"], "account_name": "Acme Ltd", "total": "300.00",
                "buckets": {"current": "0.00", "1-30": "0.00", "31-60": "300.00", "61-90": "0.00", "90+": "0.00"},
            }],
        }],
    }
    today = call(client, "GET", "/api/v1/reports/receivables", "2027-01-10T09:00:00Z").json()
    assert (today["as_of"], today["currencies"][0]["buckets"]["current"]) == ("2027-01-10", "300.00")
    refused_with(call(client, "GET", "/api/v1/reports/receivables", params={"as_of": "2027-02-30"}), 422, "validation_error")
    assert client.as_role("bookings").get("/api/v1/reports/receivables").status_code == 403


def test_a_credit_note_says_what_is_owed_back_to_the_member(client):
    """A note on a paid invoice is a refund to make; on an unpaid one it reduces what is due."""
    paid = desk_invoice(client)
    created(client, f"/api/v1/invoices/{paid['id']}/payments", {"amount": "372.00"})
    partly = desk_invoice(client)
    created(client, f"/api/v1/invoices/{partly['id']}/payments", {"amount": "100.00"})

    def credited(invoice: dict, amount: str) -> dict:
        line = invoice["lines"][0]["id"]
        body = {"invoice_id": invoice["id"], "reason": "desk closed", "lines": [{"invoice_line_id": line, "amount": amount}]}
        note = created(client, "/api/v1/credit-notes", body)
        response = call(client, "POST", f"/api/v1/credit-notes/{note['id']}/approve")
        assert response.status_code == 200, response.text
        return response.json()

    refund = credited(paid, "100.00")  # 120.00 gross with 20 % tax
    assert (refund["amount_due"], refund["payment_status"], refund["amount_paid"]) == ("120.00", "unpaid", "0.00")
    assert refund["payment_reference"] is None
    absorbed = credited(partly, "100.00")
    assert (absorbed["amount_due"], absorbed["payment_status"]) == ("0.00", "paid")
    assert (invoice(client, partly["id"])["amount_due"], invoice(client, paid["id"])["amount_due"]) == ("152.00", "0.00")
