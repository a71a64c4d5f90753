"""API keys (API.md, "Keys, limits and outages"): admins create, list and revoke them; a revoked
or expired key is refused at once, in every worker process; a ``bookings`` or ``read`` key may be
limited to some accounts, and every other account is then a 404 to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from licensing.auth.services import hash_key

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = "application/problem+json"


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM
    body = response.json()
    assert body["code"] == code and body["status"] == status
    return body


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def keys_listed(admin) -> list[dict]:
    response = admin.get("/api/v1/api-keys", params={"limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def new_key(admin, **body) -> dict:
    response = admin.post("/api/v1/api-keys", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_admin_creates_lists_and_revokes_keys_and_lists_never_show_a_secret(client, api_keys):
    admin = client.as_role("admin")

    created = new_key(admin, name="Front desk", role="bookings")

    assert created["key"].startswith("lk_")
    assert {key: created[key] for key in ("name", "role", "status", "account_ids", "expires_at", "revoked_at")} == {
        "name": "Front desk", "role": "bookings", "status": "active", "account_ids": None, "expires_at": None, "revoked_at": None,
    }
    listing = admin.get("/api/v1/api-keys", params={"limit": 500})
    assert listing.status_code == 200
    assert [(key["name"], key["role"], key["status"]) for key in listing.json()["items"]] == [
        ("test-admin", "admin", "active"), ("test-billing", "billing", "active"), ("test-bookings", "bookings", "active"),
        ("test-read", "read", "active"), ("Front desk", "bookings", "active"),
    ]
    for secret in [created["key"], *api_keys.values()]:
        assert secret not in listing.text
        assert hash_key(secret) not in listing.text
    assert all("key" not in key and "key_hash" not in key for key in listing.json()["items"])
    assert client.as_role(None).get("/api/v1/accounts", headers=bearer(created["key"])).status_code == 200

    revoked = admin.delete(f"/api/v1/api-keys/{created['id']}")

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"] is not None
    assert "key" not in revoked.json()
    again = admin.delete(f"/api/v1/api-keys/{created['id']}")
    assert again.status_code == 200 and again.json() == revoked.json()  # idempotent: the first revoked_at stays
    assert [key["status"] for key in keys_listed(admin) if key["id"] == created["id"]] == ["revoked"]
    problem(admin.delete("/api/v1/api-keys/999999"), 404, "not_found")
    problem(admin.delete("/api/v1/api-keys/front-desk"), 404, "not_found")


def test_a_revoked_key_is_refused_at_once(client):
    admin = client.as_role("admin")
    created = new_key(admin, name="Booking system", role="bookings")
    booking_system = TestClient(client.app, headers=bearer(created["key"]))
    assert booking_system.get("/api/v1/accounts").status_code == 200

    assert admin.delete(f"/api/v1/api-keys/{created['id']}").status_code == 200

    body = problem(booking_system.get("/api/v1/accounts"), 401, "unauthorized")
    assert "revoked" in body["detail"]
    problem(booking_system.post("/api/v1/accounts/1/consumptions", json={"credits": "1"}), 401, "unauthorized")
    assert admin.get("/api/v1/accounts").status_code == 200  # other keys are untouched


def test_an_expired_key_is_refused(client):
    admin = client.as_role("admin")
    with freeze_time("2027-01-15T10:00:00Z"):
        created = new_key(admin, name="Temporary", role="read", expires_at="2027-01-15T12:00:00+01:00")
    assert created["expires_at"] == "2027-01-15T11:00:00+00:00"
    temporary = TestClient(client.app, headers=bearer(created["key"]))

    with freeze_time("2027-01-15T10:59:59Z"):
        assert temporary.get("/api/v1/accounts").status_code == 200
    with freeze_time("2027-01-15T11:00:00Z"):
        problem(temporary.get("/api/v1/accounts"), 401, "unauthorized")
        assert [key["status"] for key in keys_listed(admin) if key["id"] == created["id"]] == ["expired"]
    with freeze_time("2027-02-01T00:00:00Z"):
        problem(temporary.get("/api/v1/accounts"), 401, "unauthorized")


def test_a_key_cannot_be_created_already_expired_or_without_an_offset(client):
    admin = client.as_role("admin")
    before = keys_listed(admin)
    with freeze_time("2027-01-15T10:00:00Z"):
        for expires_at in ("2027-01-15T10:00:00Z", "2027-01-14T10:00:00Z", "2027-01-15T11:00:00", "tomorrow"):
            body = problem(admin.post("/api/v1/api-keys", json={"name": "Late", "role": "read", "expires_at": expires_at}), 422, "validation_error")
            assert "expires_at" in [error["field"] for error in body["errors"]], expires_at
    assert keys_listed(admin) == before


def test_only_admins_manage_keys(client):
    admin = client.as_role("admin")
    created = new_key(admin, name="Kiosk", role="read")
    before = keys_listed(admin)

    for role in ("billing", "bookings", "read"):
        other = client.as_role(role)
        problem(other.post("/api/v1/api-keys", json={"name": "Escalation", "role": "admin"}), 403, "forbidden")
        problem(other.get("/api/v1/api-keys"), 403, "forbidden")
        problem(other.delete(f"/api/v1/api-keys/{created['id']}"), 403, "forbidden")
    anonymous = client.as_role(None)
    problem(anonymous.post("/api/v1/api-keys", json={"name": "Escalation", "role": "admin"}), 401, "unauthorized")
    problem(anonymous.get("/api/v1/api-keys"), 401, "unauthorized")
    problem(anonymous.delete(f"/api/v1/api-keys/{created['id']}"), 401, "unauthorized")

    assert keys_listed(admin) == before  # nothing created, nothing revoked


def test_account_ids_are_only_for_bookings_and_read_keys(client):
    admin = client.as_role("admin")
    account_id = account(client, "Acme Ltd")
    before = keys_listed(admin)

    for role in ("admin", "billing"):
        body = problem(admin.post("/api/v1/api-keys", json={"name": "Scoped", "role": role, "account_ids": [account_id]}), 422, "validation_error")
        assert [error["field"] for error in body["errors"]] == ["account_ids"]
    problem(admin.post("/api/v1/api-keys", json={"name": "Scoped", "role": "read", "account_ids": ["999999"]}), 422, "unknown_reference")
    problem(admin.post("/api/v1/api-keys", json={"name": "Scoped", "role": "read", "account_ids": ["acme"]}), 422, "unknown_reference")
    problem(admin.post("/api/v1/api-keys", json={"name": "Scoped", "role": "read", "account_ids": []}), 422, "validation_error")
    assert keys_listed(admin) == before

    for role in ("bookings", "read"):
        created = new_key(admin, name=f"Acme {role}", role=role, account_ids=[account_id, account_id])
        assert created["account_ids"] == [account_id]


def account(client, name: str) -> str:
    response = client.post("/api/v1/accounts", json={"name": name, "email": "billing@acme.test", "currency": "EUR"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def credits_of(client, account_id: str) -> dict:
    summary = client.get(f"/api/v1/accounts/{account_id}/credits").json()
    summary.pop("at")
    return summary


def test_a_scoped_bookings_key_sees_only_its_accounts(client):
    """Acme's booking system may book for Acme; Globex is, to it, an account that does not exist."""
    admin = client.as_role("admin")
    acme, globex = account(client, "Acme Ltd"), account(client, "Globex")
    pack = client.post("/api/v1/products", json={
        "kind": "credit_pack", "name": "10 credits", "price": "100.00", "currency": "EUR", "tax_rate": "20", "credits": "10", "lifetime": "P1Y",
    }).json()["id"]
    invoices = {}
    for account_id in (acme, globex):
        response = client.post(f"/api/v1/accounts/{account_id}/top-ups", json={"product_id": pack, "approve": True})
        assert response.status_code == 201, response.text
        invoices[account_id] = response.json()["id"]
    event_at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    globex_consumption = client.post(f"/api/v1/accounts/{globex}/consumptions", json={"credits": "1"}).json()["id"]
    globex_hold = client.post(f"/api/v1/accounts/{globex}/holds", json={"credits": "2", "event_at": event_at}).json()["id"]
    globex_before = credits_of(client, globex)
    bookings = TestClient(client.app, headers=bearer(new_key(admin, name="Acme desk", role="bookings", account_ids=[acme])["key"]))

    assert [item["id"] for item in bookings.get("/api/v1/accounts").json()["items"]] == [acme]
    assert bookings.get(f"/api/v1/accounts/{acme}").status_code == 200
    assert bookings.get(f"/api/v1/accounts/{acme}/credits").json()["remaining"] == "10.00"
    body = problem(bookings.get(f"/api/v1/accounts/{globex}"), 404, "not_found")
    assert body["detail"] == f"account {globex} does not exist"
    for path in ("credits", "grants", "ledger", "holds", "members", "business-units"):
        problem(bookings.get(f"/api/v1/accounts/{globex}/{path}"), 404, "not_found")
    problem(bookings.post(f"/api/v1/accounts/{globex}/consumptions", json={"credits": "1"}), 404, "not_found")
    problem(bookings.post(f"/api/v1/accounts/{globex}/holds", json={"credits": "1", "event_at": event_at}), 404, "not_found")
    problem(bookings.get(f"/api/v1/consumptions/{globex_consumption}"), 404, "not_found")
    problem(bookings.post(f"/api/v1/consumptions/{globex_consumption}/reverse"), 404, "not_found")
    problem(bookings.get(f"/api/v1/holds/{globex_hold}"), 404, "not_found")
    problem(bookings.post(f"/api/v1/holds/{globex_hold}/capture"), 404, "not_found")
    problem(bookings.post(f"/api/v1/holds/{globex_hold}/release"), 404, "not_found")
    problem(bookings.get(f"/api/v1/invoices/{invoices[globex]}"), 403, "forbidden")  # invoices are not for bookings keys at all

    # Globex is untouched: its consumption stands, its hold is open, its credits did not move.
    assert client.get(f"/api/v1/consumptions/{globex_consumption}").json()["status"] == "consumed"
    assert client.get(f"/api/v1/holds/{globex_hold}").json()["status"] == "open"
    assert credits_of(client, globex) == globex_before

    # Its own account works as for any bookings key.
    consumption = bookings.post(f"/api/v1/accounts/{acme}/consumptions", json={"credits": "1"})
    assert consumption.status_code == 201, consumption.text
    assert bookings.post(f"/api/v1/consumptions/{consumption.json()['id']}/reverse").status_code == 200
    hold = bookings.post(f"/api/v1/accounts/{acme}/holds", json={"credits": "2", "event_at": event_at})
    assert hold.status_code == 201, hold.text
    assert bookings.post(f"/api/v1/holds/{hold.json()['id']}/capture").status_code == 200
    assert bookings.get(f"/api/v1/accounts/{acme}/credits").json()["remaining"] == "8.00"


