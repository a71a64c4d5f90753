"""One way to move credits (issue 13): the kinds of ledger entry and the counter each moves are
one table (``credits.kinds``), applied by one function (``ledger.move``), kept by a CHECK
constraint in the database."""

from __future__ import annotations

import importlib.util
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from licensing.credits.kinds import COUNTER, CREATING, LedgerKind
from tests import factories

SOURCE = Path(__file__).resolve().parents[1] / "src" / "licensing"
COUNTERS = re.compile(r"\.(remaining|used|held|removed|expired)\s*[-+]?=[^=]")


def test_every_kind_either_creates_credits_moves_one_counter_or_is_debt():
    assert set(COUNTER) | CREATING | {LedgerKind.DEBT} == set(LedgerKind)
    assert not set(COUNTER) & CREATING
    assert set(COUNTER.values()) == {"used", "held", "removed", "expired"}


def test_the_migration_knows_every_kind():
    spec = importlib.util.spec_from_file_location("migration", SOURCE / "migrations" / "versions" / "0005_ledger_kind_check.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert set(migration.KINDS) == {kind.value for kind in LedgerKind}


def test_no_module_but_the_ledger_edits_a_grants_counters():
    """``ledger.move`` is the one place; the balance fold's own figures are not grants."""
    offenders = [
        f"{path.relative_to(SOURCE)}:{number}: {line.strip()}"
        for path in sorted(SOURCE.rglob("*.py"))
        if path.name not in ("ledger.py", "balance.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if COUNTERS.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_the_database_refuses_a_ledger_entry_of_an_unknown_kind(database):
    account = factories.account(database)
    insert = text(
        "INSERT INTO ledger_entries (account_id, kind, credits, balance_after, source_type, source_id, actor, occurred_at, recorded_at) "
        "VALUES (:account, :kind, 100, 100, 'test', '1', 'test', :at, :at)"
    )
    at = datetime(2027, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    with database.write() as session:
        session.exec(insert.bindparams(account=account.id, kind="consume", at=at))
    with pytest.raises(IntegrityError), database.write() as session:
        session.exec(insert.bindparams(account=account.id, kind="gift", at=at))


def test_a_move_changes_remaining_and_its_kinds_counter_by_the_entrys_credits(database):
    from licensing.accounts.models import Account
    from licensing.credits import ledger
    from licensing.credits.grants import create_grant
    from licensing.credits.models import Grant, LedgerEntry
    from licensing.db.repository import lock

    now = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    acme = factories.account(database)
    with database.write() as session:
        account = lock(session, Account, acme.id, "account")
        grant = create_grant(
            session, account, credits=Decimal(10), value=Decimal(100), valid_from=now, expires_at=None, business_unit_id=None,
            source_type="test", source_id=1, actor="test", at=now,
        )
        ledger.move(session, account, grant, LedgerKind.HOLD, Decimal("-4"), source_type="test", source_id=1, actor="test",
                    occurred_at=now, recorded_at=now)
        ledger.move(session, account, grant, LedgerKind.HOLD_RELEASE, Decimal("1.5"), source_type="test", source_id=1, actor="test",
                    occurred_at=now, recorded_at=now)
        grant_id = grant.id
    with database.read() as session:
        grant = session.get(Grant, grant_id)
        entries = session.exec(select(LedgerEntry).order_by(LedgerEntry.id)).all()
    assert (grant.remaining, grant.held, grant.used) == (Decimal("7.50"), Decimal("2.50"), Decimal("0.00"))
    assert [(entry.kind, entry.credits, entry.balance_after) for entry in entries] == [
        ("grant", Decimal("10.00"), Decimal("10.00")),
        ("hold", Decimal("-4.00"), Decimal("6.00")),
        ("hold_release", Decimal("1.50"), Decimal("7.50")),
    ]
