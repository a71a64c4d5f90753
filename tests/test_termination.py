"""Termination (SPEC 2): the effective date is the last active day; nothing bills after it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal as D

from sqlmodel import select

from licensing.credits.consumption import consume
from licensing.credits.models import Grant
from licensing.events import Event
from licensing.invoicing.billing import run_billing
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.licences.models import Licence
from licensing.licences.services import terminate_licence
from tests import factories

JAN_1 = date(2027, 1, 1)


def a_licence_with_a_desk_and_credits(database):
    account = factories.account(database)
    desk = factories.plain_service(database, price="310.00")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
    licence = factories.licence(database, account.id, JAN_1)
    factories.service(database, licence.id, desk.id)
    factories.service(database, licence.id, pack.id)
    return account, licence


def bill(database, as_of: date) -> None:
    run_billing(database, as_of=as_of, now=datetime.combine(as_of, datetime.min.time(), tzinfo=UTC), actor="test", approve_all=True)


def invoices_with_lines(database, licence_id):
    with database.read() as session:
        invoices = session.exec(select(Invoice).where(Invoice.licence_id == licence_id).order_by(Invoice.period_start)).all()
        return [
            (invoice.period_start, invoice.period_end, [
                (line.description, line.period_start, line.period_end, line.net, line.credits)
                for line in session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id))
            ])
            for invoice in invoices
        ]


def test_a_licence_terminated_on_the_10th_bills_the_desk_to_the_10th_and_nothing_after(database):
    # given January and February billed and approved
    account, licence = a_licence_with_a_desk_and_credits(database)
    bill(database, date(2027, 2, 1))

    # when the licence is terminated on March 10 and billing runs through May
    with database.write() as session:
        terminated = terminate_licence(session, licence.id, effective_date=date(2027, 3, 10), at=datetime(2027, 2, 20, tzinfo=UTC), actor="test")
    assert (terminated.status, terminated.terminated_on) == ("terminated", date(2027, 3, 10))
    bill(database, date(2027, 3, 1))
    # a booking on March 20, after the last active day, still uses the credits granted for March
    with database.write() as session:
        _consumption, draws = consume(session, account.id, credits=D("4"), now=datetime(2027, 3, 20, 12, tzinfo=UTC), actor="test")
    for month in (4, 5):
        bill(database, date(2027, month, 1))

    # then March bills the desk for Mar 1-10 (10/31 of 310.00) and the credit pack in full
    # (credit packs are never pro-rated by default), and no invoice follows
    invoices = invoices_with_lines(database, licence.id)
    assert [(start, end) for start, end, _lines in invoices] == [
        (date(2027, 1, 1), date(2027, 1, 31)), (date(2027, 2, 1), date(2027, 2, 28)), (date(2027, 3, 1), date(2027, 3, 10)),
    ]
    assert invoices[2][2] == [
        ("Dedicated desk (10/31 of the period)", date(2027, 3, 1), date(2027, 3, 10), D("100.00"), None),
        ("10 credits (P1M)", date(2027, 3, 1), date(2027, 3, 10), D("100.00"), D("10.00")),
    ]
    # and the credits granted for March stayed usable until they expire, on April 1
    with database.read() as session:
        march_grant = session.get(Grant, draws[0].grant_id)
    assert (march_grant.credits, march_grant.used, march_grant.expires_at) == (D("10.00"), D("4.00"), datetime(2027, 4, 1, tzinfo=UTC))


def test_termination_is_recorded_as_an_event(database):
    _account, licence = a_licence_with_a_desk_and_credits(database)
    with database.write() as session:
        terminate_licence(session, licence.id, effective_date=date(2027, 3, 10), at=datetime(2027, 2, 20, tzinfo=UTC), actor="test")
    with database.read() as session:
        events = session.exec(select(Event).where(Event.type == "licence.terminated")).all()
    assert [json.loads(event.data)["effective_date"] for event in events] == ["2027-03-10"]


def test_terminating_over_http_answers_the_terminated_licence(client, database):
    _account, licence = a_licence_with_a_desk_and_credits(database)

    response = client.post(f"/api/v1/licences/{licence.id}/terminate", json={"effective_date": "2027-03-10"})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["terminated_on"]) == ("terminated", "2027-03-10")


def test_a_termination_before_the_start_or_malformed_is_refused_and_changes_nothing(client, database):
    _account, licence = a_licence_with_a_desk_and_credits(database)

    for body in ({"effective_date": "2026-12-31"}, {"effective_date": "2027-13-01"}, {}, {"effective_date": 20270310}):
        response = client.post(f"/api/v1/licences/{licence.id}/terminate", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "validation_error"
    assert client.post("/api/v1/licences/999999/terminate", json={"effective_date": "2027-03-10"}).status_code == 404
    assert client.as_role("read").post(f"/api/v1/licences/{licence.id}/terminate", json={"effective_date": "2027-03-10"}).status_code == 403
    with database.read() as session:
        unchanged = session.get(Licence, licence.id)
        assert (unchanged.status, unchanged.terminated_on) == ("active", None)