def test_a_scoped_read_key_sees_only_its_accounts_invoices_and_no_reports(client):
    admin = client.as_role("admin")
    acme, globex = account(client, "Acme Ltd"), account(client, "Globex")
    pack = client.post("/api/v1/products", json={
        "kind": "credit_pack", "name": "10 credits", "price": "100.00", "currency": "EUR", "tax_rate": "20", "credits": "10", "lifetime": "P1Y",
    }).json()["id"]
    invoices, notes = {}, {}
    for account_id in (acme, globex):
        invoices[account_id] = client.post(f"/api/v1/accounts/{account_id}/top-ups", json={"product_id": pack, "approve": True}).json()["id"]
        note = client.post("/api/v1/credit-notes", json={"invoice_id": invoices[account_id], "reason": "goodwill"})
        assert note.status_code == 201, note.text
        notes[account_id] = note.json()["id"]
    reader = TestClient(client.app, headers=bearer(new_key(admin, name="Acme accountant", role="read", account_ids=[acme])["key"]))

    assert [invoice["id"] for invoice in reader.get("/api/v1/invoices").json()["items"]] == [invoices[acme]]
    assert reader.get("/api/v1/invoices", params={"account_id": globex}).json()["items"] == []
    assert reader.get(f"/api/v1/invoices/{invoices[acme]}").status_code == 200
    assert reader.get(f"/api/v1/invoices/{invoices[acme]}.pdf").status_code == 200
    body = problem(reader.get(f"/api/v1/invoices/{invoices[globex]}"), 404, "not_found")
    assert body["detail"] == f"invoice {invoices[globex]} does not exist"
    problem(reader.get(f"/api/v1/invoices/{invoices[globex]}.pdf"), 404, "not_found")
    problem(reader.get(f"/api/v1/invoices/{invoices[globex]}.xml"), 404, "not_found")
    assert [note["id"] for note in reader.get("/api/v1/credit-notes").json()["items"]] == [notes[acme]]
    assert reader.get(f"/api/v1/credit-notes/{notes[acme]}").status_code == 200
    problem(reader.get(f"/api/v1/credit-notes/{notes[globex]}"), 404, "not_found")
    problem(reader.get(f"/api/v1/credit-notes/{notes[globex]}.pdf"), 404, "not_found")
    problem(reader.get(f"/api/v1/credit-notes/{notes[globex]}.xml"), 404, "not_found")
    # Reports span every account: refused to a scoped key, open to the unscoped read key.
    problem(reader.get("/api/v1/reports/liability"), 403, "forbidden")
    problem(reader.get("/api/v1/reports/revenue", params={"from": "2027-01-01", "to": "2027-01-31"}), 403, "forbidden")
    problem(reader.get("/api/v1/events"), 403, "forbidden")  # the event log spans every account
    licences = {
        account_id: client.post("/api/v1/licences", json={"account_id": account_id, "start_date": "2027-01-01"}).json()["id"]
        for account_id in (acme, globex)
    }
    assert [licence["id"] for licence in reader.get("/api/v1/licences").json()["items"]] == [licences[acme]]
    assert reader.get(f"/api/v1/licences/{licences[acme]}/services").status_code == 200
    problem(reader.get(f"/api/v1/licences/{licences[globex]}"), 404, "not_found")
    problem(reader.get(f"/api/v1/licences/{licences[globex]}/services"), 404, "not_found")
    assert client.as_role("read").get("/api/v1/reports/liability").status_code == 200
    assert len(client.as_role("read").get("/api/v1/invoices").json()["items"]) == 2


