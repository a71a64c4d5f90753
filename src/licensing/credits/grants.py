"""Placing credits in an account."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from licensing.accounts.models import Account
from licensing.credits import ledger
from licensing.credits.models import Grant
from licensing.outbox import record_event


def create_grant(
    session: Session,
    account: Account,
    *,
    credits: Decimal,
    value: Decimal,
    valid_from: datetime,
    expires_at: datetime | None,
    business_unit_id: int | None,
    source_type: str,
    source_id: str | int,
    actor: str,
    at: datetime,
    contract_service_id: int | None = None,
) -> Grant:
    """A new grant and its ``grant`` ledger entry. The caller holds the account's lock."""
    grant = Grant(
        account_id=account.id,
        business_unit_id=business_unit_id,
        source_type=source_type,
        source_id=str(source_id),
        contract_service_id=contract_service_id,
        credits=credits,
        remaining=credits,
        value=value,
        currency=account.currency,
        valid_from=valid_from,
        expires_at=expires_at,
        created_at=at,
    )
    session.add(grant)
    session.flush()
    ledger.post(
        session, account, kind="grant", credits=credits, grant=grant, source_type=source_type,
        source_id=source_id, actor=actor, occurred_at=at, recorded_at=at,
    )
    record_event(
        session,
        "credits.granted",
        {
            "account_id": str(account.id), "grant_id": str(grant.id), "credits": str(credits),
            "business_unit_id": None if business_unit_id is None else str(business_unit_id),
            "valid_from": valid_from.isoformat(), "expires_at": expires_at.isoformat() if expires_at else None,
        },
        at=at,
    )
    return grant
