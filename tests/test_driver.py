"""``db.driver``: the hottest statements sent on the driver's cursor must read and write exactly
what SQLAlchemy would, raise SQLAlchemy's own errors, and leave the pooled connections as they
found them, on both databases."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError, OperationalError

from licensing.accounts.models import Account
from licensing.accounts.services import create_account
from licensing.auth.models import ApiKey
from licensing.auth.services import authenticate, create_api_key, revoke_api_key
from licensing.credits.balance import account_with_remaining
from licensing.credits.grants import create_grant
from licensing.credits.models import Grant
from licensing.db import Database, driver
from licensing.db.bulk import insert_rows, reading
from licensing.db.repository import lock
from licensing.events import Event
from tests import factories
from tests.support.use_cases import instant

AT = instant("2027-01-01 09:00")
GRANTS = Grant.__table__.c
BY_ACCOUNT = select(GRANTS.id, GRANTS.remaining, GRANTS.expires_at, GRANTS.valid_from).where(
    GRANTS.account_id == bindparam("account_id")
).order_by(GRANTS.id).limit(10)


def an_account_with_grants(database) -> int:
    """An account with 12.34 credits for 30 days from AT and 0.01 that never expire."""
    account = factories.account(database)
    with database.write() as session:
        locked = lock(session, Account, account.id, "account")
        for credits, expires_at in (("12.34", AT + timedelta(days=30)), ("0.01", None)):
            create_grant(
                session, locked, credits=Decimal(credits), value=Decimal(credits) * 10, valid_from=AT, expires_at=expires_at,
                business_unit_id=None, source_type="test", source_id=1, actor="test", at=AT,
            )
    return account.id


def test_fetch_reads_the_rows_as_the_orm_does_with_the_columns_as_attributes(database):
    account_id = an_account_with_grants(database)
    with database.read() as session:
        rows = driver.fetch(reading(session), BY_ACCOUNT, {"account_id": account_id})
        expected = session.execute(BY_ACCOUNT, {"account_id": account_id}).all()
    # exact decimals and aware instants, as through SQLAlchemy; the LIMIT's own parameter kept
    assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
    assert [row.remaining for row in rows] == [Decimal("12.34"), Decimal("0.01")]
    assert rows[0].expires_at == AT + timedelta(days=30) and rows[0].expires_at.tzinfo is not None
    assert rows[1].expires_at is None


def test_a_driver_error_is_raised_as_sqlalchemys_and_the_transaction_rolls_back(database):
    with database.write() as session:
        account_id = create_account(session, name="Acme", email="billing@acme.test", currency="EUR", at=AT).id
    table = Account.__table__
    sql = str(table.update().where(table.c.id == bindparam("row_id")).values(name=bindparam("name")).compile(dialect=database.writer.dialect))
    values = ("Renamed", account_id) if database.is_sqlite else {"name": "Renamed", "row_id": account_id}
    with pytest.raises(IntegrityError), database.write() as session:
        driver.execute(reading(session), sql, values)  # written in the session's transaction...
        session.execute(table.insert().values(id=account_id, name="Twin", email="x@y.test", currency="EUR", created_at=AT))
    # ... and rolled back with it when a later statement fails
    with database.read() as session:
        assert session.get(Account, account_id).name == "Acme"
    # a duplicate key from the bulk path (which sends its statements on the cursor) is an IntegrityError too
    with pytest.raises(IntegrityError), database.write() as session:
        event = {"id": 999_001, "type": "test", "data": "{}", "created_at": AT}
        insert_rows(session, Event.__table__, [event])
        insert_rows(session, Event.__table__, [event])


def test_the_key_is_read_outside_a_transaction_and_a_revoked_key_is_refused_at_once(database):
    with database.write() as session:
        key, secret = create_api_key(session, name="desk", role="bookings", at=AT)
    found = authenticate(database, secret, AT + timedelta(seconds=1))
    assert (found.id, found.name, found.role, found.account_ids) == (key.id, "desk", "bookings", None)
    assert authenticate(database, secret + "x", AT) is None
    with database.write() as session:
        revoke_api_key(session, key.id, at=AT + timedelta(seconds=2))
    assert authenticate(database, secret, AT + timedelta(seconds=3)) is None
    # the pooled connection went back to the pool as it came: a write on it still rolls back
    for _ in range(3):
        with pytest.raises(ZeroDivisionError), database.write() as session:
            session.add(ApiKey(name="ghost", role="read", key_hash="0" * 64, created_at=AT))
            session.flush()
            raise ZeroDivisionError
        assert authenticate(database, secret, AT) is None
    with database.read() as session:
        assert session.execute(select(ApiKey.__table__.c.name)).scalars().all() == ["desk"]


def test_the_account_and_its_credits_are_read_in_one_statement(database):
    account_id = an_account_with_grants(database)
    row = account_with_remaining(database, account_id, AT + timedelta(days=1))
    assert (row.id, row.remaining_credits, row.currency) == (account_id, Decimal("12.35"), "EUR")
    # expired grants do not count, and an account with no credits has zero, not None
    assert account_with_remaining(database, account_id, AT + timedelta(days=31)).remaining_credits == Decimal("0.01")
    assert account_with_remaining(database, account_id, AT - timedelta(days=1)).remaining_credits == Decimal("0")
    assert account_with_remaining(database, account_id + 1000, AT) is None


def test_an_unreachable_database_is_sqlalchemys_operational_error(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    with pytest.raises(OperationalError):
        authenticate(database, "lk_anything", AT)
    database.dispose()


def test_a_statement_with_a_list_parameter_is_refused_rather_than_sent_wrong(database):
    # an expanding IN is rendered per call by SQLAlchemy; compiled once it would send one "?" for a list
    statement = select(GRANTS.id).where(GRANTS.account_id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(TypeError, match="expanding"):
        driver.prepared(statement, database.writer.dialect)


def test_a_row_read_on_the_driver_becomes_the_sessions_orm_object_as_a_query_would_load_it(database):
    """``repository.loaded``: the account's row read on the driver is the same object, with the same
    values, as the ORM would load; changed, it is written at the commit like any loaded object;
    and a copy the session already holds is refreshed (``populate_existing``), not duplicated."""
    from sqlalchemy import inspect

    from licensing.db.repository import loaded

    account_id = an_account_with_grants(database)
    by_id = select(Account.__table__).where(Account.__table__.c.id == bindparam("id"))
    with database.read() as session:
        expected = session.get(Account, account_id).model_dump()
    with database.write() as session:
        account = loaded(session, Account, driver.fetch(reading(session), by_id, {"id": account_id})[0])
        assert inspect(account).persistent and not session.is_modified(account)
        assert account.model_dump() == expected and account.balance == Decimal("12.35")
        assert session.get(Account, account_id) is account  # the identity map knows it: no second copy
        account.name = "Renamed"
    with database.write() as session:
        held = session.get(Account, account_id)
        assert held.name == "Renamed"
        held.name = "Changed, not flushed"
        again = loaded(session, Account, driver.fetch(session.connection(), by_id, {"id": account_id})[0])
        assert again is held and again.name == "Renamed" and not session.is_modified(again)


# -- a booking's held pipeline (PostgreSQL; nothing on SQLite) -----------------------------------


def _event(n: int) -> dict:
    return {"id": 990_000 + n, "type": "test", "data": "{}", "created_at": AT}


def _event_ids(database) -> list[int]:
    with database.read() as session:
        return session.execute(select(Event.__table__.c.id).where(Event.__table__.c.id >= 990_000).order_by(Event.__table__.c.id)).scalars().all()


def _pipeline_off(database) -> bool:
    """Whether every pooled connection is out of pipeline mode (SQLite has none)."""
    if database.is_sqlite:
        return True
    from psycopg import pq

    with database.writer.connect() as connection:
        return connection.connection.driver_connection.info.pipeline_status == pq.PipelineStatus.OFF


def waits_on_the_server(monkeypatch) -> list[str]:
    """The names of psycopg's waits on the server, as they happen."""
    import psycopg

    seen: list[str] = []
    wait = psycopg.Connection.wait

    def counted(self, generator, *args, **kwargs):
        seen.append(getattr(generator, "__qualname__", "").rsplit(".", 1)[-1])
        return wait(self, generator, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "wait", counted)
    return seen


