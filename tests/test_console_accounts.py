"""The console's accounts pages (issue 16): the list with its search and a new account, and an
account's page whose figures are the API's, with the changes an operator makes there. Each
change goes through the API's route: a refusal shows the API's code and writes nothing; a role
that may not make it sees no form and is refused; a form without its CSRF token is refused."""

from __future__ import annotations

import re
from html import unescape

import pytest
from freezegun import freeze_time
from sqlalchemy import text

from tests import factories

NOW = "2027-01-15T10:00:00Z"
# What a refused change must leave exactly as it was (the outbox included).
WATCHED_TABLES = (
    "accounts", "business_units", "members", "grants", "ledger_entries", "consumptions", "adjustments", "transfers", "invoices", "events",
)


@pytest.fixture
def api(client):
    """The API as the billing role, every route resolved before a test freezes the clock."""
    return client


@pytest.fixture
def pages(app, api):
    """The console's accounts routes resolved unfrozen (as the API's are by ``client``): each
    answers a visitor without a session with the sign-in page, and nothing is written."""
    from tests.support.console import page_client

    anonymous = page_client(app)
    for path in ("/console/accounts", "/console/accounts/1"):
        assert anonymous.get(path).status_code == 303
    for action in ("", "/1/business-units", "/1/members", "/1/adjustments", "/1/top-ups", "/1/transfers", "/1/reverse"):
        assert anonymous.post(f"/console/accounts{action}", data={}).status_code == 303


def everything(database) -> dict[str, list[tuple]]:
    with database.read() as session:
        connection = session.connection()
        return {table: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))] for table in WATCHED_TABLES}


def new_account(api, name: str, email: str, currency: str = "EUR") -> str:
    response = api.post("/api/v1/accounts", json={"name": name, "email": email, "currency": currency})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def add_credits(api, account_id: str, credits: str, reason: str = "Welcome bonus") -> None:
    response = api.post(f"/api/v1/accounts/{account_id}/adjustments", json={"kind": "add", "credits": credits, "reason": reason})
    assert response.status_code == 201, response.text


def consume(api, account_id: str, credits: str) -> str:
    response = api.post(f"/api/v1/accounts/{account_id}/consumptions", json={"credits": credits})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def figure(html: str, name: str) -> str:
    found = re.search(rf'data-figure="{re.escape(name)}"[^>]*>([^<]*)<', html)
    assert found, f"no figure {name}"
    return found.group(1).strip()


def account_links(html: str) -> list[str]:
    """The names of the accounts listed, in order."""
    return [unescape(name) for name in re.findall(r'<a href="/console/accounts/\d+">([^<]+)</a>', html)]


def problem_code(html: str) -> str:
    found = re.search(r'<code class="code">([^<]+)</code>', html)
    assert found, "no problem shown"
    return found.group(1)


def api_get(api, path: str) -> dict:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


# --- The list -------------------------------------------------------------------------------------


def test_the_list_shows_each_account_with_the_apis_remaining_credits_and_debt(console, api, pages):
    acme = new_account(api, "Acme Ltd", "billing@acme.test")
    new_account(api, "Globex", "accounts@globex.test", currency="USD")
    add_credits(api, acme, "12.5")

    response = console("read").get("/console/accounts")

    assert response.status_code == 200
    assert account_links(response.text) == ["Acme Ltd", "Globex"]
    listed = {account["id"]: account for account in api_get(api, "/api/v1/accounts")["items"]}
    assert figure(response.text, f"remaining-{acme}") == listed[acme]["remaining_credits"] == "12.50"
    assert figure(response.text, f"debt-{acme}") == listed[acme]["debt"] == "0.00"
    assert "accounts@globex.test" in response.text and "USD" in response.text


def test_searching_finds_accounts_by_name_or_email_in_any_case(console, api, pages):
    new_account(api, "Acme Ltd", "billing@acme.test")
    new_account(api, "Globex", "accounts@globex.test")
    new_account(api, "Initech", "finance@ACME-group.test")
    operator = console("read")

    assert account_links(operator.get("/console/accounts?q=ACME").text) == ["Acme Ltd", "Initech"]
    assert account_links(operator.get("/console/accounts?q=globex.TEST").text) == ["Globex"]
    nothing = operator.get("/console/accounts?q=umbrella")
    assert account_links(nothing.text) == [] and "No account matches this search." in nothing.text
    assert 'value="umbrella"' in nothing.text  # the search box keeps what was typed


