"""Manual adjustments and transfers (SPEC 5). Each records its reason and who did it.

* An addition is a grant of value 0 (a bonus, a correction), valid at once, that expires at
  00:00 of (today + lifetime) in the operator's zone, or never without a lifetime; its ledger
  entry is ``adjust_add``.
* A deduction draws in consumption order from the grants valid now (``adjust_deduct``
  entries, counted as used); past the available credits it is refused.
* A transfer draws in consumption order from the grants valid now in the source place (a
  business unit's own grants, or the account's unrestricted ones) and places each draw in the
  target as a new grant with the same ``valid_from``, ``expires_at`` and value per credit
  (``transfer_out`` / ``transfer_in`` entries). Both accounts must use the same currency.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from licensing.accounts.models import Account
from licensing.clock import local_date, start_of_day
from licensing.config import Settings, get_settings
from licensing.credits import ledger
from licensing.credits.consumption import check_unit_and_member, plan_draw
from licensing.credits.grants import NewGrant, create_grants
from licensing.credits.kinds import LedgerKind
from licensing.credits.models import Adjustment, Grant, Transfer
from licensing.dates import parse_lifetime
from licensing.db.bulk import insert_rows
from licensing.db.repository import get_reference, lock, lock_all
from licensing.errors import CurrencyMismatch, ValidationFailed
from licensing.events import record_event
from licensing.money import ZERO


def adjust(
    session: Session,
    account_id: str | int,
    *,
    kind: str,
    credits: Decimal,
    reason: str,
    lifetime: str | None = None,
    business_unit_id: str | int | None = None,
    now: datetime,
    actor: str,
    settings: Settings | None = None,
) -> tuple[Adjustment, list[tuple[int, Decimal]]]:
    """Add or deduct credits by hand. Returns the adjustment and the grants it touched, with
    the credits added to or deducted from each."""
    settings = settings or get_settings()
    account = lock(session, Account, account_id, "account")
    if kind not in ("add", "deduct"):
        raise ValidationFailed("kind must be add or deduct", field="kind")
    if credits <= 0:
        raise ValidationFailed("credits must be greater than zero", field="credits")
    if not reason or not reason.strip():
        raise ValidationFailed("a reason is required", field="reason")
    if kind == "deduct" and lifetime is not None:
        raise ValidationFailed("lifetime applies to additions only", field="lifetime")
    parsed = parse_lifetime(lifetime) if lifetime else None
    unit_id, _member = check_unit_and_member(session, account, business_unit_id, None)
    values = {
        "account_id": account.id, "business_unit_id": unit_id, "kind": kind, "credits": credits, "lifetime": lifetime,
        "reason": reason, "actor": actor, "created_at": now,
    }
    [adjustment_id] = insert_rows(session, Adjustment.__table__, [values], return_ids=True)
    if kind == "add":
        expires_at = start_of_day(parsed.end(local_date(now, settings.zone)), settings.zone) if parsed else None
        [grant_id] = create_grants(
            session, {account.id: account},
            [NewGrant(account_id=account.id, credits=credits, value=ZERO, valid_from=now, expires_at=expires_at,
                      business_unit_id=unit_id, source_type="adjustment", source_id=str(adjustment_id))],
            actor=actor, at=now, kind="adjust_add",
        )
        touched = [(grant_id, credits)]
    else:
        planned = plan_draw(session, account, credits, business_unit_id=unit_id, at=now, now=now).draws
        touched = []
        for row, take in planned:
            grant = lock(session, Grant, row.id, "grant")
            ledger.move(
                session, account, grant, LedgerKind.ADJUST_DEDUCT, -take, source_type="adjustment",
                source_id=adjustment_id, actor=actor, occurred_at=now, recorded_at=now,
            )
            touched.append((grant.id, take))
    record_event(
        session, "credits.adjusted",
        {
            "account_id": str(account.id), "adjustment_id": str(adjustment_id), "kind": kind, "credits": f"{credits:.2f}",
            "reason": reason, "actor": actor,
        },
        at=now,
    )
    session.flush()
    return session.get(Adjustment, adjustment_id), touched


def transfer(
    session: Session,
    *,
    from_account_id: str | int,
    to_account_id: str | int,
    credits: Decimal,
    reason: str,
    from_business_unit_id: str | int | None = None,
    to_business_unit_id: str | int | None = None,
    now: datetime,
    actor: str,
) -> tuple[Transfer, list[tuple[int, int, Decimal]]]:
    """Move credits between accounts or business units, keeping their expiry and value.
    Returns the transfer and its moves as (source grant, new grant, credits)."""
    source = get_reference(session, Account, from_account_id, "from_account_id")
    target = get_reference(session, Account, to_account_id, "to_account_id")
    locked = {account.id: account for account in lock_all(session, Account, {source.id, target.id})}
    source, target = locked[source.id], locked[target.id]
    if credits <= 0:
        raise ValidationFailed("credits must be greater than zero", field="credits")
    if not reason or not reason.strip():
        raise ValidationFailed("a reason is required", field="reason")
    if source.currency != target.currency:
        raise CurrencyMismatch(f"account {source.id} uses {source.currency}, account {target.id} {target.currency}", field="to_account_id")
    from_unit, _ = _unit_of(session, source, from_business_unit_id, "from_business_unit_id")
    to_unit, _ = _unit_of(session, target, to_business_unit_id, "to_business_unit_id")
    if source.id == target.id and from_unit == to_unit:
        raise ValidationFailed("the credits would stay where they are", field="to_business_unit_id")
    planned = plan_draw(session, source, credits, business_unit_id=from_unit, at=now, now=now, unit_only=from_unit is not None).draws
    if target.id != source.id:
        from licensing.credits.expiry import record_due_expiries

        record_due_expiries(session, target, now=now)
    [transfer_id] = insert_rows(session, Transfer.__table__, [{
        "from_account_id": source.id, "to_account_id": target.id, "from_business_unit_id": from_unit,
        "to_business_unit_id": to_unit, "credits": credits, "reason": reason, "actor": actor, "created_at": now,
    }], return_ids=True)
    new_grants = []
    origins = []
    for row, take in planned:
        grant = lock(session, Grant, row.id, "grant")
        # The new grant is worth what the move takes out of this one (to the cent), so that the
        # worth of all outstanding credits, and so the journal's deferred revenue, stays the same.
        moved_value = -ledger.move(
            session, source, grant, LedgerKind.TRANSFER_OUT, -take, source_type="transfer", source_id=transfer_id,
            actor=actor, occurred_at=now, recorded_at=now,
        )
        new_grants.append(NewGrant(
            account_id=target.id, credits=take, value=moved_value, valid_from=grant.valid_from, expires_at=grant.expires_at,
            business_unit_id=to_unit, source_type="transfer", source_id=str(transfer_id), origin_grant_id=grant.id,
        ))
        origins.append(grant.id)
    session.flush()
    new_ids = create_grants(session, {target.id: target}, new_grants, actor=actor, at=now, kind="transfer_in")
    moves = [(origin, new_id, grant.credits) for origin, new_id, grant in zip(origins, new_ids, new_grants, strict=True)]
    record_event(
        session, "credits.transferred",
        {
            "transfer_id": str(transfer_id), "from_account_id": str(source.id), "to_account_id": str(target.id),
            "credits": f"{credits:.2f}", "reason": reason, "actor": actor,
        },
        at=now,
    )
    return session.get(Transfer, transfer_id), moves


def _unit_of(session: Session, account: Account, unit_id, field: str):
    try:
        return check_unit_and_member(session, account, unit_id, None)
    except Exception as error:  # the field name in the error must be the transfer's own
        if getattr(error, "code", None) == "unknown_reference":
            error.extra["errors"] = [{"field": field, "message": error.detail}]
        raise