# -- several worker processes ---------------------------------------------------------------


def worker_app():
    """The application as ``uvicorn --factory`` builds it in each worker process, naming the
    worker that answered in an ``X-Worker-Pid`` header (so that the test sees every worker)."""
    from licensing.api.app import create_app

    app = create_app()

    @app.middleware("http")
    async def name_the_worker(request, call_next):
        response = await call_next(request)
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    return app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


WORKERS = 4


def test_a_revoked_key_is_refused_in_every_worker_process(client, database_url, tmp_path):
    admin_secret = client.as_role("admin").headers["Authorization"].removeprefix("Bearer ")
    created = new_key(client.as_role("admin"), name="Booking system", role="bookings")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("LICENSING_")}
    environment |= {"LICENSING_DATABASE_URL": database_url, "LICENSING_MAIL_ON_APPROVAL": "false"}
    log = (tmp_path / "uvicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tests.test_api_keys:worker_app", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(WORKERS), "--log-level", "warning"],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )

    def get_accounts() -> httpx.Response:
        # A new connection each time, so that any worker may take it.
        return httpx.get(f"{base}/api/v1/accounts", headers=bearer(created["key"]) | {"Connection": "close"}, timeout=10)

    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "uvicorn.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "uvicorn.log").read_text()
            time.sleep(0.2)
        served_by = set()
        for _ in range(800):
            response = get_accounts()
            assert response.status_code == 200, response.text
            served_by.add(response.headers["x-worker-pid"])
            if len(served_by) == WORKERS:
                break
        assert len(served_by) == WORKERS  # every worker has used (and could have cached) the key

        revoked = httpx.delete(f"{base}/api/v1/api-keys/{created['id']}", headers=bearer(admin_secret), timeout=10)
        assert revoked.status_code == 200, revoked.text

        refused_by, answers = set(), []
        for attempt in range(800):
            response = get_accounts()
            answers.append(response.status_code)
            refused_by.add(response.headers["x-worker-pid"])
            if attempt >= 39 and refused_by == served_by:
                break
        assert set(answers) == {401}, answers
        assert len(answers) >= 40 and refused_by == served_by  # refused by every worker, at once
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def cli(database_url, set_operator_setting):
    """Run ``licensing ...`` in process against the test's database."""
    from typer.testing import CliRunner

    from licensing.cli import app
    from licensing.db import get_database

    set_operator_setting("database_url", database_url)

    def run(*arguments: str):
        return CliRunner().invoke(app, list(arguments))

    yield run
    get_database(database_url).dispose()