def test_the_search_box_searches_as_one_types_and_without_javascript(console, pages):
    page = console("read").get("/console/accounts").text

    assert 'hx-get="/console/accounts" hx-trigger="input changed delay:300ms, search" hx-target="#account-results" ' \
           'hx-select="#account-results" hx-push-url="true"' in page
    assert re.search(r'<form method="get" action="/console/accounts" role="search".*?<button type="submit">Search</button>', page, re.S)


def test_an_htmx_search_answers_only_the_results(console, api, pages):
    new_account(api, "Acme Ltd", "billing@acme.test")
    new_account(api, "Globex", "accounts@globex.test")

    response = console("read").get("/console/accounts?q=glob", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.text.strip().startswith('<div id="account-results">')
    assert "<h1>" not in response.text and "<html" not in response.text
    assert account_links(response.text) == ["Globex"]


def test_a_boosted_request_gets_the_whole_page(console, pages):
    response = console("read").get("/console/accounts", headers={"HX-Request": "true", "HX-Boosted": "true"})

    assert "<h1>Accounts</h1>" in response.text and "<html" in response.text


def test_the_list_pages_with_the_apis_cursor(console, api, pages):
    names = ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    ids = [new_account(api, name, f"{name.lower()}@example.test") for name in names]
    operator = console("read")

    first = operator.get("/console/accounts?limit=2")
    assert account_links(first.text) == ["Alpha", "Bravo"]
    next_link = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', first.text).group(1)
    assert unescape(next_link) == f"/console/accounts?limit=2&cursor={ids[1]}"

    second = operator.get(unescape(next_link))
    assert account_links(second.text) == ["Charlie", "Delta"]
    assert "First page" in second.text
    last = operator.get(f"/console/accounts?limit=2&cursor={ids[3]}")
    assert account_links(last.text) == ["Echo"] and 'rel="next"' not in last.text
    assert operator.get("/console/accounts?cursor=abc").status_code == 422


def test_an_operator_creates_an_account_through_the_form_and_the_api_has_it(console, api, pages):
    operator = console("billing")
    form = operator.get("/console/accounts").text
    for label in ("Name", "E-mail", "Currency", "Address", "Country", "Tax ID"):
        assert re.search(rf'<label for="f-[a-z_]+">{label}</label>', form), label
    assert "<h2" in form and "New account</h2>" in form and 'value="EUR"' in form

    response = operator.submit("/console/accounts", {
        "name": "Umbrella Corp", "email": "ap@umbrella.test", "currency": "EUR", "address": "1 Main Street\nRaccoon City",
        "country": "US", "tax_id": "",
    })

    assert response.status_code == 303
    account_id = re.fullmatch(r"/console/accounts/(\d+)\?done=created", response.headers["location"]).group(1)
    created = api_get(api, f"/api/v1/accounts/{account_id}")
    assert (created["name"], created["email"], created["currency"], created["address"], created["country"], created["tax_id"]) == (
        "Umbrella Corp", "ap@umbrella.test", "EUR", "1 Main Street\nRaccoon City", "US", None,
    )
    shown = operator.get(response.headers["location"]).text
    assert "<h1>Umbrella Corp</h1>" in shown and "Account created." in shown


def test_a_refused_new_account_shows_the_apis_code_keeps_the_form_and_creates_nothing(console, database, pages):
    operator = console("billing")
    before = everything(database)

    response = operator.submit("/console/accounts", {"name": "Umbrella Corp", "email": "not an address", "currency": "eur"})

    assert response.status_code == 422
    assert problem_code(response.text) == "validation_error"
    assert "<code>currency</code>" in response.text and "<code>email</code>" in response.text
    assert 'value="Umbrella Corp"' in response.text
    assert everything(database) == before


def test_roles_that_may_not_create_accounts_see_no_form(console, pages):
    for role in ("read", "bookings"):
        assert "New account" not in console(role).get("/console/accounts").text
    assert "New account" in console("admin").get("/console/accounts").text


# --- One account ----------------------------------------------------------------------------------


def test_the_account_page_shows_the_apis_credit_figures_after_a_top_up(console, api, database, pages):
    with freeze_time(NOW):
        account_id = new_account(api, "Acme Ltd", "billing@acme.test")
        pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
        operator = console("billing")

        response = operator.submit(
            f"/console/accounts/{account_id}/top-ups", {"product_id": str(pack.id), "quantity": "2", "business_unit_id": "", "approve": "true"},
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/console/accounts/{account_id}?done=top-up"
        assert "Top-up invoiced." in operator.get(response.headers["location"]).text
    with freeze_time("2027-01-20T10:00:00Z"):  # within 30 days of the pack's expiry
        consume(api, account_id, "3")
        page = console("read").get(f"/console/accounts/{account_id}").text
        credits = api_get(api, f"/api/v1/accounts/{account_id}/credits")

    assert figure(page, "remaining") == credits["remaining"] == "17.00"
    assert figure(page, "used") == credits["used"] == "3.00"
    assert figure(page, "held") == credits["held"] == "0.00"
    assert figure(page, "debt") == credits["debt"] == "0.00"
    assert figure(page, "granted") == credits["granted"] == "20.00"
    assert figure(page, "remaining-unrestricted") == credits["unrestricted"]["remaining"]
    assert credits["expiring"] == [{"credits": "17.00", "expires_at": "2027-02-15T00:00:00+00:00"}]
    assert '<td>2027-02-15T00:00:00+00:00</td><td class="number">17.00</td>' in page
    (invoice,) = api_get(api, f"/api/v1/invoices?account_id={account_id}")["items"]
    assert invoice["status"] == "approved"
    assert f'<a href="/console/invoices/{invoice["id"]}">{invoice["number"]}</a>' in page
    (grant,) = api_get(api, f"/api/v1/accounts/{account_id}/grants")["items"]
    assert grant["remaining"] == "17.00" and f"<td>{grant['id']}</td>" in page
    for heading in ("Credits", "Business units", "Members", "Licences", "Grants", "Ledger", "Invoices", "Holds", "Payments"):
        assert re.search(rf'<h2 id="h-[a-z]+">{heading}</h2>', page), heading


def test_the_account_page_shows_figures_of_each_business_unit_and_links_its_licences(console, api, database, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    unit = factories.business_unit(database, int(account_id), "Cardiology")
    licence = factories.licence(database, int(account_id), factories.SETUP_TIME.date())
    response = api.post(f"/api/v1/accounts/{account_id}/adjustments",
                        json={"kind": "add", "credits": "4", "reason": "Unit bonus", "business_unit_id": str(unit.id)})
    assert response.status_code == 201, response.text

    page = console("read").get(f"/console/accounts/{account_id}").text

    credits = api_get(api, f"/api/v1/accounts/{account_id}/credits")
    assert figure(page, f"remaining-unit-{unit.id}") == credits["business_units"][0]["remaining"] == "4.00"
    assert figure(page, "remaining") == credits["remaining"] == "4.00"
    assert f'<a href="/console/licences/{licence.id}">' in page


def test_adjusting_credits_adds_and_deducts_them(console, api, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    operator = console("billing")

    added = operator.submit(
        f"/console/accounts/{account_id}/adjustments", {"kind": "add", "credits": "10", "reason": "Welcome bonus", "lifetime": ""},
    )
    deducted = operator.submit(f"/console/accounts/{account_id}/adjustments", {"kind": "deduct", "credits": "2.5", "reason": "Correction"})

    assert added.status_code == deducted.status_code == 303
    assert deducted.headers["location"] == f"/console/accounts/{account_id}?done=adjustment"
    assert api_get(api, f"/api/v1/accounts/{account_id}/credits")["remaining"] == "7.50"
    page = operator.get(deducted.headers["location"]).text
    assert figure(page, "remaining") == "7.50" and "Credits adjusted." in page


def test_a_deduction_past_the_credits_shows_insufficient_credits_and_writes_nothing(console, api, database, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    add_credits(api, account_id, "5")
    before = everything(database)

    response = console("billing").submit(f"/console/accounts/{account_id}/adjustments", {"kind": "deduct", "credits": "8", "reason": "Correction"})

    assert response.status_code == 409
    assert problem_code(response.text) == "insufficient_credits"
    assert "<h1>Acme Ltd</h1>" in response.text
    assert 'id="adjust-credits" name="credits" type="text" inputmode="decimal" required value="8"' in response.text
    assert everything(database) == before


def test_business_units_and_members_are_added_from_the_account_page(console, api, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    operator = console("billing")

    unit = operator.submit(f"/console/accounts/{account_id}/business-units", {"name": "Cardiology"})
    member = operator.submit(f"/console/accounts/{account_id}/members", {"name": "Ada Lovelace", "email": "ada@acme.test"})

    assert unit.headers["location"] == f"/console/accounts/{account_id}?done=business-unit"
    assert member.headers["location"] == f"/console/accounts/{account_id}?done=member"
    assert [row["name"] for row in api_get(api, f"/api/v1/accounts/{account_id}/business-units")["items"]] == ["Cardiology"]
    members = api_get(api, f"/api/v1/accounts/{account_id}/members")["items"]
    assert [(row["name"], row["email"]) for row in members] == [("Ada Lovelace", "ada@acme.test")]
    page = operator.get(f"/console/accounts/{account_id}").text
    assert "<td>Cardiology</td>" in page and "<td>Ada Lovelace</td>" in page


def test_a_business_unit_named_twice_shows_the_conflict_and_writes_nothing(console, api, database, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    factories.business_unit(database, int(account_id), "Cardiology")
    before = everything(database)

    response = console("billing").submit(f"/console/accounts/{account_id}/business-units", {"name": "Cardiology"})

    assert response.status_code == 409 and problem_code(response.text) == "conflict"
    assert everything(database) == before


def test_transferring_credits_moves_them_to_the_other_account(console, api, pages):
    source = new_account(api, "Acme Ltd", "billing@acme.test")
    target = new_account(api, "Acme Subsidiary", "billing@acme-sub.test")
    add_credits(api, source, "10")

    response = console("billing").submit(f"/console/accounts/{source}/transfers", {
        "to_account_id": target, "from_business_unit_id": "", "to_business_unit_id": "", "credits": "4", "reason": "Move to the subsidiary",
    })

    assert response.headers["location"] == f"/console/accounts/{source}?done=transfer"
    assert api_get(api, f"/api/v1/accounts/{source}/credits")["remaining"] == "6.00"
    assert api_get(api, f"/api/v1/accounts/{target}/credits")["remaining"] == "4.00"


def test_a_transfer_to_another_currency_shows_the_mismatch_and_writes_nothing(console, api, database, pages):
    source = new_account(api, "Acme Ltd", "billing@acme.test")
    target = new_account(api, "Acme Inc", "billing@acme-us.test", currency="USD")
    add_credits(api, source, "10")
    before = everything(database)

    response = console("billing").submit(f"/console/accounts/{source}/transfers", {"to_account_id": target, "credits": "4", "reason": "Move"})

    assert response.status_code == 409 and problem_code(response.text) == "currency_mismatch"
    assert everything(database) == before


def test_reversing_a_consumption_from_the_ledger_gives_its_credits_back(console, api, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    add_credits(api, account_id, "10")
    consumption_id = consume(api, account_id, "3")
    operator = console("bookings")
    page = operator.get(f"/console/accounts/{account_id}").text
    assert f'aria-label="Reverse consumption {consumption_id}">Reverse</button>' in page

    response = operator.submit(f"/console/accounts/{account_id}/reverse", {"consumption_id": consumption_id})

    assert response.headers["location"] == f"/console/accounts/{account_id}?done=reversal"
    assert api_get(api, f"/api/v1/consumptions/{consumption_id}")["status"] == "reversed"
    after = operator.get(response.headers["location"]).text
    assert figure(after, "remaining") == "10.00"
    assert "Reverse consumption" not in after and '<span class="status">reversed</span>' in after


def test_a_consumption_of_another_account_is_not_reversed_from_this_page(console, api, database, pages):
    acme = new_account(api, "Acme Ltd", "billing@acme.test")
    globex = new_account(api, "Globex", "accounts@globex.test")
    add_credits(api, globex, "10")
    consumption_id = consume(api, globex, "3")
    before = everything(database)

    response = console("bookings").submit(f"/console/accounts/{acme}/reverse", {"consumption_id": consumption_id})

    assert response.status_code == 404 and problem_code(response.text) == "not_found"
    assert everything(database) == before


def test_the_ledger_filters_by_kind_and_dates(console, api, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    with freeze_time("2027-01-10T09:00:00Z"):
        add_credits(api, account_id, "10")
    with freeze_time("2027-01-12T09:00:00Z"):
        consume(api, account_id, "1")
    with freeze_time("2027-01-14T09:00:00Z"):
        consume(api, account_id, "2")
        operator = console("read")

        def entries(query: str) -> list[str]:
            page = operator.get(f"/console/accounts/{account_id}?{query}")
            assert page.status_code == 200
            ledger = page.text.split('data-list="ledger"')[1].split("</table>")[0] if 'data-list="ledger"' in page.text else ""
            return re.findall(r"<td>(2027-[^<]+)</td><td>([a-z ]+)</td><td class=\"number\">([^<]+)</td>", ledger)

        assert entries("") == [("2027-01-10T09:00:00+00:00", "adjust add", "10.00"), ("2027-01-12T09:00:00+00:00", "consume", "-1.00"),
                               ("2027-01-14T09:00:00+00:00", "consume", "-2.00")]
        assert entries("kind=consume") == [("2027-01-12T09:00:00+00:00", "consume", "-1.00"), ("2027-01-14T09:00:00+00:00", "consume", "-2.00")]
        assert entries("since=2027-01-11&until=2027-01-12") == [("2027-01-12T09:00:00+00:00", "consume", "-1.00")]
        assert entries("kind=adjust_add&since=2027-01-11") == []
        refused = operator.get(f"/console/accounts/{account_id}?kind=gift")
    assert refused.status_code == 200 and problem_code(refused.text) == "validation_error"


def test_the_ledger_pages_with_the_apis_cursor(console, api, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    for credits in ("1", "2", "3"):
        add_credits(api, account_id, credits)
    ledger = api_get(api, f"/api/v1/accounts/{account_id}/ledger?limit=2")
    operator = console("read")

    first = operator.get(f"/console/accounts/{account_id}?kind=adjust_add&limit=2").text
    next_link = unescape(re.search(r'<a href="([^"]+)" rel="next">Next page</a>', first).group(1))
    assert next_link == f"/console/accounts/{account_id}?kind=adjust_add&limit=2&cursor={ledger['next_cursor']}"
    second = operator.get(next_link).text
    assert re.findall(r'<td>adjust add</td><td class="number">([^<]+)</td>', second) == ["3.00"]


def test_a_read_role_sees_no_action_forms_and_its_posts_are_refused(console, api, database, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    add_credits(api, account_id, "10")
    consumption_id = consume(api, account_id, "3")
    reader = console("read")

    page = reader.get(f"/console/accounts/{account_id}").text
    assert 'method="post"' not in page.split("</header>")[1]
    for button in ("Adjust credits</button>", "Top up</button>", "Transfer credits</button>", "Add business unit</button>", "Add member</button>",
                   ">Reverse</button>"):
        assert button not in page
    before = everything(database)
    for action, form in (
        ("adjustments", {"kind": "add", "credits": "5", "reason": "Bonus"}), ("business-units", {"name": "Cardiology"}),
        ("members", {"name": "Ada"}), ("transfers", {"to_account_id": account_id, "credits": "1", "reason": "Move"}),
        ("top-ups", {"product_id": "1"}), ("reverse", {"consumption_id": consumption_id}),
    ):
        response = reader.submit(f"/console/accounts/{account_id}/{action}", form)
        assert response.status_code == 403, action
        assert problem_code(response.text) == "forbidden"
    assert reader.submit("/console/accounts", {"name": "Umbrella", "email": "ap@umbrella.test", "currency": "EUR"}).status_code == 403
    assert everything(database) == before


def test_a_bookings_role_may_reverse_but_not_adjust(console, api, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    add_credits(api, account_id, "10")
    consume(api, account_id, "3")

    page = console("bookings").get(f"/console/accounts/{account_id}").text

    assert ">Reverse</button>" in page
    assert "Adjust credits</button>" not in page and "Top up</button>" not in page
    assert 'id="h-invoices"' not in page and 'id="h-payments"' not in page  # the books are not for this role


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(console, api, database, pages):
    account_id = new_account(api, "Acme Ltd", "billing@acme.test")
    operator = console("admin")
    before = everything(database)

    for path, form in (
        (f"/console/accounts/{account_id}/adjustments", {"kind": "add", "credits": "5", "reason": "Bonus"}),
        ("/console/accounts", {"name": "Umbrella", "email": "ap@umbrella.test", "currency": "EUR"}),
    ):
        assert operator.post(path, data=form).status_code == 403
        assert operator.post(path, data={"csrf_token": "forged", **form}).status_code == 403
    assert everything(database) == before


def test_a_missing_account_is_the_apis_not_found(console, pages):
    operator = console("admin")

    for path in ("/console/accounts/999999", "/console/accounts/not-an-id"):
        response = operator.get(path)
        assert response.status_code == 404, path
        assert problem_code(response.text) == "not_found"
    response = operator.submit("/console/accounts/999999/adjustments", {"kind": "add", "credits": "5", "reason": "Bonus"})
    assert response.status_code == 404 and problem_code(response.text) == "not_found"
