"""The scheduler: jobs that never double and never stop (issue "scheduler and outbox").

A year of ticks is driven by passing each tick's moment to ``run_due`` (the jobs read no other
clock), and what it produced is compared with what the spec's rules give for each licence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import func, select

from licensing.credits.models import ExpiryNotice, Grant, LedgerEntry
from licensing.events import Event
from licensing.invoicing import billing
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.scheduler import ProcessLock, SchedulerAlreadyRunning, due_jobs, run_due
from licensing.scheduler.models import JobRun
from tests import factories

D = Decimal
BILLING_JOBS = {"renewals", "billing-run", "expiry-sweep", "expiry-notices"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ticks(start: datetime, end: datetime, every: timedelta):
    moment = start
    while moment <= end:
        yield moment
        moment += every


def space(database):
    """Three licences, all auto-approved: a monthly pack all year, a weekly pack for eight
    weeks from Monday Feb 1, a one-off pack on May 10."""
    account = factories.account(database)
    monthly_pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    weekly_pack = factories.credit_pack(database, credits="5", lifetime="P1W", price="40.00")
    one_off_pack = factories.credit_pack(database, credits="100", lifetime="P3M", price="800.00")
    monthly = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31), auto_approve=True)
    factories.service(database, monthly.id, monthly_pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
    weekly = factories.licence(database, account.id, date(2027, 2, 1), date(2027, 3, 28), auto_approve=True)
    factories.service(database, weekly.id, weekly_pack.id, schedule="weekly", from_date=date(2027, 2, 1), to_date=date(2027, 3, 28))
    one_off = factories.licence(database, account.id, date(2027, 5, 10), date(2027, 12, 31), auto_approve=True)
    factories.service(database, one_off.id, one_off_pack.id, schedule="one_off", from_date=date(2027, 5, 10))
    return account, monthly, weekly, one_off


def test_a_year_of_ticks_bills_grants_expires_and_notices_everything_exactly_once(database):
    _account, monthly, weekly, one_off = space(database)

    for moment in ticks(at("2026-12-31 18:00"), at("2028-01-02 06:00"), timedelta(hours=12)):
        outcomes = run_due(database, now=moment, only=BILLING_JOBS)
        assert [outcome.error for outcome in outcomes if outcome.error] == []

    with database.read() as session:
        invoices = session.exec(select(Invoice).order_by(Invoice.id)).all()
        lines = session.exec(select(InvoiceLine).order_by(InvoiceLine.id)).all()
        grants = session.exec(select(Grant).order_by(Grant.id)).all()
        entries = session.exec(select(LedgerEntry).order_by(LedgerEntry.id)).all()
        notices = session.exec(select(ExpiryNotice).order_by(ExpiryNotice.id)).all()
        runs = {run.name: run for run in session.exec(select(JobRun)).all()}

    # Invoices: one per month of the monthly licence, February and March of the weekly one, May
    # of the one-off: 15, all approved, numbered without a gap.
    by_licence = Counter(invoice.licence_id for invoice in invoices)
    assert by_licence == {monthly.id: 12, weekly.id: 2, one_off.id: 1}
    assert [invoice.number for invoice in invoices] == sorted(invoice.number for invoice in invoices)
    assert sorted(invoice.number for invoice in invoices) == [f"INV-2027-{n:06d}" for n in range(1, 16)]
    # Lines: 12 monthly, weeks starting Feb 1, 8, 15, 22 and Mar 1, 8, 15, 22, one one-off.
    weekly_starts = sorted(line.period_start for line in lines if line.schedule == "weekly")
    assert weekly_starts == [date(2027, 2, 1) + timedelta(days=7 * k) for k in range(8)]
    assert Counter(line.schedule for line in lines) == {"monthly": 12, "weekly": 8, "one_off": 1}
    # Grants: one per credit-pack line, each from its own line.
    assert len(grants) == 21 and len({grant.invoice_line_id for grant in grants}) == 21
    monthly_windows = sorted((g.valid_from, g.expires_at) for g in grants if g.credits == D("10"))
    assert monthly_windows == [
        (datetime(2027, m, 1, tzinfo=UTC), datetime(2027 + m // 12, m % 12 + 1, 1, tzinfo=UTC)) for m in range(1, 13)
    ]
    [big] = [g for g in grants if g.credits == D("100")]
    # approved by the billing job's run at the first tick after 01:00 on May 10 (06:00)
    assert (big.valid_from, big.expires_at) == (at("2027-05-10 06:00"), at("2027-08-10 00:00"))
    # Expiry: every grant expired once, for all its credits, at its own expiry instant.
    expiries = [entry for entry in entries if entry.kind == "expire"]
    assert sorted((entry.grant_id, -entry.credits, entry.occurred_at) for entry in expiries) == sorted(
        (grant.id, grant.credits, grant.expires_at) for grant in grants
    )
    assert Counter(entry.kind for entry in entries) == {"grant": 21, "expire": 21}
    # Notices: once per grant and horizon. Every grant is noticed 7 days ahead; a grant that is
    # more than 7 days from its expiry when it becomes valid is also noticed at the 30-day
    # horizon (a month's grant, even February's 28 days); a weekly grant (7 days) only at 7.
    assert len({(notice.grant_id, notice.horizon_days) for notice in notices}) == len(notices)
    noticed = {(notice.grant_id, notice.horizon_days) for notice in notices}
    for grant in grants:
        life = grant.expires_at - grant.valid_from
        expected = {7} | ({30} if life > timedelta(days=7) else set())
        assert {h for g, h in noticed if g == grant.id} == expected, (grant.id, life)
    with database.read() as session:
        events = Counter(session.exec(select(Event.type)).all())
    assert events["credits.expiring"] == len(notices)
    assert events["invoice.approved"] == 15 and events["credits.expired"] == 21
    # The billing job ran once per day it was due, no more: at the first tick (for Dec 31, never
    # run before), then for each of the 367 days from 2027-01-01 to 2028-01-02.
    assert runs["billing-run"].runs == 1 + 367 and runs["billing-run"].last_error is None


def test_three_missed_daily_billing_runs_are_caught_up_by_one_run(database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="5", lifetime="P1W", price="40.00")
    licence = factories.licence(database, account.id, date(2027, 2, 1), auto_approve=True)
    factories.service(database, licence.id, pack.id, schedule="weekly", from_date=date(2027, 2, 1))
    run_due(database, now=at("2027-01-31 02:00"), only={"billing-run"})
    # the scheduler is down Feb 1 to Feb 3; it comes back on Feb 4 at 09:00
    assert [name for name, _moment in due_jobs(database, at("2027-02-04 09:00")) if name == "billing-run"] == ["billing-run"]
    [outcome] = run_due(database, now=at("2027-02-04 09:00"), only={"billing-run"})
    assert outcome.summary == "1 invoices created, 1 approved"
    assert run_due(database, now=at("2027-02-04 12:00"), only={"billing-run"}) == []
    with database.read() as session:
        [invoice] = session.exec(select(Invoice)).all()
        lines = session.exec(select(InvoiceLine.period_start).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all()
        run = session.get(JobRun, "billing-run")
    # the same invoice as daily runs would have made: February's four weeks
    assert list(lines) == [date(2027, 2, 1), date(2027, 2, 8), date(2027, 2, 15), date(2027, 2, 22)]
    assert (run.runs, run.last_due_at) == (2, at("2027-02-04 01:00"))


def test_a_billing_run_interrupted_mid_batch_and_resumed_ends_as_an_uninterrupted_one(database, monkeypatch):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    for _ in range(10):
        licence = factories.licence(database, account.id, date(2027, 1, 1), auto_approve=True)
        factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1))
    monkeypatch.setattr(billing, "BATCH_SIZE", 4)
    from licensing.invoicing import approval

    real = approval.approve_invoices
    calls = {"n": 0}

    def crash_on_the_second_batch(*args, **kwargs):
        # The database goes away mid-run (a licence's own failure would be billed around instead).
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("COMMIT", {}, ConnectionError("the machine lost power"))
        return real(*args, **kwargs)

    monkeypatch.setattr(approval, "approve_invoices", crash_on_the_second_batch)
    [outcome] = run_due(database, now=at("2027-01-01 02:00"), only={"billing-run"})
    assert outcome.error.startswith("OperationalError: ") and "the machine lost power" in outcome.error
    with database.read() as session:
        assert session.exec(select(func.count()).select_from(Invoice)).one() == 4  # the first batch stayed done
        assert session.get(JobRun, "billing-run").last_due_at is None

    monkeypatch.setattr(approval, "approve_invoices", real)
    [outcome] = run_due(database, now=at("2027-01-01 03:00"), only={"billing-run"})
    assert outcome.summary == "6 invoices created, 6 approved"

    with database.read() as session:
        invoices = session.exec(select(Invoice).order_by(Invoice.id)).all()
        grants = session.exec(select(Grant)).all()
    assert len(invoices) == 10 and {invoice.status for invoice in invoices} == {"approved"}
    assert sorted(invoice.number for invoice in invoices) == [f"INV-2027-{n:06d}" for n in range(1, 11)]
    assert len(grants) == 10 and len({grant.invoice_line_id for grant in grants}) == 10


def test_a_second_scheduler_on_an_sqlite_database_refuses_to_start_and_says_why(tmp_path):
    from licensing.db import Database
    from licensing.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'space.db'}"
    upgrade(url)
    database = Database(url)
    first, second = ProcessLock(database), ProcessLock(database)
    first.acquire()
    try:
        with pytest.raises(SchedulerAlreadyRunning, match=r"another scheduler .* is running on this SQLite database"):
            second.acquire()
        environment = os.environ | {"LICENSING_DATABASE_URL": url}
        result = subprocess.run(
            [sys.executable, "-m", "licensing.cli", "scheduler", "--once"], env=environment, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 3
        assert "SQLite runs one scheduler at a time" in result.stderr
    finally:
        first.release()
    second.acquire()  # free again once the first stops
    second.release()
    database.dispose()


def test_two_scheduler_processes_on_postgresql_bill_500_licences_once(database, database_url, tmp_path):
    if database.is_sqlite:
        pytest.skip("several schedulers share one PostgreSQL database; SQLite runs one (test above)")
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    start = date.today().replace(day=1)
    from licensing.db.bulk import insert_rows
    from licensing.licences.models import ContractService, Licence

    with database.write() as session:
        licence_ids = insert_rows(session, Licence.__table__, [
            {"account_id": account.id, "start_date": start, "end_date": None, "auto_renew": False, "renewal_term": None, "billing_anchor_day": 1,
             "auto_approve": True, "status": "active", "terminated_on": None, "created_at": factories.SETUP_TIME}
            for _ in range(500)
        ], return_ids=True)
        insert_rows(
            session,
            ContractService.__table__,
            [
                {
                    "licence_id": licence_id,
                    "product_id": pack.id,
                    "quantity": D(1),
                    "unit_price": None,
                    "schedule": "monthly",
                    "from_date": start,
                    "to_date": None,
                    "business_unit_id": None,
                    "max_rollover": None,
                    "prorate": True,
                    "prorate_credits": False,
                    "created_at": factories.SETUP_TIME,
                }
                for licence_id in licence_ids
            ],
        )
    environment = os.environ | {
        "LICENSING_DATABASE_URL": database_url, "LICENSING_MAIL_OUTBOX": str(tmp_path / "outbox"),
        "LICENSING_SCHEDULE": json.dumps({"billing-run": "* * * * *"}),
    }
    command = [sys.executable, "-m", "licensing.cli", "scheduler", "--once"]
    processes = [subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs

    with database.read() as session:
        invoices = session.exec(select(Invoice)).all()
        grants = session.exec(select(Grant)).all()
        lines = session.exec(select(InvoiceLine)).all()
    year = start.year
    assert len(invoices) == 500 and {invoice.status for invoice in invoices} == {"approved"}
    assert sorted(invoice.number for invoice in invoices) == [f"INV-{year}-{n:06d}" for n in range(1, 501)]
    assert len(lines) == 500 and len({(line.contract_service_id, line.billing_slot) for line in lines}) == 500
    assert len(grants) == 500 and len({grant.invoice_line_id for grant in grants}) == 500