def refusal(result) -> list[str]:
    """The lines of a refusal on stderr, after the line that says which database the command
    uses (absent when the command refused its arguments before opening the database)."""
    lines = result.stderr.strip().splitlines()
    return lines[1:] if lines and lines[0].startswith("database: ") else lines


def test_the_command_line_lists_keys_without_their_secrets(cli, api_keys):
    result = cli("api-key", "list")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["id", "name", "role", "status", "created_at", "expires_at", "accounts"]
    assert [line.split("\t")[1:4] for line in lines[1:]] == [
        ["test-admin", "admin", "active"],
        ["test-billing", "billing", "active"],
        ["test-bookings", "bookings", "active"],
        ["test-read", "read", "active"],
    ]
    for secret in api_keys.values():
        assert secret not in result.output and hash_key(secret) not in result.output


def test_the_command_line_revokes_a_key_once_and_refuses_an_unknown_id(cli, client, api_keys):
    key_id = next(key["id"] for key in keys_listed(client.as_role("admin")) if key["name"] == "test-bookings")
    assert client.as_role("bookings").get("/api/v1/accounts").status_code == 200

    revoked = cli("api-key", "revoke", key_id)

    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.strip() == f"revoked API key {key_id} named 'test-bookings'"
    problem(client.as_role("bookings").get("/api/v1/accounts"), 401, "unauthorized")
    again = cli("api-key", "revoke", key_id)
    assert again.exit_code == 0 and "already revoked" in again.stdout
    assert [line.split("\t")[3] for line in cli("api-key", "list").stdout.splitlines()[1:]] == ["active", "active", "revoked", "active"]
    for unknown in ("999999", "abc"):
        refused = cli("api-key", "revoke", unknown)
        assert refused.exit_code == 1
        assert refused.stdout == ""
        assert len(refusal(refused)) == 1 and "does not exist" in refused.stderr
        assert "Traceback" not in refused.output
        assert refused.exception is None or isinstance(refused.exception, SystemExit)


