"""Console users and browser sessions without a browser: sign-in with CSRF protection,
lock-out after repeated failures, session cookies, sign-out, expiry, and the CLI that makes users."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from licensing.web.models import BrowserSession, ConsoleUser
from licensing.web.users import LOCK_AFTER_FAILURES, hasher
from tests.support.console import CSRF, PASSWORD, add_user, page_client

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def login_form(client) -> str:
    page = client.get("/console/login")
    assert page.status_code == 200
    return CSRF.search(page.text).group(1)


def sign_in(client, email: str, password: str = PASSWORD, token: str | None = None, next_page: str = "/console"):
    token = token if token is not None else login_form(client)
    return client.post("/console/login", data={"csrf_token": token, "email": email, "password": password, "next": next_page})


def sessions(database) -> list[BrowserSession]:
    with database.read() as session:
        return list(session.exec(select(BrowserSession)).all())


def user(database, email: str) -> ConsoleUser:
    with database.read() as session:
        return session.exec(select(ConsoleUser).where(ConsoleUser.email == email)).one()


def test_a_console_page_without_a_session_redirects_to_the_sign_in_page_and_back(app, database):
    add_user(database, "ops@space.test", "billing")
    client = page_client(app)
    response = client.get("/console/invoices?status=draft")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Finvoices%3Fstatus%3Ddraft"
    signed = sign_in(client, "ops@space.test", next_page="/console/invoices?status=draft")
    assert signed.status_code == 303 and signed.headers["location"] == "/console/invoices?status=draft"
    assert client.get("/console").status_code == 200


def test_the_session_cookie_is_http_only_secure_same_site_and_limited_to_the_console(app, database):
    add_user(database, "ops@space.test", "admin")
    client = page_client(app)
    response = sign_in(client, "ops@space.test")
    cookie = next(header for header in response.headers.get_list("set-cookie") if header.startswith("licensing_console="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite", "path"} <= attributes
    assert "samesite=lax" in cookie.lower() and "path=/console" in cookie.lower()
    # Only the token's hash is stored: the cookie's value is in no column.
    value = cookie.split(";")[0].split("=", 1)[1]
    assert [row.token_hash for row in sessions(database)] != [value] and len(sessions(database)) == 1


def test_a_sign_in_without_the_form_token_is_refused_and_starts_no_session(app, database):
    add_user(database, "ops@space.test", "admin")
    client = page_client(app)
    login_form(client)
    response = sign_in(client, "ops@space.test", token="forged")
    assert response.status_code == 403
    fresh = page_client(app)  # no form cookie at all
    assert sign_in(fresh, "ops@space.test", token="anything").status_code == 403
    assert sessions(database) == []


def test_a_wrong_password_is_refused_without_saying_whether_the_address_exists(app, database):
    add_user(database, "ops@space.test", "admin")
    client = page_client(app)
    wrong_password = sign_in(client, "ops@space.test", password="not the password at all")
    unknown_address = sign_in(client, "nobody@space.test")
    assert wrong_password.status_code == unknown_address.status_code == 401
    assert "Wrong e-mail or password." in wrong_password.text and "Wrong e-mail or password." in unknown_address.text
    assert sessions(database) == []
    assert user(database, "ops@space.test").failed_sign_ins == 1


def test_repeated_failures_lock_the_user_out_for_fifteen_minutes_even_with_the_right_password(app, database):
    add_user(database, "ops@space.test", "admin")
    client = page_client(app)
    with freeze_time("2027-03-01 09:00:00") as frozen:
        for _attempt in range(LOCK_AFTER_FAILURES - 1):
            assert sign_in(client, "ops@space.test", password="guess guess guess").status_code == 401
        locking = sign_in(client, "ops@space.test", password="guess guess guess")
        assert locking.status_code == 429 and "locked out" in locking.text
        assert sign_in(client, "ops@space.test").status_code == 429
        assert sessions(database) == []
        frozen.tick(timedelta(minutes=14, seconds=59))
        assert sign_in(client, "ops@space.test").status_code == 429
        frozen.tick(timedelta(seconds=1))
        assert sign_in(client, "ops@space.test").status_code == 303
    assert user(database, "ops@space.test").failed_sign_ins == 0 and len(sessions(database)) == 1


def test_a_success_resets_the_count_of_failures(app, database):
    add_user(database, "ops@space.test", "admin")
    client = page_client(app)
    for _attempt in range(LOCK_AFTER_FAILURES - 1):
        sign_in(client, "ops@space.test", password="guess guess guess")
    assert sign_in(client, "ops@space.test").status_code == 303
    assert sign_in(client, "ops@space.test", password="guess guess guess").status_code == 401
    assert user(database, "ops@space.test").locked_until is None


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(app, database):
    add_user(database, "ops@space.test", "admin")
    client = page_client(app)
    sign_in(client, "ops@space.test")
    stolen = page_client(app)
    stolen.cookies.set("licensing_console", client.cookies.get("licensing_console"), domain="testserver.local", path="/console")
    assert stolen.get("/console").status_code == 200
    token = CSRF.search(client.get("/console").text).group(1)
    response = client.post("/console/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    assert stolen.get("/console").status_code == 303
    assert sessions(database)[0].ended_at is not None


def test_sign_out_without_the_csrf_token_does_nothing(app, database):
    add_user(database, "ops@space.test", "admin")
    client = page_client(app)
    sign_in(client, "ops@space.test")
    assert client.post("/console/logout", data={}).status_code == 403
    assert client.post("/console/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/console").status_code == 200
    assert sessions(database)[0].ended_at is None


def test_the_csrf_token_of_a_session_is_accepted_as_the_htmx_header(app, database):
    add_user(database, "ops@space.test", "admin")
    client = page_client(app)
    sign_in(client, "ops@space.test")
    token = CSRF.search(client.get("/console").text).group(1)
    assert client.post("/console/logout", headers={"X-CSRF-Token": token, "HX-Request": "true"}).status_code == 303
    assert client.get("/console").status_code == 303


def test_a_session_expires_after_twelve_hours(app, database):
    add_user(database, "ops@space.test", "admin")
    client = page_client(app)
    with freeze_time("2027-03-01 09:00:00") as frozen:
        sign_in(client, "ops@space.test")
        frozen.tick(timedelta(hours=11, minutes=59))
        assert client.get("/console").status_code == 200
        frozen.tick(timedelta(minutes=1))
        assert client.get("/console").status_code == 303


def test_an_htmx_request_without_a_session_is_told_to_go_to_the_sign_in_page(app, database):
    response = page_client(app).get("/console/accounts", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/console/login?next=%2Fconsole%2Faccounts"


@pytest.mark.parametrize("target", ["https://evil.test/", "//evil.test/console", "/api/v1/accounts", "/console\\@evil.test"])
def test_signing_in_never_sends_the_user_to_another_site(app, database, target):
    add_user(database, "ops@space.test", "admin")
    response = sign_in(page_client(app), "ops@space.test", next_page=target)
    assert response.headers["location"] == "/console"


def test_pages_forbid_framing_and_scripts_from_elsewhere(app, database):
    response = page_client(app).get("/console/login")
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy and "default-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "://" not in response.text  # nothing loaded from another host


def test_a_role_taken_away_applies_to_the_open_session_at_once(app, database, console):
    client = console("admin")
    assert "API keys" in client.get("/console").text
    with database.write() as session:
        row = session.exec(select(ConsoleUser).where(ConsoleUser.email == "admin@console.test")).one()
        row.role = "read"
        session.add(row)
    page = client.get("/console").text
    assert "API keys" not in page and '<span class="role">read</span>' in page


def test_the_dashboard_shows_the_reports_figures(app, database, console, client):
    page = console("read").get("/console")
    assert page.status_code == 200
    assert "Credits outstanding" in page.text and "Overdue invoices" in page.text and "Last billing run" in page.text
    assert "No invoice is overdue." in page.text


# -- licensing user create ------------------------------------------------------------------------


def user_create(url: str, *arguments: str, password: str | None = None) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("LICENSING_")}
    return subprocess.run(
        [sys.executable, "-m", "licensing.cli", "user", "create", *arguments], input=password, capture_output=True, text=True, timeout=120,
        env=environment | {"LICENSING_DATABASE_URL": url},
    )


def test_user_create_reads_the_password_from_standard_input_and_stores_only_its_argon2_hash(database_url, database):
    result = user_create(database_url, "--email", "Ops@Space.test", "--role", "billing", "--password-stdin", password=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "created console user 1 ops@space.test with role billing: sign in at /console/login"
    stored = user(database, "ops@space.test")
    assert stored.role == "billing" and stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert hasher.verify(stored.password_hash, PASSWORD)


@pytest.mark.parametrize(
    ("arguments", "password", "message"),
    [
        (("--email", "ops@space.test", "--role", "owner"), PASSWORD, "role must be one of admin, billing, bookings, read"),
        (("--email", "not-an-address", "--role", "admin"), PASSWORD, "email must be an e-mail address"),
        (("--email", "ops@space.test", "--role", "admin"), "short", "the password must have at least 12 characters"),
    ],
)
def test_user_create_refuses_bad_input_and_writes_nothing(database_url, database, arguments, password, message):
    result = user_create(database_url, *arguments, "--password-stdin", password=password + "\n")
    assert result.returncode == 2 and message in result.stderr
    with database.read() as session:
        assert session.exec(select(ConsoleUser)).all() == []


def test_user_create_refuses_an_address_that_has_a_user(database_url, database):
    add_user(database, "ops@space.test", "admin")
    result = user_create(database_url, "--email", "OPS@space.test", "--role", "read", "--password-stdin", password=PASSWORD + "\n")
    assert result.returncode == 2 and "a console user with the e-mail ops@space.test exists" in result.stderr
