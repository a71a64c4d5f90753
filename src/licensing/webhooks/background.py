"""Webhook deliveries sent beside the scheduler, never in its way.

The scheduler runs its jobs one after the other; a slow receiver POSTed to inside the
``webhooks`` job would hold up the mail, the billing run and everything after it. So the job
only fans out (short database work) and hands the sending to a thread of its own, at most one
per process and database: a tick that finds it still busy leaves it be (the deliveries it has
not reached are still due for the next one). A sender stops claiming deliveries after
``BUDGET`` and so ends by ``BUDGET`` plus one delivery's deadline; the next tick starts another.

The thread is not a daemon: ``licensing scheduler --once`` (run by cron) exits only once the
sending it started is done, and a stopping server waits for the delivery in flight (at most the
budget and a deadline; a process killed meanwhile leaves its claim to run out and the delivery
to be sent again, at least once as always).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, func, or_, select

from licensing.config import Settings
from licensing.db import Database
from licensing.webhooks.models import WebhookDelivery

log = logging.getLogger("licensing.webhooks")

BUDGET = timedelta(seconds=30)  # a sender claims no delivery after this long

_lock = threading.Lock()
_senders: dict[str, threading.Thread] = {}  # database URL -> its sender


@dataclass(frozen=True, slots=True)
class Sending:
    due: int  # deliveries due at the tick
    started: bool  # a sender was started for them (else one is already running, or none is due)

    def __str__(self) -> str:
        if not self.due:
            return "none due"
        return f"{self.due} due, sent in the background" if self.started else f"{self.due} due, a sender is already at work"


def due_count(database: Database, now: datetime) -> int:
    with database.read() as session:
        return session.exec(
            select(func.count()).select_from(WebhookDelivery).where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                or_(col(WebhookDelivery.claimed_until).is_(None), col(WebhookDelivery.claimed_until) <= now),
            )
        ).one()


def send_in_background(database: Database, *, now: datetime, settings: Settings) -> Sending:
    """Start sending the deliveries due at ``now`` in a thread, unless one is at work for this
    database already or nothing is due. Returns at once."""
    due = due_count(database, now)
    if not due:
        return Sending(due=0, started=False)
    with _lock:
        running = _senders.get(database.url)
        if running is not None and running.is_alive():
            return Sending(due=due, started=False)
        thread = threading.Thread(target=_send, args=(database, now, settings), name="licensing-webhooks", daemon=False)
        _senders[database.url] = thread
        thread.start()
    return Sending(due=due, started=True)


def _send(database: Database, now: datetime, settings: Settings) -> None:
    from licensing.webhooks.services import deliver_due

    try:
        run = deliver_due(database, now=now, settings=settings, budget=BUDGET)
        log.info("webhooks: %s", run)
    except Exception:  # noqa: BLE001 - logged; the deliveries stay due for the next tick
        log.exception("webhook sender failed")


def wait(database: Database | None = None, timeout: int | None = None) -> bool:
    """Wait up to ``timeout`` seconds each for the sender of ``database`` (or every sender);
    whether none is still at work."""
    with _lock:
        threads = [thread for url, thread in _senders.items() if database is None or url == database.url]
    for thread in threads:
        thread.join(timeout)
    return not any(thread.is_alive() for thread in threads)
