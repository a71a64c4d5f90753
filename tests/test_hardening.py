"""Issue 11, hardening: nothing a member, an operator or an attacker does may stop billing, bill a
day twice, or crash a request. Each defect found has a test here, on SQLite and PostgreSQL where
a database is involved (mail, webhooks, keys and documents have their own modules)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import select

from licensing.db import Database
from licensing.events import Event
from licensing.scheduler import JOBS
from tests import factories
from tests.support.over_http import at, refused_with, routes_resolved_before_the_clock_is_frozen  # noqa: F401 - the autouse fixture

TODAY = "2026-12-04T10:00:00Z"

call, created = at(TODAY)


def account(client, name: str = "Acme Ltd") -> str:
    return created(client, "/api/v1/accounts", {"name": name, "email": "billing@acme.test", "currency": "EUR"})["id"]


def credit_pack(client, credits: str = "10", lifetime: str = "P1M", price: str = "100.00") -> str:
    body = {"kind": "credit_pack", "name": f"{credits} credits", "price": price, "currency": "EUR", "tax_rate": "20",
            "credits": credits, "lifetime": lifetime}
    return created(client, "/api/v1/products", body)["id"]


def monthly_licence(client, account_id: str, product_id: str, start: str, **service) -> str:
    licence_id = created(client, "/api/v1/licences", {"account_id": account_id, "start_date": start})["id"]
    created(client, f"/api/v1/licences/{licence_id}/services",
            {"product_id": product_id, "quantity": "1", "schedule": "monthly", "from_date": start, **service})
    return licence_id


def billing_run(client, as_of: str, moment: str = TODAY, approve: bool = True) -> dict:
    response = call(client, "POST", "/api/v1/billing-runs", moment, json={"as_of": as_of, "approve": approve})
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------- the standalone scheduler


def space_with_work_for_every_job(database) -> None:
    """An auto-renewing licence past its end, one that ended, grants that expire and notices due:
    each job has something to do."""
    acme = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    renewing = factories.licence(database, acme.id, date(2026, 9, 1), date(2026, 11, 30), auto_renew=True, auto_approve=True)
    factories.service(database, renewing.id, pack.id, from_date=date(2026, 9, 1), to_date=date(2026, 11, 30))
    ending = factories.licence(database, acme.id, date(2026, 9, 1), date(2026, 10, 31), auto_approve=True)
    factories.service(database, ending.id, pack.id, from_date=date(2026, 9, 1), to_date=date(2026, 10, 31))


@pytest.mark.parametrize("job", list(JOBS))
def test_each_scheduler_job_runs_in_a_process_that_imported_nothing_else(database, database_url, job, tmp_path):
    space_with_work_for_every_job(database)
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from licensing.db import Database\n"
        "from licensing.scheduler import run_job\n"
        "print(run_job(Database(sys.argv[1]), sys.argv[2], datetime(2026, 12, 4, 10, 0, tzinfo=UTC)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, database_url, job], capture_output=True, text=True, timeout=180,
        env=os.environ | {"LICENSING_MAIL_OUTBOX": str(tmp_path / "outbox")},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if job == "renewals":
        assert result.stdout.strip() == "1 licences renewed"


def test_licensing_scheduler_once_runs_every_job_and_exits_zero(database, database_url, tmp_path):
    space_with_work_for_every_job(database)
    result = subprocess.run(
        [sys.executable, "-m", "licensing.cli", "scheduler", "--once"], capture_output=True, text=True, timeout=300,
        env=os.environ | {"LICENSING_DATABASE_URL": database_url, "LICENSING_MAIL_OUTBOX": str(tmp_path / "outbox")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ran = {line.split(":", 1)[0] for line in result.stdout.splitlines()}
    assert ran == set(JOBS)
    assert "FAILED" not in result.stdout


# ---------------------------------------------------------------- late bookings


def test_a_late_booking_before_an_unrecorded_expiry_is_refused_not_crashed(client):
    """A licence from October with a P1M pack, billed and approved today: a booking on Oct 15
    finds October's credits expired (at Nov 1, recorded only now): 409 with what is available,
    with or without an Idempotency-Key, and nothing written."""
    acme = account(client)
    monthly_licence(client, acme, credit_pack(client), "2026-10-01")
    assert billing_run(client, "2026-12-04")["invoices_approved"] == 3
    ledger_before = call(client, "GET", f"/api/v1/accounts/{acme}/ledger").json()["items"]

    late = {"credits": "1.00", "occurred_at": "2026-10-15T10:00:00Z"}
    body = refused_with(call(client, "POST", f"/api/v1/accounts/{acme}/consumptions", json=late), 409, "insufficient_credits")
    assert (body["credits_requested"], body["credits_available"]) == ("1.00", "0.00")
    keyed = call(client, "POST", f"/api/v1/accounts/{acme}/consumptions", json=late, headers={"Idempotency-Key": "late-1"})
    refused_with(keyed, 409, "insufficient_credits")
    hold = {"credits": "1.00", "event_at": "2026-10-15T10:00:00Z"}
    refused_with(call(client, "POST", f"/api/v1/accounts/{acme}/holds", json=hold), 409, "insufficient_credits")

    ledger_after = call(client, "GET", f"/api/v1/accounts/{acme}/ledger").json()["items"]
    assert [entry["kind"] for entry in ledger_after] == [entry["kind"] for entry in ledger_before]
    assert {entry["kind"] for entry in ledger_after} == {"grant", "expire"}  # October's and November's breakage

    booking = created(client, f"/api/v1/accounts/{acme}/consumptions", {"credits": "1.00", "occurred_at": "2026-12-02T10:00:00Z"})
    assert booking["credits"] == "1.00"
    assert call(client, "GET", f"/api/v1/accounts/{acme}/credits").json()["remaining"] == "9.00"


# ---------------------------------------------------------------- bookings in the event loop


def test_bookings_run_in_the_event_loop_on_sqlite_and_wait_in_the_thread_pool_while_another_process_writes(
    client, database, monkeypatch
):
    """A booking's write (consume, reverse, hold, capture, release: six here) runs in the event loop itself
    on SQLite when the writer is free, and in the thread pool on PostgreSQL. While another
    process holds SQLite's writer, the booking waits its turn in the thread pool (never in the
    event loop) and is booked once the other commits."""
    import sqlite3

    import licensing.api.deps as deps

    hops: list[str] = []
    to_the_pool = deps.run_in_threadpool

    async def counted(function, *args, **kwargs):
        hops.append(function.__name__)
        return await to_the_pool(function, *args, **kwargs)

    monkeypatch.setattr(deps, "run_in_threadpool", counted)
    acme = account(client)
    monthly_licence(client, acme, credit_pack(client), "2026-12-01")
    billing_run(client, "2026-12-04")
    hops.clear()
    consumption = created(client, f"/api/v1/accounts/{acme}/consumptions", {"credits": "1.00"})
    assert call(client, "POST", f"/api/v1/consumptions/{consumption['id']}/reverse").status_code == 200
    for end in ("capture", "release"):
        hold = created(client, f"/api/v1/accounts/{acme}/holds", {"credits": "1.00", "event_at": "2026-12-05T10:00:00Z"})
        assert call(client, "POST", f"/api/v1/holds/{hold['id']}/{end}").status_code == 200
    assert hops.count("write") == (0 if database.is_sqlite else 6)
    if not database.is_sqlite:
        return

    other = sqlite3.connect(database.writer.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, other.commit).start()
    try:
        hops.clear()
        created(client, f"/api/v1/accounts/{acme}/consumptions", {"credits": "2.00"})
    finally:
        other.close()
    assert hops == ["write"]
    assert call(client, "GET", f"/api/v1/accounts/{acme}/credits").json()["remaining"] == "7.00"


# ---------------------------------------------------------------- the summary at a later moment


def test_the_summary_at_a_later_moment_applies_pending_rollover_cuts(client):
    """10 credits a month, lifetime P3M, max_rollover 5, January to April approved in January
    and nothing used: on Feb 1 the account holds 5 + 10, on Mar 1 again 5 + 10 (SPEC 3)."""
    acme = account(client)
    monthly_licence(client, acme, credit_pack(client, lifetime="P3M"), "2027-01-01", max_rollover="5")
    assert billing_run(client, "2027-04-01", moment="2027-01-10T09:00:00Z")["invoices_approved"] == 4

    def summary(at: str) -> dict:
        response = call(client, "GET", f"/api/v1/accounts/{acme}/credits", "2027-01-10T09:00:00Z", params={"at": at})
        assert response.status_code == 200, response.text
        return response.json()

    february = summary("2027-02-01T00:00:00Z")
    assert (february["granted"], february["remaining"], february["removed"]) == ("20.00", "15.00", "5.00")
    march = summary("2027-03-01T00:00:00Z")
    assert (march["granted"], march["remaining"], march["removed"]) == ("30.00", "15.00", "15.00")
    assert summary("2027-01-20T00:00:00Z")["remaining"] == "10.00"


# ---------------------------------------------------------------- one bad licence


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        (
            "/api/v1/products",
            "lifetime",
            {"kind": "credit_pack", "name": "Forever", "price": "1.00", "currency": "EUR", "tax_rate": "20", "credits": "1", "lifetime": "P9000Y"},
        ),
        (
            "/api/v1/products",
            "lifetime",
            {"kind": "credit_pack", "name": "Long", "price": "1.00", "currency": "EUR", "tax_rate": "20", "credits": "1", "lifetime": "P36526D"},
        ),
        ("/api/v1/licences", "renewal_term", {"start_date": "2027-01-01", "end_date": "2027-12-31", "auto_renew": True, "renewal_term": "P9000Y"}),
        ("/api/v1/licences", "renewal_term", {"start_date": "2027-01-01", "renewal_term": "P1201M"}),
    ],
)
def test_lifetimes_and_terms_beyond_100_years_are_refused_naming_the_field(client, path, field, body):
    if path == "/api/v1/licences":
        body = body | {"account_id": account(client)}
    problem = refused_with(call(client, "POST", path, json=body), 422, "validation_error")
    assert [error["field"] for error in problem["errors"]] == [field]
    assert "100 years" in problem["detail"]


def test_a_hundred_years_is_the_longest_lifetime_and_term(client):
    credit_pack(client, lifetime="P100Y")
    credit_pack(client, lifetime="P36525D")
    created(client, "/api/v1/licences", {"account_id": account(client), "start_date": "2027-01-01", "renewal_term": "P1200M"})


def test_an_adjustment_with_a_lifetime_beyond_100_years_is_refused(client):
    acme = account(client)
    body = {"kind": "add", "credits": "5", "reason": "bonus", "lifetime": "P9000Y"}
    problem = refused_with(call(client, "POST", f"/api/v1/accounts/{acme}/adjustments", json=body), 422, "validation_error")
    assert problem["errors"][0]["field"] == "lifetime"


def test_lines_beyond_what_the_money_columns_hold_are_refused(client):
    acme = account(client)
    pack = credit_pack(client, credits="1000000", price="999999999999")
    licence_id = created(client, "/api/v1/licences", {"account_id": acme, "start_date": "2027-01-01"})["id"]
    services = f"/api/v1/licences/{licence_id}/services"
    huge = {"product_id": pack, "quantity": "999999999999", "schedule": "monthly"}
    assert refused_with(call(client, "POST", services, json=huge), 422, "validation_error")["errors"][0]["field"] == "quantity"
    priced = {"product_id": credit_pack(client), "quantity": "999999", "unit_price": "999999999", "schedule": "monthly"}
    assert refused_with(call(client, "POST", services, json=priced), 422, "validation_error")["errors"][0]["field"] == "unit_price"
    top_up = call(client, "POST", f"/api/v1/accounts/{acme}/top-ups", json={"product_id": pack, "quantity": "1000"})
    refused_with(top_up, 422, "validation_error")
    assert call(client, "GET", "/api/v1/invoices", params={"account_id": acme}).json()["items"] == []


@pytest.mark.parametrize("damage", ["lifetime of 9000 years", "amount beyond the money columns"])
def test_one_licence_that_cannot_be_billed_does_not_stop_billing_for_the_others(client, database, damage):
    """A licence whose pack was given an absurd value before input was checked (written here
    straight into the database) fails alone: the others are billed and approved, the failure is
    in the run's answer and an event, and the next run bills it once it is corrected."""
    acme, globex = account(client), account(client, "Globex")
    good_pack, bad_pack = credit_pack(client), credit_pack(client)
    good = monthly_licence(client, acme, good_pack, "2027-01-01")
    bad = monthly_licence(client, globex, bad_pack, "2027-01-01")
    with database.write() as session:
        if damage.startswith("lifetime"):
            session.exec(text("UPDATE products SET lifetime = 'P9000Y' WHERE id = :id").bindparams(id=int(bad_pack)))
        else:  # quantity 10^6 x unit price 10^10: a net of 10^16, beyond the scaled 64-bit column
            session.exec(text("UPDATE contract_services SET quantity = 10000000000, unit_price = 100000000000000 WHERE product_id = :id")
                         .bindparams(id=int(bad_pack)))

    run = billing_run(client, "2027-01-01", moment="2027-01-01T02:00:00Z")
    assert (run["invoices_created"], run["invoices_approved"]) == (1, 1)
    assert [failure["licence_id"] for failure in run["failed"]] == [bad]
    assert ("longer than 100 years" if damage.startswith("lifetime") else "beyond") in run["failed"][0]["error"]
    assert call(client, "GET", "/api/v1/invoices", params={"licence_id": good}).json()["items"][0]["status"] == "approved"
    assert call(client, "GET", "/api/v1/invoices", params={"licence_id": bad}).json()["items"] == []
    with database.read() as session:
        events = session.exec(select(Event).where(Event.type == "billing.failed")).all()
    assert len(events) == 1 and f'"licence_id": "{bad}"' in events[0].data
    listed = call(client, "GET", "/api/v1/events", params={"type": "billing.failed"}, moment="2027-01-01T02:00:00Z")
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1, listed.text

    with database.write() as session:
        session.exec(text("UPDATE products SET lifetime = 'P1M' WHERE id = :id").bindparams(id=int(bad_pack)))
        session.exec(text("UPDATE contract_services SET quantity = 10000, unit_price = NULL WHERE product_id = :id").bindparams(id=int(bad_pack)))
    again = billing_run(client, "2027-01-01", moment="2027-01-01T03:00:00Z")
    assert (again["invoices_created"], again["invoices_approved"], again["failed"]) == (1, 1, [])


