"""Placing credits in an account: grants and their ``grant`` ledger entries, in bulk."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlmodel import Session

from licensing.accounts.models import Account
from licensing.credits import ledger
from licensing.credits.debt import change_debt, debts_of
from licensing.credits.kinds import LedgerKind
from licensing.credits.models import Grant
from licensing.db.bulk import insert_rows, update_rows
from licensing.events import event_row, record_events

ZERO = Decimal(0)


class _Fresh(NamedTuple):
    """The counters a debt settlement moves, on a grant just made: all its credits remaining."""

    remaining: Decimal
    used: Decimal = Decimal(0)


class NewGrant(NamedTuple):
    account_id: int
    credits: Decimal
    value: Decimal
    valid_from: datetime
    expires_at: datetime | None
    business_unit_id: int | None
    source_type: str
    source_id: str
    contract_service_id: int | None = None
    invoice_line_id: int | None = None
    rollover_cap: Decimal | None = None
    origin_grant_id: int | None = None


def create_grants(
    session: Session, accounts: dict[int, Account], grants: list[NewGrant], *, actor: str, at: datetime, kind: str = "grant"
) -> list[int]:
    """Insert ``grants`` with one ``kind`` ledger entry each (``grant``, ``adjust_add``,
    ``transfer_in``), in order, and one ``credits.granted`` event per account listing its new
    grants; returns the grants' ids. A grant placed where debt is owed settles it first
    (``credits/debt.py``). The caller holds the accounts' locks."""
    if not grants:
        return []
    currencies = {account_id: account.currency for account_id, account in accounts.items()}
    rows = [
        {
            "account_id": grant.account_id, "business_unit_id": grant.business_unit_id,
            "source_type": grant.source_type, "source_id": grant.source_id,
            "contract_service_id": grant.contract_service_id, "invoice_line_id": grant.invoice_line_id,
            "credits": grant.credits, "remaining": grant.credits,
            "used": ZERO, "held": ZERO, "removed": ZERO, "expired": ZERO, "value": grant.value,
            "currency": currencies[grant.account_id], "valid_from": grant.valid_from,
            "expires_at": grant.expires_at, "created_at": at,
            "rollover_cap": grant.rollover_cap, "rollover_pending": grant.rollover_cap is not None,
            "origin_grant_id": grant.origin_grant_id,
        }
        for grant in grants
    ]
    ids = insert_rows(session, Grant.__table__, rows, return_ids=True)
    entries = []
    granted: dict[int, list[dict]] = defaultdict(list)
    balances = {account_id: account.balance for account_id, account in accounts.items()}
    instants: dict[datetime | None, str | None] = {None: None}  # grants of a batch share their dates
    for grant in grants:
        for instant in (grant.valid_from, grant.expires_at):
            if instant not in instants:
                instants[instant] = instant.isoformat()
    debts = {account_id: debts_of(session, account) for account_id, account in accounts.items() if account.debt > 0}
    settled: list[dict] = []
    for grant_id, grant in zip(ids, grants, strict=True):
        account_id, credits, unit_id = grant.account_id, grant.credits, grant.business_unit_id
        balance = balances[account_id] = balances[account_id] + credits
        entries.append(
            ledger.entry_row(
                account_id, balance_after=balance, kind=kind, credits=credits, grant_id=grant_id, business_unit_id=unit_id,
                source_type=grant.source_type, source_id=grant.source_id, actor=actor, occurred_at=at, recorded_at=at,
                currency=currencies[account_id], value=ledger.worth(ledger.Valued(credits, grant.value, currencies[account_id]), credits),
            )
        )
        if debts and (owed := debts.get(account_id, {}).get(unit_id, ZERO)) > 0:
            take = min(owed, credits)
            debts[account_id][unit_id] = owed - take
            change_debt(session, accounts[account_id], unit_id, -take)
            settled.append({"id": grant_id} | ledger.moved(_Fresh(remaining=credits), LedgerKind.DEBT_SETTLEMENT, -take))
            entries.append(
                ledger.entry_row(
                    account_id, balance_after=balance, kind="debt_settlement", credits=-take, grant_id=grant_id,
                    business_unit_id=unit_id, source_type=grant.source_type, source_id=grant.source_id, actor=actor,
                    occurred_at=at, recorded_at=at, currency=currencies[account_id],
                    value=ledger.value_moved(ledger.Valued(credits, grant.value, currencies[account_id]), credits, LedgerKind.DEBT_SETTLEMENT, -take),
                )
            )
        if grant.rollover_cap is not None:
            account = accounts[account_id]
            if account.rollover_due_at is None or grant.valid_from < account.rollover_due_at:
                account.rollover_due_at = grant.valid_from
                session.add(account)
        granted[account_id].append(
            {
                "grant_id": str(grant_id), "credits": f"{credits:.2f}",
                "business_unit_id": None if unit_id is None else str(unit_id),
                "valid_from": instants[grant.valid_from], "expires_at": instants[grant.expires_at],
                "source": {"type": grant.source_type, "id": grant.source_id},
            }
        )
    ledger.append(session, entries)
    update_rows(session, Grant.__table__, settled)
    # One event per account and call: the grants an approval (or an adjustment) placed there.
    record_events(session, [
        event_row("credits.granted", {"account_id": str(account_id), "grants": items}, at=at) for account_id, items in granted.items()
    ])
    ledger.store_balances(session, [(accounts[account_id], balances[account_id]) for account_id in granted])
    return ids


def create_grant(session: Session, account: Account, *, actor: str, at: datetime, **values) -> Grant:
    """One grant (see ``create_grants``)."""
    values["source_id"] = str(values["source_id"])
    [grant_id] = create_grants(session, {account.id: account}, [NewGrant(account_id=account.id, **values)], actor=actor, at=at)
    return session.get(Grant, grant_id)
