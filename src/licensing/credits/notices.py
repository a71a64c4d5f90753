"""Expiry notices (SPEC 5): at each horizon (default 30 and 7 days before expiry) one
``credits.expiring`` event per grant that still has credits, naming the account, the business
unit, the remaining credits and the instant they expire. The unique key (grant, horizon) on
``expiry_notices`` makes each notice once, however often and however concurrently the job runs;
a grant that is empty when its horizon is reached gets none, and a grant approved inside a
horizon gets that horizon's notice on the next run (not the longer horizons it is already past).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from licensing.clock import local_date
from licensing.config import Settings, get_settings
from licensing.credits.models import ExpiryNotice, Grant
from licensing.db import Database
from licensing.events import record_event

BATCH = 500


def emit_expiry_notices(database: Database, *, now: datetime, settings: Settings | None = None) -> int:
    """Emit the notices due at ``now``; returns how many were emitted."""
    settings = settings or get_settings()
    horizons = sorted(set(settings.expiry_notice_days), reverse=True)
    emitted = 0
    for index, days in enumerate(horizons):
        # A grant inside a shorter horizon is noticed at that one only.
        shorter = horizons[index + 1] if index + 1 < len(horizons) else None
        with database.read() as session:
            statement = (
                select(Grant.id)
                .where(
                    Grant.remaining > 0, col(Grant.expires_at).is_not(None), col(Grant.expires_at) > now,
                    col(Grant.expires_at) <= now + timedelta(days=days), Grant.valid_from <= now,
                    ~select(ExpiryNotice.id).where(ExpiryNotice.grant_id == Grant.id, ExpiryNotice.horizon_days == days).exists(),
                )
                .order_by(Grant.id)
            )
            if shorter is not None:
                statement = statement.where(col(Grant.expires_at) > now + timedelta(days=shorter))
            due = list(session.exec(statement).all())
        for start in range(0, len(due), BATCH):
            emitted += _emit(database, due[start : start + BATCH], days, now=now, settings=settings)
    return emitted


def _emit(database: Database, grant_ids: list[int], days: int, *, now: datetime, settings: Settings) -> int:
    emitted = 0
    with database.write() as session:
        for grant in session.exec(select(Grant).where(col(Grant.id).in_(grant_ids)).order_by(Grant.id)).all():
            try:
                with session.begin_nested():
                    session.add(ExpiryNotice(grant_id=grant.id, horizon_days=days, credits=grant.remaining, created_at=now))
                    session.flush()
            except IntegrityError:
                continue  # another run emitted it
            expiry_day = local_date(grant.expires_at, settings.zone)
            record_event(
                session, "credits.expiring",
                {
                    "account_id": str(grant.account_id),
                    "business_unit_id": None if grant.business_unit_id is None else str(grant.business_unit_id),
                    "grant_id": str(grant.id), "credits": f"{grant.remaining:.2f}", "expires_at": grant.expires_at.isoformat(),
                    "horizon_days": days,
                    "message": f"{grant.remaining:.2f} credits expire at the start of {expiry_day.isoformat()}",
                },
                at=now,
            )
            emitted += 1
    return emitted