def test_the_renewals_job_renews_the_others_when_one_licence_fails(database):
    from licensing.licences.renewal import renew_due_licences

    acme = factories.account(database)
    good = factories.licence(database, acme.id, date(2025, 12, 1), date(2026, 11, 30), auto_renew=True)
    bad = factories.licence(database, acme.id, date(2025, 12, 1), date(2026, 11, 30), auto_renew=True)
    with database.write() as session:
        session.exec(text("UPDATE licences SET renewal_term = 'P9000Y' WHERE id = :id").bindparams(id=bad.id))
    renewals = renew_due_licences(database, today=date(2026, 12, 4), now=datetime(2026, 12, 4, 0, 50, tzinfo=UTC))
    assert renewals.renewed == 1
    assert [licence_id for licence_id, _error in renewals.failed] == [bad.id]
    from licensing.licences.models import Licence

    with database.read() as session:
        assert session.get(Licence, good.id).end_date == date(2027, 11, 30)
        assert session.get(Licence, bad.id).end_date == date(2026, 11, 30)
        assert len(session.exec(select(Event).where(Event.type == "renewal.failed")).all()) == 1


# ---------------------------------------------------------------- billing a day twice


def test_the_anchor_day_cannot_change_once_a_period_is_billed(client):
    acme = account(client)
    billed = monthly_licence(client, acme, credit_pack(client), "2027-01-01")
    unbilled = created(client, "/api/v1/licences", {"account_id": acme, "start_date": "2027-03-01"})["id"]
    billing_run(client, "2027-01-01", moment="2027-01-01T02:00:00Z")

    problem = refused_with(call(client, "PATCH", f"/api/v1/licences/{billed}", json={"billing_anchor_day": 15}), 409, "licence_already_billed")
    assert "anchor" in problem["detail"]
    assert call(client, "GET", f"/api/v1/licences/{billed}").json()["billing_anchor_day"] == 1
    assert call(client, "PATCH", f"/api/v1/licences/{unbilled}", json={"billing_anchor_day": 15}).json()["billing_anchor_day"] == 15
    # The next run bills February once, on the old anchor.
    assert billing_run(client, "2027-02-01", moment="2027-02-01T02:00:00Z")["invoices_created"] == 1
    lines = [line for invoice in call(client, "GET", "/api/v1/invoices", params={"licence_id": billed}).json()["items"] for line in invoice["lines"]]
    assert sorted((line["period_start"], line["period_end"]) for line in lines) == [("2027-01-01", "2027-01-31"), ("2027-02-01", "2027-02-28")]


