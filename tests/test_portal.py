"""The member portal (API.md "In the browser": "/portal: members see their own account only,
after a sign-in link mailed to their address"), each on SQLite and PostgreSQL.

Acme Ltd (billing@acme.test, member Ada at ada@acme.test, business unit Berlin) buys three
packs of 10 credits for 14 days at 100.00 + 20 % VAT over the API: the first is paid and 3 of its credits
are used, the second (2 packs, for Berlin) is open, the third is credited in full. Other GmbH
has an invoice and a credit note of its own. Mail goes to the outbox folder; the links point at
https://members.example.test."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from freezegun import freeze_time
from lxml import html

from tests.support.console import CSRF, PageClient, page_client

PUBLIC_URL = "https://members.example.test"
LINK = re.compile(re.escape(PUBLIC_URL) + r"(/portal/sign-in/[A-Za-z0-9_-]+)")
SENT = "If this address belongs to an account, a sign-in link is on its way. It is valid for 15 minutes."
EXPIRED = "This sign-in link has expired or was already used"


@pytest.fixture
def outbox(set_operator_setting, tmp_path) -> Path:
    folder = tmp_path / "outbox"
    set_operator_setting("mail_outbox", str(folder))
    set_operator_setting("public_url", PUBLIC_URL)
    return folder


# -- helpers ------------------------------------------------------------------------------------


def ask_for_link(browser: PageClient, email: str):
    form = browser.get("/portal/sign-in")
    assert form.status_code == 200, form.text
    return browser.post("/portal/sign-in", data={"csrf_token": CSRF.search(form.text).group(1), "email": email})


def sign_in_mails(outbox: Path) -> list[EmailMessage]:
    paths = sorted(outbox.glob("sign-in-*.eml"), key=lambda path: path.stat().st_mtime_ns) if outbox.exists() else []
    return [message_from_bytes(path.read_bytes(), policy=default_policy) for path in paths]


def link_of(mail: EmailMessage) -> str:
    return LINK.search(mail.get_body(("plain",)).get_content()).group(1)


def newest_link(outbox: Path) -> str:
    return link_of(sign_in_mails(outbox)[-1])


def use_link(browser: PageClient, path: str):
    """What a member does with the link: open it, then press the button."""
    shown = browser.get(path)
    assert shown.status_code == 200, shown.text
    assert "Continue to my account" in shown.text
    return browser.post(path, data={"csrf_token": CSRF.search(shown.text).group(1)})


def member(app, outbox: Path, email: str = "ada@acme.test") -> PageClient:
    """A browser signed in to the portal with a link mailed to ``email``."""
    browser = page_client(app)
    assert ask_for_link(browser, email).status_code == 303
    response = use_link(browser, newest_link(outbox))
    assert (response.status_code, response.headers["location"]) == (303, "/portal"), response.text
    return browser


def created(client, path: str, body: dict) -> dict:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def approved(client, path: str) -> dict:
    response = client.post(path)
    assert response.status_code == 200, response.text
    return response.json()


def an_account(client, name: str, email: str) -> dict:
    return created(client, "/api/v1/accounts", {"name": name, "email": email, "currency": "EUR", "country": "DE"})


def acme(client) -> dict:
    account = an_account(client, "Acme Ltd", "billing@acme.test")
    base = f"/api/v1/accounts/{account['id']}"
    berlin = created(client, f"{base}/business-units", {"name": "Berlin"})
    created(client, f"{base}/members", {"name": "Ada Lovelace", "email": "ada@acme.test"})
    pack = created(
        client, "/api/v1/products",
        {"kind": "credit_pack", "name": "10 credits", "price": "100.00", "currency": "EUR", "tax_rate": "20", "credits": "10", "lifetime": "P14D"},
    )
    paid = created(client, f"{base}/top-ups", {"product_id": pack["id"], "approve": True})
    created(client, f"/api/v1/invoices/{paid['id']}/payments", {"amount": "120.00"})
    created(client, f"{base}/consumptions", {"credits": "3", "description": "Meeting room"})
    open_invoice = created(client, f"{base}/top-ups", {"product_id": pack["id"], "quantity": "2", "business_unit_id": berlin["id"], "approve": True})
    credited = created(client, f"{base}/top-ups", {"product_id": pack["id"], "approve": True})
    note = created(client, "/api/v1/credit-notes", {"invoice_id": credited["id"], "reason": "Bought twice"})
    note = approved(client, f"/api/v1/credit-notes/{note['id']}/approve")
    return {"account": account, "pack": pack, "paid": paid, "open": open_invoice, "credited": credited, "note": note}


def other_gmbh(client, pack: dict) -> dict:
    account = an_account(client, "Other GmbH", "books@other.test")
    invoice = created(client, f"/api/v1/accounts/{account['id']}/top-ups", {"product_id": pack["id"], "approve": True})
    note = created(client, "/api/v1/credit-notes", {"invoice_id": invoice["id"]})
    return {"account": account, "invoice": invoice, "note": approved(client, f"/api/v1/credit-notes/{note['id']}/approve")}


def texts(element) -> list[str]:
    return [" ".join(cell.text_content().split()) for cell in element.xpath("./td")]


# -- asking for a link --------------------------------------------------------------------------


def test_the_accounts_address_and_a_members_address_each_get_exactly_one_link(client, app, outbox):
    acme(client)

    for email in ("billing@acme.test", "Ada@Acme.test"):
        response = ask_for_link(page_client(app), email)
        assert (response.status_code, response.headers["location"]) == (303, "/portal/sign-in?done=sent")

    mails = sign_in_mails(outbox)
    assert [(str(mail["To"]), str(mail["Subject"])) for mail in mails] == [
        ("billing@acme.test", "Sign in to Licensing Demo Workspace"), ("ada@acme.test", "Sign in to Licensing Demo Workspace"),
    ]
    assert {str(mail["From"]) for mail in mails} == {"Licensing Demo Workspace <invoices@example.invalid>"}
    text, page = mails[1].get_body(("plain",)).get_content(), mails[1].get_body(("html",)).get_content()
    assert "for the account Acme Ltd" in text
    assert "The link is valid for 15 minutes, once." in text
    assert len(LINK.findall(text)) == 1
    assert f'href="{PUBLIC_URL}{link_of(mails[1])}"' in page


def test_an_unknown_address_gets_no_mail_and_the_same_page_as_a_known_one(client, app, outbox):
    acme(client)

    known, unknown = ask_for_link(page_client(app), "ada@acme.test"), ask_for_link(page_client(app), "nobody@acme.test")

    assert known.headers["location"] == unknown.headers["location"] == "/portal/sign-in?done=sent"
    shown = page_client(app).get(unknown.headers["location"])
    assert SENT in shown.text
    assert [str(mail["To"]) for mail in sign_in_mails(outbox)] == ["ada@acme.test"]


def test_an_address_that_is_not_one_shows_the_form_again_with_the_error(client, app, outbox):
    response = ask_for_link(page_client(app), "not an address")

    assert response.status_code == 422
    assert "enter your e-mail address" in response.text
    assert 'value="not an address"' in response.text
    assert "Send me a sign-in link" in response.text
    assert sign_in_mails(outbox) == []


def test_asking_again_within_a_minute_mails_no_second_link(client, app, outbox):
    acme(client)
    browser = page_client(app)

    ask_for_link(browser, "ada@acme.test")
    again = ask_for_link(browser, "ada@acme.test")

    assert again.headers["location"] == "/portal/sign-in?done=sent"
    assert len(sign_in_mails(outbox)) == 1


# -- using the link -----------------------------------------------------------------------------


def test_a_link_signs_in_once_and_opening_it_does_not_use_it(client, app, outbox):
    acme(client)
    ask_for_link(page_client(app), "ada@acme.test")
    link = newest_link(outbox)
    scanner = page_client(app)
    assert scanner.get(link).status_code == 200  # a mail scanner fetching the link
    assert scanner.get(link).status_code == 200

    browser = page_client(app)
    first = use_link(browser, link)
    second = use_link(page_client(app), link)

    assert (first.status_code, first.headers["location"]) == (303, "/portal")
    assert browser.get("/portal").status_code == 200
    assert second.status_code == 410
    assert EXPIRED in second.text
    assert 'href="/portal/sign-in"' in second.text


def test_a_link_expires_after_15_minutes(client, app, outbox):
    acme(client)
    ask_for_link(page_client(app), "nobody@acme.test")  # every page route resolved before the clock is frozen
    use_link(page_client(app), "/portal/sign-in/unknown")

    with freeze_time("2030-03-01 10:00:00"):
        ask_for_link(page_client(app), "ada@acme.test")
    with freeze_time("2030-03-01 10:15:00"):
        late = use_link(page_client(app), newest_link(outbox))
        ask_for_link(page_client(app), "ada@acme.test")
    with freeze_time("2030-03-01 10:29:59"):
        in_time = use_link(page_client(app), newest_link(outbox))

    assert late.status_code == 410
    assert EXPIRED in late.text
    assert (in_time.status_code, in_time.headers["location"]) == (303, "/portal")


def test_an_unknown_link_is_refused(client, app, outbox):
    response = use_link(page_client(app), "/portal/sign-in/made-up-token")

    assert response.status_code == 410
    assert EXPIRED in response.text


# -- the account --------------------------------------------------------------------------------


def test_the_portal_shows_the_accounts_figures_as_the_api_gives_them(client, app, outbox):
    acme_ = acme(client)
    other = other_gmbh(client, acme_["pack"])
    account_id = acme_["account"]["id"]
    credits = client.get(f"/api/v1/accounts/{account_id}/credits").json()
    invoices = client.get("/api/v1/invoices", params={"account_id": account_id}).json()["items"]
    ledger = client.get(f"/api/v1/accounts/{account_id}/ledger").json()["items"]

    response = member(app, outbox).get("/portal")

    assert response.status_code == 200, response.text
    document = html.fromstring(response.text)
    assert document.xpath("//h1")[0].text_content() == "Acme Ltd"
    assert [heading.text_content() for heading in document.xpath("//h2")] == [
        "Credits", "Expiring soon", "What is due and how to pay", "Invoices and credit notes", "Bookings", "Ledger",
    ]
    assert document.xpath('//*[@data-figure="remaining"]//*[@class="figure"]')[0].text_content() == credits["remaining"] == "27.00"
    (berlin,) = credits["business_units"]
    assert texts(document.xpath(f'//tr[@data-unit="{berlin["business_unit_id"]}"]')[0])[:2] == ["Berlin", berlin["remaining"]]
    unrestricted = document.xpath('//tr[@data-unit="unrestricted"]')[0]
    assert texts(unrestricted)[:2] == ["Not restricted to a business unit", credits["unrestricted"]["remaining"]]
    expiring = document.xpath('//section[@aria-labelledby="h-expiring"]//tbody/tr')
    assert [texts(row)[1] for row in expiring] == [item["credits"] for item in credits["expiring"]] == ["27.00"]

    rows = {row.get("data-invoice"): texts(row) for row in document.xpath('//section[@aria-labelledby="h-documents"]//tr[@data-invoice]')}
    assert rows == {
        invoice["id"]: [
            invoice["number"], invoice["issue_date"], f"{invoice['gross']} EUR", f"{invoice['amount_paid']} EUR", f"{invoice['amount_due']} EUR",
            {"paid": "paid", "unpaid": "unpaid"}[invoice["payment_status"]], "PDF",
        ]
        for invoice in invoices
    }
    assert rows[acme_["open"]["id"]][2:5] == ["240.00 EUR", "0.00 EUR", "240.00 EUR"]
    (note,) = document.xpath("//tr[@data-credit-note]")
    assert texts(note) == [acme_["note"]["number"], acme_["note"]["issue_date"], acme_["credited"]["number"], "120.00 EUR", "0.00 EUR", "PDF"]
    assert other["invoice"]["number"] not in response.text
    assert other["note"]["number"] not in response.text

    (due,) = document.xpath('//section[@aria-labelledby="h-due"]//tr[@data-invoice]')
    assert texts(due)[0] == acme_["open"]["number"]
    assert texts(due)[2:] == [f"{acme_['open']['amount_due']} EUR", acme_["open"]["payment_reference"]]
    assert "To pay, please contact Licensing Demo Workspace" in response.text

    bookings = document.xpath('//section[@aria-labelledby="h-bookings"]//tbody/tr')
    assert [texts(row)[2] for row in bookings] == [entry["credits"] for entry in ledger if entry["kind"] == "consume"]
    entries = document.xpath('//section[@aria-labelledby="h-ledger"]//tbody/tr')
    assert [texts(row)[3:] for row in entries] == [[entry["credits"], entry["balance_after"]] for entry in ledger]


def test_with_the_operators_bank_account_set_the_portal_says_where_to_pay(client, app, outbox, set_operator_setting):
    set_operator_setting("operator_iban", "DE89370400440532013000")
    set_operator_setting("operator_bic", "COBADEFFXXX")
    acme(client)

    document = html.fromstring(member(app, outbox).get("/portal").text)

    bank = document.xpath('//*[@data-figure="bank"]')[0]
    assert [item.text_content() for item in bank.xpath("./dd")] == ["DE89370400440532013000", "COBADEFFXXX", "Licensing Demo Workspace"]


def test_the_bookings_and_the_ledger_are_paginated_by_the_apis_cursor(client, app, outbox):
    account_id = acme(client)["account"]["id"]
    for _ in range(20):
        created(client, f"/api/v1/accounts/{account_id}/consumptions", {"credits": "0.25"})
    ledger = client.get(f"/api/v1/accounts/{account_id}/ledger", params={"limit": 100}).json()["items"]
    bookings = [entry for entry in ledger if entry["kind"] == "consume"]
    browser = member(app, outbox)

    first = html.fromstring(browser.get("/portal").text)
    (next_bookings,) = first.xpath('//nav[@aria-label="Pages of bookings"]/a[@rel="next"]/@href')
    (next_ledger,) = first.xpath('//nav[@aria-label="Pages of the ledger"]/a[@rel="next"]/@href')
    second = html.fromstring(browser.get(next_ledger).text)

    assert len(bookings) == 21
    assert len(first.xpath('//section[@aria-labelledby="h-bookings"]//tbody/tr')) == 20
    assert len(html.fromstring(browser.get(next_bookings).text).xpath('//section[@aria-labelledby="h-bookings"]//tbody/tr')) == 1
    assert [texts(row)[3:] for row in second.xpath('//section[@aria-labelledby="h-ledger"]//tbody/tr')] == [
        [entry["credits"], entry["balance_after"]] for entry in ledger[20:40]
    ]
    assert second.xpath('//nav[@aria-label="Pages of the ledger"]/a[text()="First page"]/@href') == ["/portal?#h-ledger"]


def test_the_members_own_documents_are_pdfs_and_another_accounts_are_404(client, app, outbox):
    acme_ = acme(client)
    other = other_gmbh(client, acme_["pack"])
    browser = member(app, outbox)

    own_invoice = browser.get(f"/portal/invoices/{acme_['open']['id']}.pdf")
    own_note = browser.get(f"/portal/credit-notes/{acme_['note']['id']}.pdf")
    other_invoice = browser.get(f"/portal/invoices/{other['invoice']['id']}.pdf")
    other_note = browser.get(f"/portal/credit-notes/{other['note']['id']}.pdf")

    assert (own_invoice.status_code, own_invoice.headers["content-type"]) == (200, "application/pdf")
    assert own_invoice.content.startswith(b"%PDF")
    assert (own_note.status_code, own_note.headers["content-type"]) == (200, "application/pdf")
    assert (other_invoice.status_code, other_note.status_code) == (404, 404)
    assert "not_found" in other_invoice.text
    assert client.get(f"/api/v1/invoices/{other['invoice']['id']}.pdf").status_code == 200  # it exists: the portal's scope hides it


def test_a_draft_invoice_is_not_the_members_yet(client, app, outbox):
    acme_ = acme(client)
    draft = created(client, f"/api/v1/accounts/{acme_['account']['id']}/top-ups", {"product_id": acme_["pack"]["id"]})
    browser = member(app, outbox)

    assert f'data-invoice="{draft["id"]}"' not in browser.get("/portal").text
    assert browser.get(f"/portal/invoices/{draft['id']}.pdf").status_code == 404


# -- sessions -----------------------------------------------------------------------------------


def test_without_a_session_the_portal_sends_to_the_sign_in_page(app):
    response = page_client(app).get("/portal")

    assert (response.status_code, response.headers["location"]) == (303, "/portal/sign-in")


def test_a_portal_session_does_not_open_the_console_nor_a_console_session_the_portal(client, app, outbox, console):
    acme(client)
    portal_token = member(app, outbox).cookies.get("licensing_portal")
    console_token = console("admin").cookies.get("licensing_console")

    as_console, as_portal = page_client(app), page_client(app)
    as_console.cookies.set("licensing_console", portal_token)
    as_portal.cookies.set("licensing_portal", console_token)

    refused_console, refused_portal = as_console.get("/console"), as_portal.get("/portal")
    assert (refused_console.status_code, refused_console.headers["location"]) == (303, "/console/login?next=%2Fconsole")
    assert (refused_portal.status_code, refused_portal.headers["location"]) == (303, "/portal/sign-in")


def test_signing_out_ends_the_session(client, app, outbox):
    acme(client)
    browser = member(app, outbox)
    token = browser.cookies.get("licensing_portal")

    response = browser.submit("/portal/logout")

    assert (response.status_code, response.headers["location"]) == (303, "/portal/sign-in")
    assert browser.get("/portal").status_code == 303
    replayed = page_client(app)
    replayed.cookies.set("licensing_portal", token)
    assert replayed.get("/portal").headers["location"] == "/portal/sign-in"


def test_a_post_without_its_token_is_refused_and_does_nothing(client, app, outbox):
    acme(client)
    browser = page_client(app)
    browser.get("/portal/sign-in")  # the double-submit cookie, but no token in the form

    asked = browser.post("/portal/sign-in", data={"email": "ada@acme.test"})
    assert asked.status_code == 403
    assert sign_in_mails(outbox) == []

    ask_for_link(browser, "ada@acme.test")
    link = newest_link(outbox)
    browser.get(link)
    assert browser.post(link, data={}).status_code == 403
    assert browser.post(link, data={"csrf_token": "guessed"}).status_code == 403
    assert use_link(browser, link).status_code == 303  # the refused posts left the link unused

    assert browser.post("/portal/logout", data={}).status_code == 403
    assert browser.get("/portal").status_code == 200
