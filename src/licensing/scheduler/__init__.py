"""A minimal in-process scheduler: renewals and the billing run daily, the expiry sweep (with
rollover cuts) hourly, hold deadlines every five minutes.

Each job only calls a use case; what is due is decided from the data (lines not yet billed,
grants not yet expired), so a job that fires twice does no work twice.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from croniter import croniter

from licensing import clock
from licensing.config import get_settings
from licensing.db import Database

log = logging.getLogger("licensing.scheduler")

JOBS = {
    "renewals": "55 0 * * *",
    "billing-run": "0 1 * * *",
    "expiry-sweep": "5 * * * *",
    "hold-deadlines": "*/5 * * * *",
    "deliveries": "* * * * *",
}


def run_job(database: Database, name: str, now: datetime) -> None:
    from licensing.credits.expiry import sweep_expiries
    from licensing.credits.holds import settle_hold_deadlines
    from licensing.invoicing.billing import run_billing
    from licensing.licences.renewal import renew_due_licences

    if name == "billing-run":
        result = run_billing(database, as_of=clock.local_date(now, get_settings().zone), now=now, actor="scheduler")
        log.info("billing run: %s invoices created, %s approved", result.invoices_created, result.invoices_approved)
    elif name == "expiry-sweep":
        log.info("expiry sweep: %s grants expired", sweep_expiries(database, now=now))
    elif name == "renewals":
        log.info("renewals: %s licences renewed", renew_due_licences(database, today=clock.local_date(now, get_settings().zone), now=now))
    elif name == "deliveries":
        from licensing.documents.delivery import send_due

        run = send_due(database, now=now)
        log.info("deliveries: %s sent, %s retried later, %s failed", run.sent, run.retried, run.failed)
    elif name == "hold-deadlines":
        log.info("hold deadlines: %s holds settled", settle_hold_deadlines(database, now=now))


def loop(database: Database, stop: threading.Event) -> None:
    zone = get_settings().zone
    start = clock.now().astimezone(zone)
    schedules = {name: croniter(expression, start) for name, expression in JOBS.items()}
    upcoming = {name: schedule.get_next(datetime) for name, schedule in schedules.items()}
    while not stop.is_set():
        now = clock.now()
        for name, moment in list(upcoming.items()):
            if moment <= now:
                try:
                    run_job(database, name, now)
                except Exception:  # noqa: BLE001 - a failed job is logged and retried at its next moment
                    log.exception("job %s failed", name)
                upcoming[name] = schedules[name].get_next(datetime)
        stop.wait(30)


def start_in_background(database: Database) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=loop, args=(database, stop), name="licensing-scheduler", daemon=True).start()
    return stop