def test_a_weekly_service_cannot_move_its_weeks_once_billed(client):
    acme = account(client)
    licence_id = created(client, "/api/v1/licences", {"account_id": acme, "start_date": "2027-02-01"})["id"]
    service = created(client, f"/api/v1/licences/{licence_id}/services",
                      {"product_id": credit_pack(client, lifetime="P1W"), "schedule": "weekly", "from_date": "2027-02-01"})["id"]
    billing_run(client, "2027-02-01", moment="2027-02-01T02:00:00Z")
    patch = call(client, "PATCH", f"/api/v1/licences/{licence_id}/services/{service}", json={"from_date": "2027-02-03"})
    refused_with(patch, 409, "service_already_billed")
    moved = call(client, "PATCH", f"/api/v1/licences/{licence_id}/services/{service}", json={"to_date": "2027-03-31"})
    assert moved.status_code == 200, moved.text


# ---------------------------------------------------------------- text and ids


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\ufffe", "\uffff", "\ufdd0", "\U0010fffe", "\ud800"])
def test_text_fields_refuse_control_characters_and_noncharacters(client, character):
    acme = account(client)
    for path, body in (
        ("/api/v1/accounts", {"name": f"Ac{character}me", "email": "a@acme.test", "currency": "EUR"}),
        ("/api/v1/accounts", {"name": "Acme", "email": "a@acme.test", "currency": "EUR", "address": f"1 Road{character}"}),
        (f"/api/v1/accounts/{acme}/members", {"name": "Ada", "email": f"ada{character}@acme.test"}),
        (f"/api/v1/accounts/{acme}/business-units", {"name": f"Cardio{character}logy"}),
    ):
        response = call(client, "POST", path, content=json.dumps(body), headers={"Content-Type": "application/json"})
        problem = refused_with(response, 422, "validation_error")
        assert [error["field"] for error in problem["errors"]] == [next(key for key, value in body.items() if character in value)]
    patch = call(
        client, "PATCH", f"/api/v1/accounts/{acme}", content=json.dumps({"name": f"Ev{character}il"}), headers={"Content-Type": "application/json"}
    )
    refused_with(patch, 422, "validation_error")
    assert call(client, "GET", f"/api/v1/accounts/{acme}").json()["name"] == "Acme Ltd"
    assert len(call(client, "GET", "/api/v1/accounts").json()["items"]) == 1


