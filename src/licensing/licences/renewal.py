"""Auto-renew (SPEC 2).

When a licence with ``auto_renew`` reaches its end date (by the clock, or because a billing
run's ``as_of`` needs periods past it: the run renews as it goes), its end date moves on by the
renewal term, and every service whose to-date was the old end date moves with it, so recurring
grants carry on without anyone touching the licence.

The renewal term is the licence's ``renewal_term`` or, when it has none, the length of the
first term (start date to end date inclusive: 2027-01-01 to 2027-12-31 is P1Y). A term of
months lands on the licence's start day, clamped to short months, so terms never drift: a
licence from Jan 31 renewed monthly ends Feb 27/28, Mar 30, Apr 29 ... the day before the next
start. Terminated licences and licences without an end date do not renew.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlmodel import Session, col, select

from licensing.dates import Lifetime, parse_lifetime
from licensing.db import Database, describe_failure, is_outage
from licensing.db.repository import lock
from licensing.events import record_event
from licensing.licences.models import ContractService, Licence

log = logging.getLogger("licensing.renewals")

MAX_RENEWALS = 1200  # a safety net against a runaway loop (100 years of monthly terms)


def renewal_term(licence) -> Lifetime:
    """The licence's renewal term, or the length of its first term."""
    if licence.renewal_term:
        return parse_lifetime(licence.renewal_term)
    length = relativedelta(licence.end_date + timedelta(days=1), licence.start_date)
    months, days = length.years * 12 + length.months, length.days
    return Lifetime(months=months, days=days, text=f"P{months}M{days}D" if days else f"P{months}M")


def needs_renewal(licence, until: date) -> bool:
    """Whether the licence renews because ``until`` lies past its end date."""
    return bool(
        licence.auto_renew and licence.status == "active" and licence.terminated_on is None
        and licence.end_date is not None and licence.end_date < until
    )


def renew_licence(session: Session, licence_id: int, *, until: date, now: datetime, actor: str) -> Licence:
    """Renew the licence term after term until its end date is on or after ``until`` (the
    caller's transaction; the licence row is locked). One ``licence.renewed`` event per term."""
    licence = lock(session, Licence, licence_id, "licence")
    if not needs_renewal(licence, until):
        return licence
    term = renewal_term(licence)
    anchor_day = licence.start_date.day if term.months else None
    for _ in range(MAX_RENEWALS):
        if licence.end_date >= until:
            break
        previous_end = licence.end_date
        next_start = previous_end + timedelta(days=1)
        licence.end_date = term.end(next_start, anchor_day=anchor_day) - timedelta(days=1)
        for service in session.exec(
            select(ContractService).where(ContractService.licence_id == licence.id, ContractService.to_date == previous_end)
        ).all():
            service.to_date = licence.end_date
            session.add(service)
        record_event(
            session, "licence.renewed",
            {"licence_id": str(licence.id), "account_id": str(licence.account_id), "previous_end_date": previous_end.isoformat(),
             "start_date": next_start.isoformat(), "end_date": licence.end_date.isoformat(), "term": term.text, "actor": actor},
            at=now,
        )
    session.add(licence)
    session.flush()
    return licence


@dataclass(slots=True)
class Renewals:
    renewed: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (licence id, what went wrong)


def renew_due_licences(database: Database, *, today: date, now: datetime, actor: str = "scheduler") -> Renewals:
    """The renewal job: renew every auto-renewing licence whose end date has passed, and mark
    licences that ended without renewing as ``ended``; one transaction per licence. A licence
    that cannot be renewed is logged, recorded (a ``renewal.failed`` event) and left for the
    next run; the others are renewed."""
    with database.read() as session:
        due = session.exec(
            select(Licence.id, Licence.auto_renew).where(Licence.status == "active", col(Licence.end_date) < today).order_by(Licence.id)
        ).all()
    result = Renewals()
    for licence_id, auto_renew in due:
        try:
            with database.write() as session:
                licence = lock(session, Licence, licence_id, "licence")
                if needs_renewal(licence, today):
                    renew_licence(session, licence.id, until=today, now=now, actor=actor)
                    result.renewed += 1
                elif licence.status == "active" and licence.end_date is not None and licence.end_date < today and not auto_renew:
                    licence.status = "ended"
                    session.add(licence)
        except Exception as error:
            if is_outage(error):
                raise
            reason = describe_failure(error)
            log.error("licence %s was not renewed: %s", licence_id, reason, exc_info=error)
            result.failed.append((licence_id, reason))
            with database.write() as session:
                record_event(session, "renewal.failed", {"licence_id": str(licence_id), "error": reason}, at=now)
    return result
