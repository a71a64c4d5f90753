"""Webhook deliveries sent beside the scheduler, never in its way.

The scheduler runs its jobs one after the other; a slow receiver POSTed to inside the
``webhooks`` job would hold up the mail, the billing run and everything after it. So the job
only fans out (short database work) and hands the sending to the delivery worker's thread
(``events.worker.start``), at most one per process and database: a tick that finds it still busy
leaves it be (the deliveries it has not reached are still due for the next one). A sender stops
claiming deliveries after ``BUDGET`` and so ends by ``BUDGET`` plus one delivery's deadline; the
next tick starts another.

The thread is not a daemon: ``licensing scheduler --once`` (run by cron) exits only once the
sending it started is done, and a stopping server waits for the delivery in flight (at most the
budget and a deadline; a process killed meanwhile leaves its claim to run out and the delivery
to be sent again, at least once as always). ``events.worker.wait`` waits for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from licensing.config import Settings
from licensing.db import Database
from licensing.events import worker
from licensing.webhooks.models import Webhook, WebhookDelivery

log = logging.getLogger("licensing.webhooks")

BUDGET = timedelta(seconds=30)  # a sender claims no delivery after this long


@dataclass(frozen=True, slots=True)
class Sending:
    due: int  # deliveries due at the tick
    started: bool  # a sender was started for them (else one is already running, or none is due)

    def __str__(self) -> str:
        if not self.due:
            return "none due"
        return f"{self.due} due, sent in the background" if self.started else f"{self.due} due, a sender is already at work"


def send_in_background(database: Database, *, now: datetime, settings: Settings) -> Sending:
    """Start sending the deliveries due at ``now`` in a thread, unless one is at work for this
    database already or nothing is due. Returns at once."""
    active = col(WebhookDelivery.webhook_id).in_(select(Webhook.id).where(col(Webhook.deleted_at).is_(None)))
    due = worker.due_count(database, WebhookDelivery, now, active)
    if not due:
        return Sending(due=0, started=False)

    def send() -> None:
        from licensing.webhooks.services import deliver_due

        try:
            log.info("webhooks: %s", deliver_due(database, now=now, settings=settings, budget=BUDGET))
        except Exception:  # noqa: BLE001 - logged; the deliveries stay due for the next tick
            log.exception("webhook sender failed")

    _thread, started = worker.start(database, "webhooks", send, daemon=False)
    return Sending(due=due, started=started)