def test_the_command_line_creates_an_expiring_key_limited_to_accounts(cli, client):
    acme, globex = account(client, "Acme Ltd"), account(client, "Globex")

    result = cli("api-key", "create", "--name", "Acme desk", "--role", "bookings", "--expires-at", "2099-01-01T00:00:00+01:00", "--account-id", acme)

    assert result.exit_code == 0, result.output
    secret = result.stdout.splitlines()[-1]
    desk = TestClient(client.app, headers=bearer(secret))
    assert desk.get(f"/api/v1/accounts/{acme}").status_code == 200
    problem(desk.get(f"/api/v1/accounts/{globex}"), 404, "not_found")
    (listed,) = [key for key in keys_listed(client.as_role("admin")) if key["name"] == "Acme desk"]
    assert (listed["expires_at"], listed["account_ids"]) == ("2098-12-31T23:00:00+00:00", [acme])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--role", "read", "--account-id", "999999"), "account_ids 999999 does not exist"),
        (("--role", "billing", "--account-id", "1"), "account_ids may only limit a bookings or read key"),
        (("--role", "read", "--expires-at", "2099-01-01"), "is not an instant with an offset"),
        (("--role", "read", "--expires-at", "2000-01-01T00:00:00Z"), "expires_at must be in the future"),
        (("--role", "superuser",), "role must be one of"),
    ],
)
def test_the_command_line_refuses_a_bad_key_in_one_line(cli, client, arguments, message):
    account(client, "Acme Ltd")
    before = cli("api-key", "list").stdout

    result = cli("api-key", "create", "--name", "Bad", *arguments)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(refusal(result)) == 1 and message in result.stderr, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert cli("api-key", "list").stdout == before