def test_a_held_pipeline_reads_in_one_wait_and_commits_with_its_writes(database, monkeypatch):
    account_id = an_account_with_grants(database)
    by_id = select(Account.__table__.c.name).where(Account.__table__.c.id == bindparam("id"))
    waits = waits_on_the_server(monkeypatch)
    with database.write() as session:
        driver.hold_pipeline(session)
        names, grants = driver.fetch_together(reading(session), [(by_id, {"id": account_id}), (BY_ACCOUNT, {"account_id": account_id})])
        assert len(names) == 1
        assert [row.remaining for row in grants] == [Decimal("12.34"), Decimal("0.01")]
        before_writes = len(waits)
        insert_rows(session, Event.__table__, [_event(1)])
        insert_rows(session, Event.__table__, [_event(2)])
    at_the_end = len(waits)
    assert _event_ids(database) == [990_001, 990_002]
    if not database.is_sqlite:
        # BEGIN, then both reads answered together; the writes and the COMMIT sent with one Sync
        # (psycopg's own commit, and the pool's reset, then find the transaction ended: no round trip)
        assert waits.count("_fetch_gen") == 1
        ended = waits[before_writes:at_the_end]
        assert [name for name in ended if name not in ("_execute_gen", "_commit_gen", "_rollback_gen")] == ["_exit_gen"]
    assert _pipeline_off(database)


