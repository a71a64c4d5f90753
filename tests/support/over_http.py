"""The worked examples' helpers through the HTTP API (API.md): every call runs at a frozen moment
(freezegun), so that "now" is the moment the example speaks of.

A test using these makes one unfrozen request before its first frozen one: a module imports the
autouse fixture ``routes_resolved_before_the_clock_is_frozen`` below for that. FastAPI resolves a
route's annotations on the first request, and under freezegun ``datetime`` is a fake class that
pydantic refuses.

A module whose calls run at another moment by default takes its own ``call, created = at(MOMENT)``;
``refused_with`` checks any refusal (status, problem+json, code)."""

from __future__ import annotations

import pytest
from freezegun import freeze_time

SETUP = "2026-12-01T09:00:00Z"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def routes_resolved_before_the_clock_is_frozen(request):
    """FastAPI resolves a route's annotations on its first request; under freezegun ``datetime``
    is a fake class that pydantic refuses, so one unfrozen request (a 404) resolves them all
    (only for the tests that use the API: the ``client`` fixture)."""
    if "client" in request.fixturenames:
        assert request.getfixturevalue("client").get("/api/v1/no-such-resource").status_code == 404


def at(default_moment: str):
    """``call, created`` whose ``moment`` is ``default_moment`` unless given."""

    def call(client, method: str, path: str, moment: str = default_moment, **kwargs):
        with freeze_time(moment):
            return client.request(method, path, **kwargs)

    def created(client, path: str, body: dict, moment: str = default_moment) -> dict:
        response = call(client, "POST", path, moment, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    return call, created


call, created = at(SETUP)


def refused_with(response, status: int, code: str) -> dict:
    """The problem+json body of a refusal with ``status`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code, body
    return body


def account(client, name: str = "Acme Ltd") -> str:
    return created(client, "/api/v1/accounts", {"name": name, "email": "billing@acme.test", "currency": "EUR"})["id"]


def business_unit(client, account_id: str, name: str) -> str:
    return created(client, f"/api/v1/accounts/{account_id}/business-units", {"name": name})["id"]


def credit_pack(client, credits: str, lifetime: str, price: str = "100.00") -> str:
    body = {"kind": "credit_pack", "name": f"{credits} credits ({lifetime})", "price": price, "currency": "EUR",
            "tax_rate": "20", "credits": credits, "lifetime": lifetime}
    return created(client, "/api/v1/products", body)["id"]


def licence(client, account_id: str, start: str = "2027-01-01", end: str = "2027-12-31") -> str:
    return created(client, "/api/v1/licences", {"account_id": account_id, "start_date": start, "end_date": end})["id"]


def service(client, licence_id: str, product_id: str, schedule: str, from_date: str, to_date: str | None = None, **values) -> str:
    body = {"product_id": product_id, "quantity": "1", "schedule": schedule, "from_date": from_date, "to_date": to_date, **values}
    return created(client, f"/api/v1/licences/{licence_id}/services", body)["id"]


def billing_run(client, as_of: str, moment: str) -> dict:
    response = call(client, "POST", "/api/v1/billing-runs", moment, json={"as_of": as_of})
    assert response.status_code == 200, response.text
    return response.json()


def invoices(client, licence_id: str, moment: str, status: str | None = None) -> list[dict]:
    params = {"licence_id": licence_id} | ({"status": status} if status else {})
    response = call(client, "GET", "/api/v1/invoices", moment, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def approve(client, invoice_id: str, moment: str) -> dict:
    response = call(client, "POST", f"/api/v1/invoices/{invoice_id}/approve", moment)
    assert response.status_code == 200, response.text
    return response.json()


def bill_and_approve(client, licence_id: str, as_of: str, moment: str) -> dict:
    """Bill one period (exactly one new invoice) and approve it at ``moment``."""
    assert billing_run(client, as_of, moment) == {"as_of": as_of, "invoices_created": 1, "invoices_approved": 0, "failed": []}
    (draft,) = invoices(client, licence_id, moment, status="draft")
    return approve(client, draft["id"], moment)


def consume(client, account_id: str, credits: str, moment: str, business_unit_id: str | None = None):
    body = {"credits": credits} | ({"business_unit_id": business_unit_id} if business_unit_id else {})
    return call(client, "POST", f"/api/v1/accounts/{account_id}/consumptions", moment, json=body)


def consumed(client, account_id: str, credits: str, moment: str, business_unit_id: str | None = None) -> list[dict]:
    response = consume(client, account_id, credits, moment, business_unit_id)
    assert response.status_code == 201, response.text
    return response.json()["draws"]


def refused(client, account_id: str, credits: str, moment: str, business_unit_id: str | None = None) -> dict:
    """A consumption refused for too few credits (409 ``insufficient_credits``): the amounts it names."""
    problem = refused_with(consume(client, account_id, credits, moment, business_unit_id), 409, "insufficient_credits")
    return {"credits_requested": problem["credits_requested"], "credits_available": problem["credits_available"]}


def grants(client, account_id: str, moment: str) -> list[dict]:
    response = call(client, "GET", f"/api/v1/accounts/{account_id}/grants", moment)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def ledger(client, account_id: str, moment: str, **params) -> list[dict]:
    response = call(client, "GET", f"/api/v1/accounts/{account_id}/ledger", moment, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def credits_at(client, account_id: str, at: str) -> dict:
    response = call(client, "GET", f"/api/v1/accounts/{account_id}/credits", at, params={"at": at})
    assert response.status_code == 200, response.text
    return response.json()


def snapshot(client, account_id: str, moment: str) -> tuple[list[dict], list[dict]]:
    return ledger(client, account_id, moment), grants(client, account_id, moment)


def monthly_pack_licence(client, lifetime: str) -> tuple[str, str]:
    """SPEC 10.1/10.2: a pack of 10 credits, a monthly service from 2027-01-01 to 2027-12-31."""
    account_id = account(client)
    pack_id = credit_pack(client, "10", lifetime)
    licence_id = licence(client, account_id)
    service(client, licence_id, pack_id, "monthly", "2027-01-01", "2027-12-31")
    return account_id, licence_id

