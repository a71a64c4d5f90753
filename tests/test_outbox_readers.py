"""The mail of approved documents is queued from the events outbox (``documents.queue``), not
by invoicing; billed services are marked by the billing run (``contract_services.billed``).
Migration 0006 brings a database made before both to the same state (each on SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlmodel import func, select

from licensing import events
from licensing.documents.models import Delivery
from licensing.documents.queue import queue_approved
from licensing.events import Event, OutboxCursor
from licensing.invoicing.credit_notes import approve_credit_note, create_credit_note
from licensing.licences.models import ContractService
from licensing.migrate import alembic_config, current_revision
from licensing.scheduler import run_job
from tests import factories
from tests.support.use_cases import ACTOR, bill_and_approve, instant


def deliveries(database) -> list[tuple[str, int, str, str]]:
    with database.read() as session:
        rows = session.exec(select(Delivery).order_by(Delivery.id)).all()
        return [(row.document_type, row.document_id, row.recipient, row.status) for row in rows]


def approved_invoice(database):
    account = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    factories.service(database, licence.id, desk.id, from_date=date(2027, 1, 1))
    return bill_and_approve(database, licence.id, date(2027, 1, 1), instant("2027-01-01 09:00"))


def a_billed_and_a_later_service(database):
    """A licence's service billed (and approved) in January, and one that starts in March."""
    account = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    billed = factories.service(database, licence.id, desk.id, from_date=date(2027, 1, 1))
    later = factories.service(database, licence.id, desk.id, from_date=date(2027, 3, 1))
    bill_and_approve(database, licence.id, date(2027, 1, 1), instant("2027-01-01 09:00"))
    return billed, later


def services_billed(database) -> list[tuple[int, bool]]:
    with database.read() as session:
        return [(service.id, service.billed) for service in session.exec(select(ContractService).order_by(ContractService.id))]


def test_an_approval_queues_its_mail_once_it_has_committed(database):
    invoice = approved_invoice(database)

    assert deliveries(database) == [("invoice", invoice.id, "billing@acme.test", "pending")]
    assert queue_approved(database) == 0  # read again: already queued


def test_an_approval_no_subscriber_saw_is_queued_and_mailed_by_the_deliveries_job(database, monkeypatch, set_operator_setting, tmp_path):
    """A process that was not wired (or died between the commit and the hook) loses no mail: the
    scheduler's deliveries job reads the outbox too."""
    set_operator_setting("mail_outbox", str(tmp_path))
    monkeypatch.setattr(events, "_subscribers", {})
    invoice = approved_invoice(database)
    with database.write() as session:
        note = create_credit_note(session, invoice_id=invoice.id, reason="Desk never used", now=instant("2027-01-02 10:00"), actor=ACTOR)
        approve_credit_note(session, note.id, now=instant("2027-01-02 10:00"), actor=ACTOR)
    assert deliveries(database) == []

    assert run_job(database, "deliveries", instant("2027-01-02 10:01")) == "2 mails sent, 0 to retry, 0 failed"
    assert deliveries(database) == [("invoice", invoice.id, "billing@acme.test", "sent"), ("credit_note", note.id, "billing@acme.test", "sent")]
    assert run_job(database, "deliveries", instant("2027-01-02 10:02")) == "0 mails sent, 0 to retry, 0 failed"
    assert len(list(tmp_path.glob("*.eml"))) == 2


def test_the_cursor_trails_the_newest_event_and_moves_only_when_far_behind(database, monkeypatch):
    monkeypatch.setattr("licensing.documents.queue.LOOKBACK", 1)
    approved_invoice(database)  # invoice.generated, invoice.approved
    with database.read() as session:
        newest = session.exec(select(func.max(Event.id))).one()
    assert newest >= 2

    queue_approved(database)
    queue_approved(database)  # nothing new: the cursor stays

    with database.read() as session:
        assert session.get(OutboxCursor, "documents").after_event_id == newest - 1
    assert len(deliveries(database)) == 1


def test_the_hook_queues_what_its_own_transaction_approved_and_the_job_the_rest(database, monkeypatch):
    """The after-commit hook is given the events its transaction recorded and reads no outbox: an
    approval no hook saw waits for the deliveries job, whatever is approved after it."""
    subscribers = dict(events._subscribers)
    monkeypatch.setattr(events, "_subscribers", {})
    unseen = approved_invoice(database)  # a process that was not wired
    monkeypatch.setattr(events, "_subscribers", subscribers)
    seen = approved_invoice(database)

    assert [(kind, document_id) for kind, document_id, _to, _status in deliveries(database)] == [("invoice", seen.id)]
    assert queue_approved(database) == 1
    assert sorted(document_id for _kind, document_id, _to, _status in deliveries(database)) == sorted([unseen.id, seen.id])


def test_a_backlog_longer_than_a_page_is_read_page_by_page(database, monkeypatch):
    """More approvals than one run reads (no hook saw them): each run queues a page and moves the
    cursor to its last event, so the next run reads on (it read the same page again before)."""
    monkeypatch.setattr("licensing.documents.queue.LOOKBACK", 0)
    monkeypatch.setattr(events, "_subscribers", {})
    invoices = [approved_invoice(database) for _ in range(3)]

    assert [queue_approved(database, limit=1) for _ in range(4)] == [1, 1, 1, 0]
    assert sorted(document_id for _kind, document_id, _to, _status in deliveries(database)) == sorted(invoice.id for invoice in invoices)


def test_the_billing_run_marks_a_service_billed_with_its_first_line(database):
    billed, later = a_billed_and_a_later_service(database)

    assert services_billed(database) == [(billed.id, True), (later.id, False)]


def test_migration_0006_marks_billed_services_and_starts_the_mail_cursor_at_the_newest_event(database):
    """A database of revision 0005 (made here by migrating one down) with a billed and an
    unbilled service, and an approved invoice whose mail was queued by its approval."""
    billed, later = a_billed_and_a_later_service(database)
    database.dispose()
    command.downgrade(alembic_config(database.url), "0005")
    assert current_revision(database.url) == "0005"

    command.upgrade(alembic_config(database.url), "head")

    assert services_billed(database) == [(billed.id, True), (later.id, False)]
    with database.read() as session:
        newest = session.exec(select(func.max(Event.id))).one()
        assert session.get(OutboxCursor, "documents").after_event_id == newest
    assert queue_approved(database) == 0
    assert len(deliveries(database)) == 1
