"""Issue 12, where an operator tripped over the API: unknown query parameters, searching and
listing accounts, invoice filters and CSV, the liability report's names, malformed bodies, a
forgotten tax rate, and a refused booking that says which pool it asked."""

from __future__ import annotations

import csv
import io

import pytest

from tests.support.over_http import at, refused_with, routes_resolved_before_the_clock_is_frozen  # noqa: F401 - the autouse fixture

TODAY = "2027-01-01T09:00:00Z"

call, created = at(TODAY)


def account(client, name: str, email: str = "billing@acme.test") -> str:
    return created(client, "/api/v1/accounts", {"name": name, "email": email, "currency": "EUR"})["id"]


def pack(client, credits: str = "10", lifetime: str = "P1M") -> str:
    body = {"kind": "credit_pack", "name": f"{credits} credits", "price": "100.00", "currency": "EUR", "tax_rate": "20",
            "credits": credits, "lifetime": lifetime}
    return created(client, "/api/v1/products", body)["id"]


def top_up(client, account_id: str, product_id: str, unit: str | None = None) -> dict:
    return created(client, f"/api/v1/accounts/{account_id}/top-ups", {"product_id": product_id, "approve": True, "business_unit_id": unit})


@pytest.mark.parametrize(("path", "parameter"), [
    ("/api/v1/accounts?q=Ada&colour=blue", "colour"),
    ("/api/v1/invoices?format=xlsx", "format"),
    ("/api/v1/licences?sort=name", "sort"),
    ("/api/v1/accounts/1/credits?when=2027-01-01", "when"),
])
def test_unknown_query_parameters_are_refused_naming_them(client, path, parameter):
    account(client, "Acme Ltd")
    problem = refused_with(call(client, "GET", path), 422, "validation_error")
    assert parameter in problem["detail"]
    if parameter != "format":  # format is known: its value is what is wrong
        assert problem["errors"] == [{"field": parameter, "message": "unknown query parameter"}]


def test_accounts_are_found_by_name_or_email_in_any_case(client):
    ada = account(client, "Ada Lovelace Ltd", "ada@analytical.test")
    grace = account(client, "Grace & Co", "billing@hopper.test")
    account(client, "100% Coworking", "office@percent.test")

    def found(q: str) -> list[str]:
        response = call(client, "GET", "/api/v1/accounts", params={"q": q})
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert found("ada") == [ada]
    assert found("HOPPER") == [grace]
    assert found("%") == [found("100%")[0]] and len(found("%")) == 1  # % and _ are letters here, not wildcards
    assert found("_") == []
    assert found("nobody") == []


def test_accounts_are_listed_with_their_remaining_credits_and_debt(client):
    acme, globex = account(client, "Acme Ltd"), account(client, "Globex")
    top_up(client, acme, pack(client, credits="10"))
    created(client, f"/api/v1/accounts/{acme}/consumptions", {"credits": "3.50"})
    created(client, f"/api/v1/accounts/{globex}/consumptions", {"credits": "2.00", "allow_overdraft": True})

    items = {item["id"]: item for item in call(client, "GET", "/api/v1/accounts").json()["items"]}
    assert (items[acme]["remaining_credits"], items[acme]["debt"]) == ("6.50", "0.00")
    assert (items[globex]["remaining_credits"], items[globex]["debt"]) == ("0.00", "2.00")
    summary = call(client, "GET", f"/api/v1/accounts/{acme}/credits").json()
    assert summary["remaining"] == items[acme]["remaining_credits"]
    assert call(client, "GET", f"/api/v1/accounts/{acme}").json()["remaining_credits"] == "6.50"
    # Credits expired since (nothing recorded it yet) are not remaining.
    assert call(client, "GET", "/api/v1/accounts", "2027-02-01T09:00:00Z").json()["items"][0]["remaining_credits"] == "0.00"


