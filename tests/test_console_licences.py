"""The console's licences: a licence made, given a service, updated and terminated through the
forms is the API's licence with the same figures; refusals are shown with the API's code and
write nothing; a read role sees no form."""

from __future__ import annotations

from datetime import date

from tests import factories
from tests.support.use_cases import bill, instant


def _licence_id(response) -> str:
    assert response.status_code == 303, response.text
    return response.headers["location"].removeprefix("/console/licences/").split("?")[0]


def test_the_new_licence_form_offers_the_accounts_and_preselects_the_one_asked_for(console, database):
    acme = factories.account(database, name="Acme Ltd")
    factories.account(database, name="Globex")

    page = console("billing").get(f"/console/licences?account_id={acme.id}")

    assert page.status_code == 200
    assert "<h2 id=\"h-new\">New licence</h2>" in page.text
    assert f'<option value="{acme.id}" selected>Acme Ltd ({acme.id}, EUR)</option>' in page.text
    assert ">Globex (" in page.text


def test_a_licence_made_through_the_form_is_the_apis_licence(console, client, database):
    acme = factories.account(database)

    response = console("billing").submit("/console/licences", {
        "account_id": str(acme.id), "start_date": "2027-01-01", "end_date": "2027-12-31", "renewal_term": "P1Y",
        "billing_anchor_day": "15", "status": "active", "auto_renew": "true", "auto_approve": "false",
    })

    licence_id = _licence_id(response)
    assert response.headers["location"] == f"/console/licences/{licence_id}?done=created"
    licence = client.get(f"/api/v1/licences/{licence_id}").json()
    assert {name: licence[name] for name in ("account_id", "start_date", "end_date", "auto_renew", "renewal_term", "billing_anchor_day",
                                             "auto_approve", "status")} == {
        "account_id": str(acme.id), "start_date": "2027-01-01", "end_date": "2027-12-31", "auto_renew": True, "renewal_term": "P1Y",
        "billing_anchor_day": 15, "auto_approve": False, "status": "active",
    }
    page = console("billing").get(response.headers["location"])
    assert page.status_code == 200
    assert "The licence was created." in page.text
    listed = console("read").get(f"/console/licences?account_id={acme.id}")
    assert f'href="/console/licences/{licence_id}"' in listed.text and "2027-12-31" in listed.text


def test_a_licence_the_api_refuses_is_shown_with_its_code_and_nothing_is_written(console, client, database):
    acme = factories.account(database)

    missing_date = console("billing").submit("/console/licences", {"account_id": str(acme.id), "billing_anchor_day": "40"})
    unknown_account = console("billing").submit("/console/licences", {"account_id": "999", "start_date": "2027-01-01"})

    assert missing_date.status_code == 422
    assert "validation_error" in missing_date.text and "billing_anchor_day" in missing_date.text and "start_date" in missing_date.text
    assert unknown_account.status_code == 422
    assert "unknown_reference" in unknown_account.text
    assert client.get("/api/v1/licences").json()["items"] == []


def test_a_service_added_through_the_form_is_the_apis_service(console, client, database):
    acme = factories.account(database)
    desk = factories.plain_service(database, price="310.00", name="Dedicated desk")
    licence = factories.licence(database, acme.id, date(2027, 1, 1))

    page = console("billing").get(f"/console/licences/{licence.id}")
    assert f'<option value="{desk.id}">Dedicated desk — 310.00 EUR</option>' in page.text
    response = console("billing").submit(f"/console/licences/{licence.id}/services", {
        "product_id": str(desk.id), "quantity": "2", "unit_price": "", "schedule": "monthly", "from_date": "2027-02-01",
        "to_date": "", "max_rollover": "", "prorate": "true", "prorate_credits": "false",
    })

    assert response.status_code == 303
    assert response.headers["location"] == f"/console/licences/{licence.id}?done=service"
    services = client.get(f"/api/v1/licences/{licence.id}/services").json()["items"]
    assert [(service["product_id"], service["quantity"], service["unit_price"], service["schedule"], service["from_date"],
             service["to_date"], service["prorate"]) for service in services] == [(str(desk.id), "2", None, "monthly", "2027-02-01", None, True)]
    shown = console("billing").get(response.headers["location"])
    assert "The service was added to the licence." in shown.text
    assert '<td class="number">2</td>' in shown.text
    assert "310.00 <span class=\"muted\">(the product's)</span>" in shown.text  # no price of its own: the product's, as the API lists it


def test_a_refused_service_is_shown_on_the_licence_and_nothing_is_written(console, client, database):
    acme = factories.account(database)
    licence = factories.licence(database, acme.id, date(2027, 1, 1))
    pounds = factories.plain_service(database, currency="GBP", name="London desk")

    response = console("billing").submit(f"/console/licences/{licence.id}/services", {"product_id": str(pounds.id), "schedule": "monthly"})

    assert response.status_code == 409
    assert "currency_mismatch" in response.text
    assert client.get(f"/api/v1/licences/{licence.id}/services").json()["items"] == []


