"""``db.bulk.insert_rows``: the one way batches are written, on both databases. On PostgreSQL a
batch of ``COPY_FROM`` rows or more goes in with COPY and ids taken from the sequence first; the
rows must come back exactly as an INSERT would have stored them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlmodel import select

from licensing.accounts.services import create_account
from licensing.credits.models import LedgerEntry
from licensing.db import bulk
from licensing.db.bulk import insert_rows, pipelined
from licensing.events import Event
from tests.support.use_cases import instant

AT = instant("2027-01-01 09:00")


def ledger_rows(account_id: int, count: int, first: int = 0) -> list[dict]:
    return [
        {"account_id": account_id, "grant_id": None, "business_unit_id": None, "kind": "adjust_add",
         "credits": Decimal(n) / 100 - Decimal("0.50"), "balance_after": Decimal(n) / 100, "value": Decimal("0.05") * n,
         "source_type": "test", "source_id": str(n), "actor": "bulk's test 'quotes', tabs\tand \\ back\nslash",
         "occurred_at": AT + timedelta(microseconds=n), "recorded_at": AT + timedelta(seconds=n)}
        for n in range(first, first + count)
    ]


def stored(database, account_id: int) -> list[tuple]:
    with database.read() as session:
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)).all()
        return [(entry.id, entry.credits, entry.balance_after, entry.value, entry.actor, entry.occurred_at, entry.recorded_at, entry.source_id)
                for entry in entries]


def test_a_large_batch_is_stored_exactly_and_its_ids_are_given_back_in_the_order_of_its_rows(database):
    # given an account, and a batch well over the COPY threshold (and a small one, by INSERT)
    with database.write() as session:
        account_id = create_account(session, name="Acme", email="billing@acme.test", currency="EUR", at=AT).id
    large, small = ledger_rows(account_id, bulk.COPY_FROM * 3), ledger_rows(account_id, 3, first=1000)
    # when both are inserted and their ids asked for
    with database.write() as session:
        large_ids = insert_rows(session, LedgerEntry.__table__, large, return_ids=True)
        small_ids = insert_rows(session, LedgerEntry.__table__, small, return_ids=True)
    # then every id is new, they rise in the order of the rows, and each row holds its own values
    assert len(set(large_ids + small_ids)) == len(large) + len(small)
    assert large_ids == sorted(large_ids) and small_ids == sorted(small_ids) and large_ids[-1] < small_ids[0]
    expected = [
        (row_id, row["credits"], row["balance_after"], row["value"], row["actor"], row["occurred_at"], row["recorded_at"], row["source_id"])
        for row_id, row in zip(large_ids + small_ids, large + small, strict=True)
    ]
    assert stored(database, account_id) == expected


def test_a_large_batch_inside_a_pipeline_is_written_too(database):
    # given a batch over the threshold written while the booking's pipeline is open (PostgreSQL
    # refuses COPY there: the batch must take the INSERT)
    rows = [{"type": "test.bulk", "data": f'{{"n": {n}}}', "created_at": AT} for n in range(bulk.COPY_FROM + 5)]
    with database.write() as session, pipelined(session):
        insert_rows(session, Event.__table__, rows)
    # then every row is there
    with database.read() as session:
        assert len(session.exec(select(Event).where(Event.type == "test.bulk")).all()) == len(rows)


def journal_family(n: int, postings: int) -> tuple[dict, list[dict]]:
    entry = {"date": AT.date(), "event": "test", "currency": "EUR", "source_type": "test", "source_id": str(n), "account_id": None,
             "document": None, "description": f"entry {n}", "recorded_at": AT}
    rows = [{"role": f"role {n}.{k}", "tax_rate": None if k % 2 else Decimal("20"), "debit": Decimal(k + n) / 100, "credit": Decimal(0)}
            for k in range(postings)]
    return entry, rows


def families(database, source_ids: list[str]) -> dict[str, list[tuple]]:
    from licensing.books.models import JournalEntry, JournalPosting

    with database.read() as session:
        found = session.exec(
            select(JournalEntry.source_id, JournalPosting.role, JournalPosting.tax_rate, JournalPosting.debit)
            .join(JournalPosting, JournalPosting.entry_id == JournalEntry.id, isouter=True)
            .where(JournalEntry.source_id.in_(source_ids))
            .order_by(JournalEntry.id, JournalPosting.id)
        ).all()
    grouped: dict[str, list[tuple]] = {}
    for source_id, role, rate, debit in found:
        grouped.setdefault(source_id, []).extend([] if role is None else [(role, rate, debit)])
    return grouped


def test_rows_and_the_rows_that_point_to_them_are_linked_to_their_own_parent_in_and_out_of_a_pipeline_and_by_copy(database):
    """``insert_with_children``: on PostgreSQL the children take the parent's id from its
    sequence (``currval``) without waiting for it; each child must point to its own parent,
    whatever the number of children (none, one, several), in a booking's pipeline or not, and
    when a batch large enough for COPY takes the other path."""
    from licensing.books.models import JournalEntry, JournalPosting

    sizes = [2, 0, 1, 3]
    small = [journal_family(n, size) for n, size in enumerate(sizes)]
    piped = [journal_family(100 + n, size) for n, size in enumerate(sizes)]
    large = [journal_family(1000 + n, n % 3) for n in range(bulk.COPY_FROM + 2)]
    with database.write() as session:
        bulk.insert_with_children(session, JournalEntry.__table__, [e for e, _ in small], JournalPosting.__table__, [p for _, p in small],
                                  key="entry_id")
    with database.write() as session, pipelined(session):
        bulk.insert_with_children(session, JournalEntry.__table__, [e for e, _ in piped], JournalPosting.__table__, [p for _, p in piped],
                                  key="entry_id")
    with database.write() as session:
        bulk.insert_with_children(session, JournalEntry.__table__, [e for e, _ in large], JournalPosting.__table__, [p for _, p in large],
                                  key="entry_id")

    for batch in (small, piped, large):
        expected = {entry["source_id"]: [(row["role"], row["tax_rate"], row["debit"]) for row in rows] for entry, rows in batch}
        assert families(database, list(expected)) == expected


def test_many_rows_are_updated_each_with_its_own_values_in_and_out_of_a_pipeline(database):
    """``update_rows``: on PostgreSQL several rows are one ``UPDATE ... FROM unnest(...)`` (one
    array per column, cast to the column's type); every row must get its own values back,
    decimals, instants, texts and a column of NULLs alike, as a row-by-row update gives them."""
    with database.write() as session:
        account_id = create_account(session, name="Acme", email="billing@acme.test", currency="EUR", at=AT).id
    with database.write() as session:
        ids = insert_rows(session, LedgerEntry.__table__, ledger_rows(account_id, 6), return_ids=True)
    changes = [
        {"id": row_id, "credits": Decimal(n) - Decimal("0.25"), "value": Decimal("1.10") * n, "grant_id": None,
         # what an array's text form must escape (quotes, backslashes, braces, commas), as in
         # the approval's seller and buyer JSON
         "actor": f"changed {n} 'quoted' \"double\", {{\"a\": [1, \"b\\\\c\"]}} NULL", "occurred_at": AT + timedelta(days=n)}
        for n, row_id in enumerate(ids)
    ]
    with database.write() as session:
        bulk.update_rows(session, LedgerEntry.__table__, changes[:3])
    with database.write() as session, pipelined(session):
        bulk.update_rows(session, LedgerEntry.__table__, changes[3:])

    with database.read() as session:
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)).all()
    assert [(e.id, e.credits, e.value, e.grant_id, e.actor, e.occurred_at) for e in entries] == [
        (c["id"], c["credits"], c["value"], None, c["actor"], c["occurred_at"]) for c in changes
    ]
    assert [e.balance_after for e in entries] == [Decimal(n) / 100 for n in range(6)]  # a column not named is left alone