def test_invoices_filter_by_issue_date_and_export_as_csv(client):
    acme = account(client, "Acme, \"the\" Ltd")
    product = pack(client)
    january = top_up(client, acme, product)
    february = call(client, "POST", f"/api/v1/accounts/{acme}/top-ups", "2027-02-03T09:00:00Z", json={"product_id": product}).json()

    def ids(**params) -> list[str]:
        response = call(client, "GET", "/api/v1/invoices", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids(issued_from="2027-02-01") == [february["id"]]
    assert ids(issued_to="2027-01-31") == [january["id"]]
    assert ids(issued_from="2027-01-01", issued_to="2027-02-03") == [january["id"], february["id"]]
    refused_with(call(client, "GET", "/api/v1/invoices", params={"issued_from": "2027-02-01", "issued_to": "2027-01-01"}), 422, "validation_error")

    response = call(client, "GET", "/api/v1/invoices", params={"format": "csv", "status": "approved"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(row["id"], row["number"], row["account_name"], row["gross"], row["issue_date"]) for row in rows] == [
        (january["id"], january["number"], "Acme, \"the\" Ltd", "120.00", "2027-01-01"),
    ]


def test_the_liability_report_names_the_accounts(client):
    acme = account(client, "Acme Ltd")
    top_up(client, acme, pack(client))
    report = call(client, "GET", "/api/v1/reports/liability").json()
    assert report["currencies"][0]["accounts"] == [{"account_id": acme, "account_name": "Acme Ltd", "credits": "10.00", "value": "100.00"}]


def test_malformed_json_says_where(client):
    body = b'{"name": "Acme",\n "email": "a@acme.test",\n "currency": }'
    problem = refused_with(
        call(client, "POST", "/api/v1/accounts", content=body, headers={"Content-Type": "application/json"}), 422, "validation_error",
    )
    assert problem["detail"] == "malformed JSON at line 3, column 14: Expecting value"
    assert problem["errors"] == [{"field": "body", "message": problem["detail"]}]


def test_a_post_without_a_body_says_it_needs_json(client):
    problem = refused_with(call(client, "POST", "/api/v1/accounts"), 422, "validation_error")
    assert problem["detail"] == "the request needs a JSON body (Content-Type: application/json)"


def test_a_product_needs_a_tax_rate(client):
    body = {"kind": "service", "name": "Desk", "price": "310.00", "currency": "EUR"}
    problem = refused_with(call(client, "POST", "/api/v1/products", json=body), 422, "validation_error")
    assert [error["field"] for error in problem["errors"]] == ["tax_rate"]
    assert created(client, "/api/v1/products", body | {"tax_rate": "0"})["tax_rate"] == "0.00"


def test_a_refused_booking_names_the_pool_it_asked_and_what_the_others_hold(client):
    acme = account(client, "Hospital")
    cardiology = created(client, f"/api/v1/accounts/{acme}/business-units", {"name": "Cardiology"})["id"]
    product = pack(client, credits="20")
    top_up(client, acme, product)
    for _ in range(5):
        top_up(client, acme, product, unit=cardiology)
    assert call(client, "GET", f"/api/v1/accounts/{acme}/credits").json()["remaining"] == "120.00"

    problem = refused_with(call(client, "POST", f"/api/v1/accounts/{acme}/consumptions", json={"credits": "30"}), 409, "insufficient_credits")
    assert problem["detail"] == (
        "30.00 credits asked for, 20.00 available in the account's unrestricted pool (no business unit); "
        "the account's other pools hold 100.00 more, which this may not use"
    )
    assert (problem["credits_requested"], problem["credits_available"]) == ("30.00", "20.00")
    unit = {"credits": "130", "business_unit_id": cardiology}
    problem = refused_with(call(client, "POST", f"/api/v1/accounts/{acme}/consumptions", json=unit), 409, "insufficient_credits")
    assert problem["detail"] == "130.00 credits asked for, 120.00 available in business unit 'Cardiology' and the account's unrestricted pool"
