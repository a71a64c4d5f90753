"""The console and the portal in a real browser: Debian's Chromium driven by Playwright, against
the application served by uvicorn over SQLite and over PostgreSQL. Each page visited is checked
with axe-core (no serious or critical violation); the README's screenshots are taken here
(written to docs/ when LICENSING_SCREENSHOTS=1)."""

from __future__ import annotations

import email
import os
import re
import shutil
from email import policy
from pathlib import Path

import httpx
import pytest

from licensing import clock
from licensing.auth.services import create_api_key
from licensing.db import Database
from tests.support.browser import ROOT, axe_problems, chromium, served
from tests.support.console import PASSWORD, add_user

# Read at import: the autouse ``operator_settings`` fixture removes every LICENSING_* variable.
SCREENSHOTS = os.environ.get("LICENSING_SCREENSHOTS") == "1"
TIMEOUT = 20_000


class Site(str):
    """The base URL of the served application, with an API client (billing key) beside the browser."""

    api: httpx.Client
    outbox: Path


@pytest.fixture
def site(database_url, tmp_path):
    """The served application over a new database (SQLite, then PostgreSQL), with an admin and a
    read user of the console and a billing API key; mails go to ``tmp_path / "outbox"``."""
    database = Database(database_url)
    add_user(database, "admin@space.test", "admin")
    add_user(database, "reader@space.test", "read")
    with database.write() as session:
        _key, secret = create_api_key(session, name="booking system", role="billing", at=clock.now())
    database.dispose()
    outbox = tmp_path / "outbox"
    with served(database_url, tmp_path, mail_outbox=str(outbox), operator_name="Harbour Coworking") as base:
        site = Site(base)
        site.outbox = outbox
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as api:
            site.api = api
            yield site


@pytest.fixture
def browser():
    with chromium() as launched:
        yield launched