@pytest.mark.parametrize("pause", [0, 0.05])
def test_an_error_queued_in_a_held_pipeline_rolls_everything_back_as_sqlalchemys_error(database, pause):
    """The duplicate key's answer comes back while the COMMIT is sent, or after: either way an
    ``IntegrityError``, nothing written, and the connection out of pipeline mode."""
    import time

    with pytest.raises(IntegrityError), database.write() as session:
        driver.hold_pipeline(session)
        insert_rows(session, Event.__table__, [_event(3)])
        insert_rows(session, Event.__table__, [_event(3)])  # the duplicate key surfaces at the COMMIT
        time.sleep(pause)
    assert _event_ids(database) == []
    with pytest.raises(ZeroDivisionError), database.write() as session:
        driver.hold_pipeline(session)
        insert_rows(session, Event.__table__, [_event(4)])
        raise ZeroDivisionError
    assert _event_ids(database) == []
    assert _pipeline_off(database)


def test_sqlalchemy_statements_and_orm_changes_end_a_held_pipeline_first(database):
    """SQLAlchemy cannot read a result in pipeline mode, and the ORM checks row counts: both end
    the pipeline, and the transaction goes on and commits everything."""
    account_id = an_account_with_grants(database)
    with database.write() as session:
        driver.hold_pipeline(session)
        insert_rows(session, Event.__table__, [_event(5)])
        # a Core read through SQLAlchemy sees the queued write and its own rows
        assert session.execute(select(Event.__table__.c.id).where(Event.__table__.c.id == 990_005)).scalar_one() == 990_005
        insert_rows(session, Event.__table__, [_event(6)])
    with database.write() as session:
        driver.hold_pipeline(session)
        insert_rows(session, Event.__table__, [_event(7)])
        session.get(Account, account_id).name = "Renamed in the ORM"  # flushed at the commit, out of the pipeline
    assert _event_ids(database) == [990_005, 990_006, 990_007]
    with database.read() as session:
        assert session.get(Account, account_id).name == "Renamed in the ORM"
    assert _pipeline_off(database)


def test_a_connection_never_goes_back_to_the_pool_in_pipeline_mode(database):
    from sqlmodel import Session

    with Session(database.writer) as session:  # not Database.write: nothing releases the pipeline
        driver.hold_pipeline(session)
        insert_rows(session, Event.__table__, [_event(8)])
    assert _event_ids(database) == []  # never committed
    assert _pipeline_off(database)


def test_a_booking_on_postgresql_waits_on_the_server_three_times(database, monkeypatch):
    """BEGIN; the account's lock with the draw's first grants; the writes with the COMMIT. The
    account's row stays locked for one round trip (the floor's minimal debit: three)."""
    from licensing.credits.consumption import consume

    account_id = an_account_with_grants(database)
    waits = waits_on_the_server(monkeypatch)
    with database.write() as session:
        _consumption, draws = consume(session, account_id, credits=Decimal("1.50"), now=AT + timedelta(days=1), actor="test")
    at_the_end = len(waits)
    assert [draw.credits for draw in draws] == [Decimal("1.50")]
    with database.read() as session:
        assert session.get(Account, account_id).balance == Decimal("10.85")
    if not database.is_sqlite:
        blocking = [name for name in waits[:at_the_end] if name not in ("_execute_gen", "_commit_gen", "_rollback_gen", "_enter_gen")]
        assert blocking == ["_fetch_gen", "_exit_gen"]
        assert waits[:at_the_end].count("_execute_gen") >= 3  # BEGIN (with its own wait), the lock, the grants, the writes
    assert _pipeline_off(database)
