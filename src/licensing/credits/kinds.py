"""The kinds of ledger entry, and which counter of a grant each one moves.

A grant's counters always satisfy ``credits = remaining + used + held + removed + expired``. An
entry of signed ``credits`` c against a grant moves c into ``remaining`` and -c into the counter
of its kind: a consumption of 3 (c = -3) takes 3 from ``remaining`` into ``used``; its
reversal (c = +3) gives them back. Kinds that create a grant's credits (``grant``,
``adjust_add``, ``transfer_in``) set ``credits`` and ``remaining`` when the grant is made; ``debt``
entries belong to no grant. This table is the only place that says which counter a kind moves:
``ledger.move`` applies it, the balance fold reads it, and a CHECK constraint keeps the column to
these kinds.
"""

from __future__ import annotations

from enum import StrEnum


class LedgerKind(StrEnum):
    GRANT = "grant"
    CONSUME = "consume"
    CONSUME_REVERSAL = "consume_reversal"
    EXPIRE = "expire"
    ROLLOVER_CUT = "rollover_cut"
    CREDIT_NOTE_REVERSAL = "credit_note_reversal"
    ADJUST_ADD = "adjust_add"
    ADJUST_DEDUCT = "adjust_deduct"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    HOLD = "hold"
    HOLD_RELEASE = "hold_release"
    DEBT = "debt"
    DEBT_SETTLEMENT = "debt_settlement"


# The grant counter each moving kind moves (against ``remaining``).
COUNTER: dict[LedgerKind, str] = {
    LedgerKind.CONSUME: "used",
    LedgerKind.CONSUME_REVERSAL: "used",
    LedgerKind.ADJUST_DEDUCT: "used",
    LedgerKind.DEBT_SETTLEMENT: "used",
    LedgerKind.HOLD: "held",
    LedgerKind.HOLD_RELEASE: "held",
    LedgerKind.CREDIT_NOTE_REVERSAL: "removed",
    LedgerKind.ROLLOVER_CUT: "removed",
    LedgerKind.TRANSFER_OUT: "removed",
    LedgerKind.EXPIRE: "expired",
}
# Kinds whose entry creates a grant's credits.
CREATING = frozenset({LedgerKind.GRANT, LedgerKind.ADJUST_ADD, LedgerKind.TRANSFER_IN})


def kinds_moving(counter: str) -> frozenset[str]:
    """The kinds that move ``counter`` (``used``, ``held``, ``removed``, ``expired``)."""
    return frozenset(kind.value for kind, moved in COUNTER.items() if moved == counter)


# The column's CHECK constraint (ledger_entries.kind), in the model and migration 0005.
KIND_CHECK = "kind in (" + ", ".join(f"'{kind.value}'" for kind in LedgerKind) + ")"
