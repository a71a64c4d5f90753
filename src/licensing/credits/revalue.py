"""The value of every ledger entry, computed again from the grants and the ledger alone: what
migration 0008 fills in for a database made before entries carried their value, and what a test
compares with the values recorded live (``ledger.value_moved``)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from licensing.credits import ledger
from licensing.credits.kinds import CREATING, LedgerKind
from licensing.credits.models import Grant, LedgerEntry
from licensing.db.bulk import update_rows

BATCH = 10_000


def entry_values(connection) -> dict[int, Decimal]:
    """Each entry's value (id -> value), folding each grant's entries in recording order."""
    grants = {row.id: row for row in connection.execute(select(Grant.id, Grant.credits, Grant.value, Grant.currency))}
    values: dict[int, Decimal] = {}
    outstanding: dict[int, Decimal] = {}
    entries = connection.execute(
        select(LedgerEntry.id, LedgerEntry.grant_id, LedgerEntry.kind, LedgerEntry.credits)
        .where(LedgerEntry.grant_id.is_not(None))
        .order_by(LedgerEntry.grant_id, LedgerEntry.id)
    )
    for entry_id, grant_id, kind, credits in entries:
        grant = grants[grant_id]
        if kind in CREATING:
            outstanding[grant_id] = grant.credits
            values[entry_id] = ledger.worth(grant, grant.credits)
            continue
        before = outstanding[grant_id]
        values[entry_id] = ledger.value_moved(grant, before, LedgerKind(kind), credits)
        if kind not in ledger.VALUE_NEUTRAL:
            outstanding[grant_id] = before + credits
    return values


def revalue(session) -> int:
    """Write every entry's value; returns how many entries carry one."""
    values = entry_values(session.connection())
    rows = [{"id": entry_id, "value": value} for entry_id, value in values.items()]
    for offset in range(0, len(rows), BATCH):
        update_rows(session, LedgerEntry.__table__, rows[offset : offset + BATCH])
    return len(rows)
