"""``db.unit_of_work.run``: one use case, one transaction; retried only when the idempotency
guard's own unique key was hit by a concurrent request (each on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from licensing.accounts.models import Account
from licensing.accounts.services import create_account
from licensing.db.unit_of_work import run
from licensing.errors import IdempotencyConflict
from tests.support.use_cases import instant

AT = instant("2027-01-01 09:00")


def names(database) -> list[str]:
    with database.read() as session:
        return list(session.exec(select(Account.name).order_by(Account.id)).all())


def new_account(name: str):
    return lambda session: create_account(session, name=name, email="billing@acme.test", currency="EUR", at=AT).id


class Raced:
    """A guard whose first ``remember`` meets the unique key of a request that won the race
    (``race``: True) or another constraint (False); its second attempt replays the winner."""

    def __init__(self, race: bool) -> None:
        self.race, self.attempts, self.won = race, 0, None

    def replay(self, _session):
        return self.won

    def remember(self, _session, outcome):
        self.attempts += 1
        if self.attempts == 1:
            self.won = "the winner's outcome"
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: uq_idempotency" if self.race else "a CHECK failed"))

    def lost_race(self, error: IntegrityError) -> bool:
        return "uq_idempotency" in str(error.orig)


def test_a_use_case_commits_when_it_returns_and_writes_nothing_when_it_fails(database):
    assert isinstance(run(database, new_account("Acme Ltd")), int)

    def refused(session):
        new_account("Half-made Ltd")(session)
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        run(database, refused)
    assert names(database) == ["Acme Ltd"]


def test_losing_the_race_on_the_idempotency_key_replays_the_winner_and_keeps_nothing_of_its_own(database):
    guard = Raced(race=True)

    assert run(database, new_account("Twice Ltd"), idempotency=guard) == "the winner's outcome"
    assert guard.attempts == 1
    assert names(database) == []  # the loser's account was rolled back with its record


def test_any_other_integrity_error_is_the_use_cases_failure_and_is_not_retried(database):
    guard = Raced(race=False)

    with pytest.raises(IntegrityError, match="a CHECK failed"):
        run(database, new_account("Once Ltd"), idempotency=guard)
    assert guard.attempts == 1
    assert names(database) == []


def test_a_race_lost_twice_is_a_conflict_to_retry(database):
    class AlwaysRaced(Raced):
        def replay(self, _session):
            return None

        def remember(self, _session, _outcome):
            raise IntegrityError("INSERT", {}, Exception("uq_idempotency"))

    with pytest.raises(IdempotencyConflict):
        run(database, new_account("Busy Ltd"), idempotency=AlwaysRaced(race=True))
    assert names(database) == []


def test_writers_of_one_process_queue_for_sqlite_and_one_kept_waiting_too_long_meets_an_outage(database, monkeypatch):
    import threading

    import licensing.db as db_module
    from licensing.db import is_outage

    if not database.is_sqlite:
        pytest.skip("PostgreSQL writers lock rows, not the database: no queue of the process's own")
    # given a write transaction held open by another thread
    entered, release = threading.Event(), threading.Event()

    def hold():
        with database.write() as session:
            create_account(session, name="Holder", email="billing@acme.test", currency="EUR", at=AT)
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(10)
    # when a writer waits longer than the queue allows, it is an outage (the API's 503), and writes nothing
    monkeypatch.setattr(db_module, "WRITER_TIMEOUT_SECONDS", 0.2)
    with pytest.raises(Exception) as refused:
        run(database, new_account("Too late"))
    assert is_outage(refused.value)
    # and a writer that waits while the holder ends goes on as soon as it has committed
    monkeypatch.setattr(db_module, "WRITER_TIMEOUT_SECONDS", 10)
    waiter = threading.Thread(target=lambda: run(database, new_account("Next")))
    waiter.start()
    release.set()
    holder.join(10)
    waiter.join(10)
    assert names(database) == ["Holder", "Next"]


def test_a_write_that_may_not_wait_begins_at_once_or_is_refused_having_begun_nothing(database):
    """``wait=False`` (a booking tried in the event loop): with the writer free it runs as any
    write; while another process, or another thread of this one, holds SQLite's writer it is
    refused at once with ``WriterBusy`` (not after SQLite's 30 s busy timeout) and writes nothing,
    and the connection keeps its busy timeout for the writes that do wait."""
    import sqlite3
    import threading

    from licensing.db import WriterBusy

    # given a free writer, a write that may not wait runs (on PostgreSQL a transaction never waits to begin)
    run(database, new_account("At once"), wait=False)
    assert names(database) == ["At once"]
    if not database.is_sqlite:
        return
    # when another process holds the writer, it is refused at once
    other = sqlite3.connect(database.writer.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(WriterBusy):
        run(database, new_account("Refused"), wait=False)
    # and a write that waits, on the same pooled connection, still waits for the other to commit
    waited = []
    waiter = threading.Thread(target=lambda: waited.append(run(database, new_account("Waited"))))
    waiter.start()
    threading.Timer(0.3, other.commit).start()
    waiter.join(10)
    other.close()
    assert waited and names(database) == ["At once", "Waited"]

    # when another thread of this process is in a write transaction, it is refused at once too
    entered, release = threading.Event(), threading.Event()

    def hold():
        with database.write() as session:
            create_account(session, name="Holder", email="billing@acme.test", currency="EUR", at=AT)
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(10)
    try:
        with pytest.raises(WriterBusy):
            run(database, new_account("Refused again"), wait=False)
    finally:
        release.set()
        holder.join(10)
    assert names(database) == ["At once", "Waited", "Holder"]


def test_an_answer_already_in_jsons_types_is_kept_and_any_other_is_encoded_as_fastapi_would():
    """``api.deps.json_ready``: a presenter's answer (strings, integers, booleans, None in dicts
    and lists) is stored and sent as it is; one with a date or a tuple inside is encoded as
    ``jsonable_encoder`` would (strings, lists), a decimal as a string, never sent half-encoded."""
    from datetime import date
    from decimal import Decimal

    from fastapi.encoders import jsonable_encoder

    from licensing.api.deps import json_ready

    plain = {"id": "5", "count": 2, "open": True, "debt": None, "draws": [{"grant_id": "1", "credits": "0.01"}]}
    assert json_ready(plain) is plain
    for odd in ({"draws": [{"on": date(2027, 1, 1)}]}, {"pair": ("a", "b")}, [{1: "x"}]):
        encoded = json_ready(odd)
        assert encoded == jsonable_encoder(odd) and encoded is not odd
    # A decimal becomes a string of its digits, as API.md writes money and credits, never a number.
    assert json_ready({"credits": Decimal("1.50"), "lines": [{"net": Decimal("1E+2")}], "at": date(2027, 1, 1)}) == {
        "credits": "1.50", "lines": [{"net": "100"}], "at": "2027-01-01"}