def test_the_terminate_form_terminates_the_licence(console, client, database):
    acme = factories.account(database)
    licence = factories.licence(database, acme.id, date(2027, 1, 1))

    response = console("billing").submit(f"/console/licences/{licence.id}/terminate", {"effective_date": "2027-03-31"})

    assert response.status_code == 303
    assert response.headers["location"] == f"/console/licences/{licence.id}?done=terminated"
    shown = client.get(f"/api/v1/licences/{licence.id}").json()
    assert (shown["status"], shown["terminated_on"]) == ("terminated", "2027-03-31")
    page = console("billing").get(response.headers["location"])
    assert "The licence was terminated." in page.text and "2027-03-31 (last active day)" in page.text


def test_a_termination_before_the_start_is_refused_and_nothing_changes(console, client, database):
    acme = factories.account(database)
    licence = factories.licence(database, acme.id, date(2027, 1, 1))

    response = console("billing").submit(f"/console/licences/{licence.id}/terminate", {"effective_date": "2026-12-31"})

    assert response.status_code == 422
    assert "validation_error" in response.text and "effective_date is before the licence&#39;s start_date" in response.text
    assert client.get(f"/api/v1/licences/{licence.id}").json()["status"] == "active"


def test_the_update_form_changes_the_licence_and_can_make_it_open_ended(console, client, database):
    acme = factories.account(database)
    licence = factories.licence(database, acme.id, date(2027, 1, 1), date(2027, 12, 31))

    changed = console("billing").submit(f"/console/licences/{licence.id}/update", {
        "end_date": "2028-06-30", "billing_anchor_day": "1", "status": "active", "auto_renew": "true", "auto_approve": "true",
    })
    after_change = client.get(f"/api/v1/licences/{licence.id}").json()
    cleared = console("billing").submit(f"/console/licences/{licence.id}/update", {"end_date": "2028-06-30", "open_ended": "true"})

    assert changed.status_code == 303 and changed.headers["location"] == f"/console/licences/{licence.id}?done=updated"
    assert (after_change["end_date"], after_change["auto_renew"], after_change["auto_approve"]) == ("2028-06-30", True, True)
    assert cleared.status_code == 303
    assert client.get(f"/api/v1/licences/{licence.id}").json()["end_date"] is None


def test_a_new_anchor_day_on_a_billed_licence_is_refused_with_the_apis_code(console, client, database):
    acme = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, acme.id, date(2026, 12, 1))
    factories.service(database, licence.id, desk.id)
    bill(database, as_of=date(2026, 12, 1), now=instant("2026-12-01T06:00:00Z"))

    response = console("billing").submit(f"/console/licences/{licence.id}/update", {"billing_anchor_day": "15", "status": "active"})

    assert response.status_code == 409
    assert "licence_already_billed" in response.text
    assert 'value="15"' in response.text  # the form as it was filled in
    assert client.get(f"/api/v1/licences/{licence.id}").json()["billing_anchor_day"] == 1


def test_a_read_role_sees_licences_without_forms_and_may_not_post(console, client, database):
    acme = factories.account(database)
    licence = factories.licence(database, acme.id, date(2027, 1, 1))
    desk = factories.plain_service(database)
    reader = console("read")

    for path in ("/console/licences", f"/console/licences/{licence.id}"):
        page = reader.get(path)
        assert page.status_code == 200
        assert 'method="post"' not in page.text.split("</header>", 1)[1]
    assert reader.submit("/console/licences", {"account_id": str(acme.id), "start_date": "2027-01-01"}).status_code == 403
    assert reader.submit(f"/console/licences/{licence.id}/services", {"product_id": str(desk.id), "schedule": "monthly"}).status_code == 403
    assert reader.submit(f"/console/licences/{licence.id}/terminate", {"effective_date": "2027-02-01"}).status_code == 403
    assert [item["id"] for item in client.get("/api/v1/licences").json()["items"]] == [str(licence.id)]
    assert client.get(f"/api/v1/licences/{licence.id}/services").json()["items"] == []
    assert client.get(f"/api/v1/licences/{licence.id}").json()["status"] == "active"


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(console, client, database):
    acme = factories.account(database)
    licence = factories.licence(database, acme.id, date(2027, 1, 1))
    billing = console("billing")

    created = billing.post("/console/licences", data={"account_id": str(acme.id), "start_date": "2027-01-01"})
    terminated = billing.post(f"/console/licences/{licence.id}/terminate", data={"effective_date": "2027-02-01", "csrf_token": "forged"})

    assert (created.status_code, terminated.status_code) == (403, 403)
    assert [item["status"] for item in client.get("/api/v1/licences").json()["items"]] == ["active"]


def test_the_licences_list_pages_with_the_apis_cursor(console, database):
    acme = factories.account(database)
    for _ in range(52):
        factories.licence(database, acme.id, date(2027, 1, 1))

    first = console("read").get("/console/licences")

    assert first.text.count('href="/console/licences/') == 50
    assert 'rel="next"' in first.text
    following = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert console("read").get(following).text.count('href="/console/licences/') == 2
