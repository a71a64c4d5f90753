"""Payment reminders and overdue accounts (issue 14): the payment-reminders job over a simulated
month and more of daily runs mails each overdue invoice once per stage (7, 14 and 30 days past
due), stops once it is paid, mails only the latest stage after a gap; with
LICENSING_BLOCK_CONSUMPTION_AFTER_DAYS an account that far overdue gets 409 account_overdue on
bookings and holds (each on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from email import message_from_bytes, policy

import pytest
from sqlmodel import select

from licensing.credits.consumption import consume
from licensing.credits.holds import place_hold
from licensing.documents.models import PaymentReminder
from licensing.errors import AccountOverdue
from licensing.events import Event
from licensing.invoicing.payments import record_payment
from licensing.scheduler import run_job
from tests import factories
from tests.support.over_http import at, refused_with, routes_resolved_before_the_clock_is_frozen  # noqa: F401 - fixture
from tests.support.use_cases import ACTOR, bill_and_approve, instant

JANUARY = instant("2027-01-01 09:00")  # invoices approved; due on Jan 15


def approved_invoice(database, name: str, *, pack: bool = False):
    account = factories.account(database, name=name)
    product = factories.credit_pack(database, credits="10", lifetime="P3M") if pack else factories.plain_service(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 1, 31))
    factories.service(database, licence.id, product.id, from_date=date(2027, 1, 1), to_date=date(2027, 1, 31))
    return account, bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)


def reminders_mailed(outbox) -> list[tuple[str, str]]:
    """(To, Subject) of each reminder mail written to the outbox, oldest first."""
    paths = sorted(outbox.glob("reminder-*.eml"), key=lambda path: path.stat().st_mtime_ns)
    mails = [message_from_bytes(path.read_bytes(), policy=policy.default) for path in paths]
    return [(str(mail["To"]), str(mail["Subject"])) for mail in mails]


def events(database, type_: str) -> list[str]:
    with database.read() as session:
        return list(session.exec(select(Event.data).where(Event.type == type_).order_by(Event.id)).all())


def stages(database, invoice_id: int) -> list[tuple[int, str]]:
    with database.read() as session:
        rows = session.exec(select(PaymentReminder).where(PaymentReminder.invoice_id == invoice_id).order_by(PaymentReminder.stage_days))
        return [(row.stage_days, row.status) for row in rows]


def test_reminders_at_7_14_and_30_days_once_each_over_a_month_of_daily_runs(database, set_operator_setting, tmp_path):
    set_operator_setting("mail_outbox", str(tmp_path))
    set_operator_setting("mail_on_approval", "false")
    _late, unpaid = approved_invoice(database, "Late Ltd")
    _prompt, paid_later = approved_invoice(database, "Prompt Ltd")

    summaries = {}
    for day in range(45):  # Jan 10 .. Feb 23, every day at 02:00
        moment = instant("2027-01-10 02:00") + timedelta(days=day)
        summaries[moment.date()] = run_job(database, "payment-reminders", moment)
        if moment.date() == date(2027, 1, 25):  # Prompt Ltd pays after its first reminder
            with database.write() as session:
                record_payment(session, paid_later.id, amount=Decimal("372.00"), received_at=moment, now=moment, actor=ACTOR)

    subjects = [subject for _to, subject in reminders_mailed(tmp_path)]
    assert subjects == [
        "Reminder: invoice INV-2027-000001 from Licensing Demo Workspace is 7 days overdue",
        "Reminder: invoice INV-2027-000002 from Licensing Demo Workspace is 7 days overdue",
        "Reminder: invoice INV-2027-000001 from Licensing Demo Workspace is 14 days overdue",
        "Reminder: invoice INV-2027-000001 from Licensing Demo Workspace is 30 days overdue",
    ]
    assert summaries[date(2027, 1, 22)] == "2 reminders queued; 2 sent, 0 to retry, 0 failed"
    assert summaries[date(2027, 1, 23)] == "0 reminders queued; 0 sent, 0 to retry, 0 failed"
    assert stages(database, unpaid.id) == [(0, "skipped"), (7, "sent"), (14, "sent"), (30, "sent")]
    assert stages(database, paid_later.id) == [(0, "skipped"), (7, "sent")]
    assert len(events(database, "invoice.overdue")) == 2  # on Jan 16, once per invoice
    assert [f'"days_overdue": {days}' in data for data, days in zip(events(database, "invoice.reminded"), (7, 7, 14, 30), strict=True)] == [True] * 4


def test_a_reminder_says_what_is_due_and_how_to_pay(database, set_operator_setting, tmp_path):
    set_operator_setting("mail_outbox", str(tmp_path))
    set_operator_setting("mail_on_approval", "false")
    set_operator_setting("operator_iban", "FR1420041010050500013M02606")
    _account, invoice = approved_invoice(database, "Late Ltd")
    with database.write() as session:
        record_payment(session, invoice.id, amount=Decimal("72.00"), received_at=JANUARY, now=JANUARY, actor=ACTOR)

    run_job(database, "payment-reminders", instant("2027-01-22 02:00"))

    (path,) = tmp_path.glob("reminder-*.eml")
    mail = message_from_bytes(path.read_bytes(), policy=policy.default)
    text = mail.get_body(("plain",)).get_content()
    assert "invoice INV-2027-000001 of 1 Jan 2027, due by 15 Jan 2027, is 7 days overdue: 300.00 EUR of 372.00 EUR is still due." in text
    assert "IBAN: FR14 2004 1010 0505 0001 3M02 606" in text
    assert "Reference: RF44 INV2 0270 0000 1" in text
    assert [part.get_filename() for part in mail.iter_attachments()] == ["INV-2027-000001.pdf"]


def test_after_a_gap_only_the_latest_stage_is_mailed(database, set_operator_setting, tmp_path):
    set_operator_setting("mail_outbox", str(tmp_path))
    set_operator_setting("mail_on_approval", "false")
    _account, invoice = approved_invoice(database, "Late Ltd")

    assert run_job(database, "payment-reminders", instant("2027-02-01 02:00")) == "1 reminders queued; 1 sent, 0 to retry, 0 failed"
    assert stages(database, invoice.id) == [(0, "skipped"), (7, "skipped"), (14, "sent")]
    assert [subject.rsplit(" is ", 1)[1] for _to, subject in reminders_mailed(tmp_path)] == ["14 days overdue"]


def test_no_reminder_before_the_due_date_nor_for_a_paid_or_credited_invoice(database, set_operator_setting, tmp_path):
    set_operator_setting("mail_outbox", str(tmp_path))
    set_operator_setting("mail_on_approval", "false")
    _account, invoice = approved_invoice(database, "Prompt Ltd")
    assert run_job(database, "payment-reminders", instant("2027-01-15 23:00")) == "0 reminders queued; 0 sent, 0 to retry, 0 failed"
    with database.write() as session:
        record_payment(session, invoice.id, amount=Decimal("372.00"), received_at=JANUARY, now=JANUARY, actor=ACTOR)
    assert run_job(database, "payment-reminders", instant("2027-02-20 02:00")) == "0 reminders queued; 0 sent, 0 to retry, 0 failed"
    assert stages(database, invoice.id) == []


def test_an_account_that_far_overdue_may_not_book_until_it_pays(database, set_operator_setting):
    set_operator_setting("block_consumption_after_days", "30")
    account, invoice = approved_invoice(database, "Late Ltd", pack=True)  # 10 credits, due Jan 15

    def book(moment):
        with database.write() as session:
            return consume(session, account.id, credits=Decimal("1"), now=moment, actor=ACTOR)

    book(instant("2027-02-13 12:00"))  # 29 days past due: still allowed
    with pytest.raises(AccountOverdue) as refused:
        book(instant("2027-02-14 12:00"))
    assert refused.value.extra == {"overdue_since": "2027-01-15", "days_overdue": 30}
    with pytest.raises(AccountOverdue), database.write() as session:
        place_hold(session, account.id, credits=Decimal("1"), event_at=instant("2027-02-20 10:00"), now=instant("2027-02-14 12:00"), actor=ACTOR)

    with database.write() as session:
        paid = instant("2027-02-14 13:00")
        record_payment(session, invoice.id, amount=Decimal("120.00"), received_at=paid, now=paid, actor=ACTOR)
    book(instant("2027-02-14 14:00"))


call, created = at("2027-02-14T12:00:00Z")


def test_account_overdue_over_http(client, database, set_operator_setting):
    set_operator_setting("block_consumption_after_days", "30")
    account, _invoice = approved_invoice(database, "Late Ltd", pack=True)

    body = refused_with(call(client, "POST", f"/api/v1/accounts/{account.id}/consumptions", json={"credits": "1"}), 409, "account_overdue")
    assert (body["overdue_since"], body["days_overdue"]) == ("2027-01-15", 30)
    hold = {"credits": "1", "event_at": "2027-02-20T10:00:00Z"}
    refused_with(call(client, "POST", f"/api/v1/accounts/{account.id}/holds", json=hold), 409, "account_overdue")
