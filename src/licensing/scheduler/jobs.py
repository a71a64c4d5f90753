"""The scheduled jobs: each one a use case called with the moment of its run, in a table.

A job only calls a use case whose work is decided by the data (lines not yet billed, grants not
yet expired, notices not yet emitted, mails not yet sent), so a job that runs twice does
nothing twice, and one run after downtime does all the missed work once. Each returns a line
for the log and the ``job_runs`` table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from licensing import clock
from licensing.config import Settings
from licensing.db import Database

Job = Callable[[Database, datetime, Settings], str]


def renewals(database: Database, now: datetime, settings: Settings) -> str:
    from licensing.licences.renewal import renew_due_licences

    result = renew_due_licences(database, today=clock.local_date(now, settings.zone), now=now)
    failed = "".join(f"; licence {licence_id} not renewed: {error}" for licence_id, error in result.failed)
    return f"{result.renewed} licences renewed{failed}"


def billing_run(database: Database, now: datetime, settings: Settings) -> str:
    from licensing.invoicing.billing import run_billing

    result = run_billing(database, as_of=clock.local_date(now, settings.zone), now=now, actor="scheduler", settings=settings)
    failed = "".join(f"; licence {failure.licence_id} not billed: {failure.error}" for failure in result.failed)
    return f"{result.invoices_created} invoices created, {result.invoices_approved} approved{failed}"


def expiry_sweep(database: Database, now: datetime, settings: Settings) -> str:
    from licensing.credits.expiry import sweep_expiries

    return f"{sweep_expiries(database, now=now)} grants expired (rollover cuts recorded)"


def expiry_notices(database: Database, now: datetime, settings: Settings) -> str:
    from licensing.credits.notices import emit_expiry_notices

    return f"{emit_expiry_notices(database, now=now, settings=settings)} expiry notices"


def hold_deadlines(database: Database, now: datetime, settings: Settings) -> str:
    from licensing.credits.holds import settle_hold_deadlines

    return f"{settle_hold_deadlines(database, now=now, settings=settings)} holds settled"


def deliveries(database: Database, now: datetime, settings: Settings) -> str:
    from licensing.documents.delivery import send_due
    from licensing.documents.queue import queue_approved

    queue_approved(database)  # what no after-commit hook queued (see documents.queue)
    run = send_due(database, now=now, settings=settings)
    return f"{run.sent} mails sent, {run.retried} to retry, {run.failed} failed"


def payment_reminders(database: Database, now: datetime, settings: Settings) -> str:
    from licensing.documents.reminders import queue_reminders, send_reminders

    queued = queue_reminders(database, now=now, settings=settings)
    run = send_reminders(database, now=now, settings=settings)
    return f"{queued} reminders queued; {run.done} sent, {run.retried} to retry, {run.failed} failed"


def webhooks(database: Database, now: datetime, settings: Settings) -> str:
    from licensing.webhooks.background import send_in_background
    from licensing.webhooks.services import fan_out

    # Only the fan-out runs in the job: the POSTs go to a background sender (one per process
    # and database), so that a slow receiver never delays the jobs after this one.
    fanned = fan_out(database, now=now)
    return f"{fanned} webhook deliveries queued; {send_in_background(database, now=now, settings=settings)}"


# Every job: its default schedule (cron, in the operator's zone; seconds, when given, are the
# sixth field) and what it runs. The order is the order in which a tick runs the jobs due.
TABLE: dict[str, tuple[str, Job]] = {
    "renewals": ("50 0 * * *", renewals),
    "billing-run": ("0 1 * * *", billing_run),
    "expiry-sweep": ("5 * * * *", expiry_sweep),
    "expiry-notices": ("15 1 * * *", expiry_notices),
    "hold-deadlines": ("*/5 * * * *", hold_deadlines),
    "deliveries": ("* * * * *", deliveries),
    "payment-reminders": ("30 1 * * *", payment_reminders),
    "webhooks": ("* * * * * */5", webhooks),
}
