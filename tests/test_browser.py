"""The console and the portal in a real browser: Debian's Chromium driven by Playwright, against
the application served by uvicorn over SQLite and over PostgreSQL. Each page visited is checked
with axe-core (no serious or critical violation); the README's screenshots are taken here
(written to docs/ when LICENSING_TEST_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from licensing.db import Database
from tests.support.browser import ROOT, axe_problems, chromium, served
from tests.support.console import PASSWORD, add_user

# Read at import: the autouse ``operator_settings`` fixture removes every LICENSING_* variable.
SCREENSHOTS = os.environ.get("LICENSING_TEST_SCREENSHOTS") == "1"
TIMEOUT = 20_000


@pytest.fixture
def site(database_url, tmp_path):
    """The served application over a new database (SQLite, then PostgreSQL), with an admin user
    of the console; mails go to ``tmp_path / "outbox"``."""
    database = Database(database_url)
    add_user(database, "admin@space.test", "admin")
    add_user(database, "reader@space.test", "read")
    database.dispose()
    with served(database_url, tmp_path, mail_outbox=str(tmp_path / "outbox"), operator_name="Harbour Coworking") as base:
        yield base


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