def test_newlines_and_tabs_are_allowed_in_addresses_and_descriptions_only(client):
    body = {"name": "Acme", "email": "a@acme.test", "currency": "EUR", "address": "1 Road\n\t75001 Paris"}
    assert created(client, "/api/v1/accounts", body)["address"] == "1 Road\n\t75001 Paris"
    refused_with(call(client, "POST", "/api/v1/accounts", json=body | {"name": "Acme\nBcc: x@evil.test"}), 422, "validation_error")


@pytest.mark.parametrize("identifier", ["\u00b2", "\u0661", "\uff11", "1\u0661"])
def test_ids_and_cursors_are_ascii_digits(client, identifier):
    account(client)
    refused_with(call(client, "GET", f"/api/v1/accounts/{identifier}"), 404, "not_found")
    refused_with(call(client, "GET", "/api/v1/accounts", params={"cursor": identifier}), 422, "validation_error")
    assert call(client, "GET", "/api/v1/invoices", params={"account_id": identifier}).json()["items"] == []


# ---------------------------------------------------------------- malformed bodies


def test_malformed_utf8_in_a_json_body_is_a_validation_error(client):
    response = call(client, "POST", "/api/v1/accounts", content=b'{"name": "Acme \xff\xfe", "email": "a@acme.test", "currency": "EUR"}',
                    headers={"Content-Type": "application/json"})
    refused_with(response, 422, "validation_error")
    assert call(client, "GET", "/api/v1/accounts").json()["items"] == []


