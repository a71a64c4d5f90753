"""Billing in several processes (``licensing billing-run --workers N``): processes claim batches
of licences (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), every licence is billed once, and a
licence another process holds is left to it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import create_engine, func, text
from sqlmodel import select

from licensing.bootstrap import connect
from licensing.documents.models import Delivery
from licensing.invoicing.billing import run_billing, run_billing_in_workers
from licensing.invoicing.models import Invoice, InvoiceLine
from tests import factories

START = date(2027, 1, 1)
BILLED_AT = datetime(2027, 1, 1, 1, 0, tzinfo=UTC)


def licences_with_a_desk(database, count: int) -> list[int]:
    desk = factories.plain_service(database)
    ids = []
    for n in range(count):
        account = factories.account(database, name=f"Member {n}")
        licence = factories.licence(database, account.id, START)
        factories.service(database, licence.id, desk.id)
        ids.append(licence.id)
    return ids


def invoices_per_licence(database) -> dict[int, int]:
    with database.read() as session:
        return dict(session.exec(select(Invoice.licence_id, func.count()).group_by(Invoice.licence_id)).all())


def test_two_workers_bill_every_licence_once_and_add_up_their_work(database):
    if database.is_sqlite:
        pytest.skip("SQLite takes one writer at a time: the CLI refuses --workers there (test_cli)")
    # given 23 licences, billed in batches of 4 by two processes
    licences = licences_with_a_desk(database, 23)
    seen = []
    # when the run is made by two workers
    result = run_billing_in_workers(database, 2, as_of=START, now=BILLED_AT, actor="test", approve_all=True, batch_size=4,
                                    progress=lambda done, total: seen.append((done, total)), setup=connect)
    # then each licence has exactly one invoice, approved, and the run's answer counts them all
    assert invoices_per_licence(database) == dict.fromkeys(licences, 1)
    assert (result.invoices_created, result.invoices_approved, result.failed) == (23, 23, [])
    with database.read() as session:
        assert set(session.exec(select(Invoice.status)).all()) == {"approved"}
        assert session.exec(select(func.count()).select_from(InvoiceLine)).one() == 23
        # each worker queued the mail of what it approved, as one process does
        assert session.exec(select(func.count()).select_from(Delivery)).one() == 23
    assert seen[-1] == (23, 23)
    # and a second run finds nothing left to bill
    again = run_billing_in_workers(database, 2, as_of=START, now=BILLED_AT, actor="test", batch_size=4)
    assert (again.invoices_created, again.failed) == (0, [])


def test_a_licence_another_process_is_billing_is_left_to_it(database):
    if database.is_sqlite:
        pytest.skip("SQLite locks the whole database for a writer: no row to skip")
    # given three licences, the second locked by another process's transaction
    first, held, last = licences_with_a_desk(database, 3)
    other = create_engine(database.url)
    with other.connect() as connection:
        connection.execute(text("SELECT id FROM licences WHERE id = :id FOR UPDATE"), {"id": held})
        # when this process bills
        result = run_billing(database, as_of=START, now=BILLED_AT, actor="test")
        connection.rollback()
    other.dispose()
    # then it billed the two others and skipped the one held, which the next run bills
    assert invoices_per_licence(database) == {first: 1, last: 1}
    assert result.invoices_created == 2
    assert run_billing(database, as_of=START, now=BILLED_AT, actor="test").invoices_created == 1
    assert invoices_per_licence(database) == {first: 1, held: 1, last: 1}
