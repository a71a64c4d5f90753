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