# ---------------------------------------------------------------- outages


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_database_that_cannot_be_reached_answers_503_with_retry_after(tmp_path):
    """Nothing listens on the port, or the SQLite file's folder does not exist: every request
    that needs the database answers 503 ``database_unavailable`` with Retry-After, never 500."""
    from licensing.api.app import create_app

    for url in (f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere?connect_timeout=2", f"sqlite:///{tmp_path}/missing/dir/licensing.db"):
        database = Database(url)
        try:
            client = TestClient(create_app(database), headers={"Authorization": "Bearer lk_anything"}, raise_server_exceptions=False)
            for method, path in (("GET", "/api/v1/accounts"), ("POST", "/api/v1/accounts")):
                response = client.request(method, path, json={"name": "Acme", "email": "a@acme.test", "currency": "EUR"})
                problem = refused_with(response, 503, "database_unavailable")
                assert response.headers["Retry-After"] == "5", problem
            health = client.get("/health")
            assert (health.status_code, health.headers["Retry-After"]) == (503, "5")
        finally:
            database.dispose()


class Proxy:
    """A TCP proxy to PostgreSQL that can be cut (connections dropped, new ones refused) and
    restored, standing for a database restart or a network outage."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.lock = threading.Lock()
        self.open = False
        self.restore()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.open = True
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        self.open = False
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()
        with self.lock:
            for connection in self.sockets:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.close()


def test_postgresql_going_away_answers_503_and_recovers_without_a_restart(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a network outage is PostgreSQL's; SQLite's missing file is tested above")
    from sqlalchemy.engine import make_url

    from licensing.api.app import create_app
    from licensing.auth.services import create_api_key

    url = make_url(database_url.replace("postgresql://", "postgresql+psycopg://"))
    proxy = Proxy((url.host, url.port))
    database = Database(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False) + "?connect_timeout=2")
    try:
        with database.write() as session:
            _key, secret = create_api_key(session, name="outage", role="billing", at=datetime.now(UTC))
        client = TestClient(create_app(database), headers={"Authorization": f"Bearer {secret}"}, raise_server_exceptions=False)
        body = {"name": "Acme", "email": "a@acme.test", "currency": "EUR"}
        assert client.post("/api/v1/accounts", json=body).status_code == 201
        proxy.cut()
        for _ in range(3):
            response = client.post("/api/v1/accounts", json=body)
            refused_with(response, 503, "database_unavailable")
            assert response.headers["Retry-After"] == "5"
        assert client.get("/health").status_code == 503
        proxy.restore()
        statuses = [client.post("/api/v1/accounts", json=body).status_code for _ in range(3)]
        assert statuses[-1] == 201 and set(statuses) <= {201, 503}
        assert client.get("/health").status_code == 200
    finally:
        proxy.cut()
        database.dispose()


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(("name", "value"), [
    ("LICENSING_TIMEZONE", "Mars/Olympus"),
    ("LICENSING_TIMEZONE", ""),
    ("LICENSING_TIMEZONE", "/etc/localtime"),
    ("LICENSING_TIMEZONE", "../../../etc/passwd"),
    ("LICENSING_DATABASE_URL", "mysql://root@localhost/licensing"),
    ("LICENSING_PAYMENT_TERMS_DAYS", "-3"),
    ("LICENSING_EXPIRY_NOTICE_DAYS", "[30, 0]"),
    ("LICENSING_EXPIRY_NOTICE_DAYS", "soon"),
    ("LICENSING_SCHEDULE", '{"billing-run": "every day"}'),
    ("LICENSING_SCHEDULE", '{"coffee": "0 8 * * *"}'),
    ("LICENSING_SMTP_URL", "http://mail.example.test"),
    ("LICENSING_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8,intranet"),
    ("LICENSING_WEBHOOK_DEADLINE_SECONDS", "0"),
    ("LICENSING_OPERATOR_LOGO", "/no/such/logo.png"),
    ("LICENSING_OPERATOR_COUNTRY", "France"),
])
def test_a_bad_setting_stops_the_command_naming_it(tmp_path, name, value):
    environment = os.environ | {"LICENSING_DATABASE_URL": f"sqlite:///{tmp_path}/licensing.db", name: value}
    result = subprocess.run([sys.executable, "-m", "licensing.cli", "migrate"], capture_output=True, text=True, timeout=60, env=environment)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("invalid setting") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert name in result.stderr or name == "LICENSING_SCHEDULE" or "error parsing" in result.stderr
    assert not (tmp_path / "licensing.db").exists()


@pytest.mark.parametrize("command", [["billing-run"], ["scheduler", "--once"], ["serve", "--port", "0"], ["api-key", "list"], ["demo"]])
def test_every_command_checks_the_settings_before_it_runs(tmp_path, command):
    """An unknown time zone once started the server, and billing then answered 500."""
    environment = os.environ | {"LICENSING_DATABASE_URL": f"sqlite:///{tmp_path}/licensing.db", "LICENSING_TIMEZONE": "Mars/Olympus"}
    result = subprocess.run([sys.executable, "-m", "licensing.cli", *command], capture_output=True, text=True, timeout=60, env=environment)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "invalid setting LICENSING_TIMEZONE: 'Mars/Olympus' is not a time zone name (an IANA name such as Europe/Berlin or UTC)\n"
    assert not (tmp_path / "licensing.db").exists()