class Visit:
    """A browser tab on the site that checks each page it lands on with axe-core and collects
    script errors and failed loads."""

    def __init__(self, browser, base: str, tmp_path: Path) -> None:
        # axe-core is injected as a script, which the pages' Content-Security-Policy refuses.
        self.context = browser.new_context(base_url=base, bypass_csp=True, viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(TIMEOUT)
        self.page = self.context.new_page()
        self.tmp_path = tmp_path
        self.problems: dict[str, list[str]] = {}
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("response", lambda response: response.status >= 500 and self.errors.append(f"{response.status} {response.url}"))

    def check(self) -> None:
        """axe-core on the page as it is now."""
        self.page.wait_for_load_state("networkidle")
        found = axe_problems(self.page)
        if found:
            self.problems[self.page.url] = found

    def go(self, path: str) -> None:
        self.page.goto(path)
        self.check()

    def sign_in(self, email: str = "admin@space.test") -> None:
        self.go("/console/login")
        self.page.get_by_label("E-mail").fill(email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", name="Dashboard", level=1).wait_for()
        self.check()

    def shoot(self, name: str) -> None:
        shot = self.tmp_path / name
        self.page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 10_000, f"{name} looks empty"
        if SCREENSHOTS:
            (ROOT / "docs" / "screenshots").mkdir(exist_ok=True)
            shutil.copy(shot, ROOT / "docs" / "screenshots" / name)

    def done(self) -> None:
        assert self.errors == [], self.errors
        assert self.problems == {}, "axe-core found serious or critical violations:\n" + "\n".join(
            f"{url}:\n  " + "\n  ".join(found) for url, found in self.problems.items()
        )
        self.context.close()


def test_an_operator_signs_in_and_out(site, browser, tmp_path):
    visit = Visit(browser, site, tmp_path)
    visit.go("/console")
    assert re.search(r"/console/login\?next=%2Fconsole$", visit.page.url)
    visit.page.get_by_label("E-mail").fill("admin@space.test")
    visit.page.get_by_label("Password").fill("not the password")
    visit.page.get_by_role("button", name="Sign in").click()
    visit.page.get_by_text("Wrong e-mail or password.").wait_for()
    visit.check()
    visit.sign_in()
    visit.page.get_by_role("button", name="Sign out").click()
    visit.page.get_by_role("heading", name="Sign in to the console").wait_for()
    visit.go("/console")
    assert "/console/login" in visit.page.url
    visit.done()


def choose(page, label: str, option_text: str) -> None:
    """Picks the option of the <select> labelled ``label`` whose text contains ``option_text``."""
    select = page.get_by_label(label, exact=True)
    value = select.locator("option", has_text=option_text).first.get_attribute("value")
    select.select_option(value)


def test_an_operator_bills_a_licence_approves_it_and_sees_the_credits_then_a_member_signs_in(site, browser, tmp_path):
    visit = Visit(browser, site, tmp_path)
    page = visit.page
    visit.sign_in()
    today = page.evaluate("() => new Date().toISOString().slice(0, 10)")

    # An account
    page.get_by_role("link", name="Accounts", exact=True).click()
    page.get_by_role("heading", name="Accounts", level=1).wait_for()
    visit.check()
    page.get_by_label("Name", exact=True).fill("Harbour Studio")
    page.get_by_label("E-mail", exact=True).fill("studio@harbour.test")
    page.get_by_label("Currency", exact=True).fill("EUR")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Harbour Studio", level=1).wait_for()
    account_url = page.url.split("?")[0]
    account_id = account_url.rstrip("/").split("/")[-1]

    # A product: a pack of 10 credits for 100.00 EUR a month
    page.get_by_role("link", name="Products", exact=True).click()
    page.get_by_role("heading", name="Products", level=1).wait_for()
    visit.check()
    page.get_by_label("Name", exact=True).fill("Hot desk pack")
    page.get_by_label("Kind", exact=True).select_option("credit_pack")
    page.get_by_label("Unit price", exact=True).fill("100.00")
    page.get_by_label("Currency", exact=True).fill("EUR")
    page.get_by_label("Tax rate", exact=True).fill("20")
    page.get_by_label("Credits per pack", exact=True).fill("10")
    page.get_by_label("Lifetime", exact=True).fill("P1M")
    page.get_by_role("button", name="Create product").click()
    page.get_by_role("heading", name="Hot desk pack", level=1).wait_for()
    visit.check()

    # A licence from today with that pack, without pro-rating
    page.get_by_role("link", name="Licences", exact=True).click()
    page.get_by_role("heading", name="Licences", level=1).wait_for()
    visit.check()
    choose(page, "Account", "Harbour Studio")
    page.get_by_label("Start date", exact=True).fill(today)
    page.get_by_role("button", name="Create licence").click()
    page.get_by_role("heading", name=re.compile(r"^Licence \d+$"), level=1).wait_for()
    choose(page, "Product", "Hot desk pack")
    page.get_by_label("Pro-rate partial periods").uncheck()
    page.get_by_role("button", name="Add service").click()
    page.get_by_role("cell", name="Hot desk pack").first.wait_for()
    visit.check()

    # The billing run, then the approval queue
    page.get_by_role("link", name="Billing run", exact=True).click()
    page.get_by_role("heading", name="Billing run", level=1).wait_for()
    visit.check()
    page.get_by_role("button", name="Run billing").click()
    page.get_by_text("Invoices created").wait_for(timeout=60_000)
    visit.check()
    page.get_by_role("link", name="Approval queue").click()
    page.get_by_role("heading", name="Approval queue").wait_for()
    visit.check()
    page.get_by_role("button", name=re.compile(r"^Approve draft \d+$")).first.click()
    page.get_by_text("The invoice was approved").wait_for()
    visit.check()

    # The credits on the account page: the API's figure
    page.goto(account_url)
    remaining = page.locator('[data-figure="remaining"]').first
    remaining.wait_for()
    credits = site.api.get(f"/api/v1/accounts/{account_id}/credits").json()
    assert credits["remaining"] == "10.00"
    assert "10.00" in remaining.inner_text()
    visit.check()

    # A booking of 8 credits by the booking system; crediting the whole invoice strictly is refused
    booked = site.api.post(f"/api/v1/accounts/{account_id}/consumptions", json={"credits": "8", "description": "Desk, 8 days"})
    assert booked.status_code == 201, booked.text
    invoice = site.api.get("/api/v1/invoices", params={"account_id": account_id}).json()["items"][0]
    page.goto(f"/console/invoices/{invoice['id']}")
    page.get_by_role("heading", name=invoice["number"], level=1).wait_for()
    visit.check()
    page.get_by_label("Reason for the credit note").fill("Moved out early")
    page.get_by_role("button", name="Create credit note").click()
    page.get_by_text("The credit note was created as a draft").wait_for()
    page.get_by_role("button", name=re.compile(r"^Approve credit note")).first.click()
    refusal = page.get_by_role("alert")
    refusal.wait_for()
    text = refusal.inner_text()
    assert "credits_already_consumed" in text and "2.00" in text, text
    visit.check()
    assert site.api.get(f"/api/v1/accounts/{account_id}/credits").json()["remaining"] == "2.00"

    # Every other page of the console, for axe-core
    for path in ("/console", "/console/accounts?q=harbour", "/console/invoices", "/console/credit-notes", "/console/credit-prices",
                 "/console/webhooks", "/console/api-keys"):
        visit.go(path)
    visit.go("/console")
    visit.shoot("dashboard.png")
    page.goto(account_url)
    page.locator('[data-figure="remaining"]').first.wait_for()
    visit.shoot("account.png")
    visit.done()

    # The member: a sign-in link by mail, their account only
    other = site.api.post("/api/v1/accounts", json={"name": "Other Company", "email": "other@company.test", "currency": "EUR"}).json()
    member = Visit(browser, site, tmp_path)
    member.go("/portal")
    assert member.page.url.endswith("/portal/sign-in")
    member.page.get_by_label("E-mail").fill("studio@harbour.test")
    member.page.get_by_role("button", name="Send me a sign-in link").click()
    member.page.get_by_text("If this address belongs to an account, a sign-in link is on its way.").wait_for()
    member.check()
    link = mailed_link(site.outbox)
    member.go(link)
    member.page.get_by_role("button", name="Continue to my account").click()
    member.page.get_by_role("heading", name="Harbour Studio", level=1).wait_for()
    member.check()
    assert "2.00" in member.page.locator('[data-figure="remaining"]').first.inner_text()
    member.shoot("portal.png")
    own_invoice = member.page.request.get(f"{site}/portal/invoices/{invoice['id']}.pdf")
    assert own_invoice.status == 200 and own_invoice.body().startswith(b"%PDF")
    other_invoice = member.page.request.get(f"{site}/portal/invoices/{int(invoice['id']) + 1000}.pdf")
    assert other_invoice.status == 404
    assert member.page.request.get(f"{site}/console/accounts/{other['id']}", max_redirects=0).status == 303
    member.page.goto(link)
    member.page.get_by_role("button", name="Continue to my account").click()
    member.page.get_by_text("This sign-in link has expired or was already used").wait_for()
    member.done()


def mailed_link(outbox: Path) -> str:
    mails = sorted(outbox.glob("sign-in-*.eml"))
    assert len(mails) == 1, mails
    message = email.message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"http://127\.0\.0\.1:\d+(/portal/sign-in/[A-Za-z0-9_-]+)", text)
    assert found, text
    return found.group(1)


def test_the_approval_queue_works_with_the_keyboard_alone(site, browser, tmp_path):
    account = site.api.post("/api/v1/accounts", json={"name": "Keyboard Ltd", "email": "keys@board.test", "currency": "EUR"}).json()
    product = site.api.post(
        "/api/v1/products", json={"name": "Desk", "kind": "service", "price": "250.00", "currency": "EUR", "tax_rate": "20"}
    ).json()
    today = clock.now().date().isoformat()
    licence = site.api.post("/api/v1/licences", json={"account_id": account["id"], "start_date": today}).json()
    added = site.api.post(f"/api/v1/licences/{licence['id']}/services", json={"product_id": product["id"], "schedule": "monthly", "prorate": False})
    assert added.status_code == 201, added.text
    assert site.api.post("/api/v1/billing-runs", json={}).json()["invoices_created"] == 1

    visit = Visit(browser, site, tmp_path)
    page = visit.page
    page.goto("/console/login")
    tab_to(page, "email")
    page.keyboard.type("admin@space.test")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Dashboard", level=1).wait_for()
    tab_to(page, "Invoices")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Approval queue").wait_for()
    visit.check()
    tab_to(page, re.compile(r"^Approve draft \d+$"))
    page.keyboard.press("Enter")
    page.get_by_text("The invoice was approved").wait_for()
    invoice = site.api.get("/api/v1/invoices", params={"account_id": account["id"]}).json()["items"][0]
    assert invoice["status"] == "approved" and invoice["number"]
    visit.done()


def tab_to(page, target, presses: int = 80) -> None:
    """Presses Tab until the focused element is ``target`` (its id, its accessible name, or a
    pattern of it), as a keyboard user would; fails if it is never reached."""
    for _press in range(presses):
        focused = page.evaluate(
            """() => { const element = document.activeElement;
                return {id: element.id, name: (element.getAttribute("aria-label") || element.innerText || element.value || "").trim()}; }"""
        )
        if isinstance(target, re.Pattern):
            if target.search(focused["name"]):
                return
        elif target in (focused["id"], focused["name"]):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target!r} was never reached with Tab")
