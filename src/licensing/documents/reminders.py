"""Payment reminders (SPEC 12): the ``payment-reminders`` job mails each overdue invoice once per
stage of ``LICENSING_REMINDER_DAYS`` (default 7, 14 and 30 days past its due date).

1. **Queue** (``queue_reminders``): for every approved invoice with something still due and its
   due date passed (in the operator's zone), one ``payment_reminders`` row per stage reached and
   not recorded yet, inserted with ``ON CONFLICT DO NOTHING`` on (invoice, stage): two jobs at
   once never make two. Stage 0 records the day the invoice was first seen overdue (the
   ``invoice.overdue`` event, no mail). When several mail stages are reached at once (no job ran
   for a while), only the latest is mailed; the earlier ones are recorded ``skipped``.
2. **Send** (``send_reminders``): the delivery worker (``events.worker``) with a channel of its
   own: the reminder mail (``mail/reminder.txt`` and ``.html``) with the invoice's PDF, recorded
   ``sent`` with an ``invoice.reminded`` event. Only reminders of invoices still open are sent:
   the next queueing records the others (paid, credited or void since) ``skipped``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select

from licensing.accounts.models import Account
from licensing.clock import local_date
from licensing.config import Settings, get_settings
from licensing.db import Database
from licensing.db.bulk import insert_new
from licensing.documents.models import PaymentReminder
from licensing.events import event_row, record_events
from licensing.invoicing.models import Invoice

OVERDUE = 0  # the stage that records an invoice becoming overdue


def queue_reminders(database: Database, *, now: datetime, settings: Settings | None = None) -> int:
    """Record the stages reached by every overdue invoice; returns how many reminders will be mailed."""
    settings = settings or get_settings()
    today = local_date(now, settings.zone)
    stages = sorted(set(settings.reminder_days))
    with database.write() as session:
        table = PaymentReminder.__table__
        session.execute(
            update(table)
            .where(table.c.status == "pending", table.c.invoice_id.in_(select(Invoice.id).where(Invoice.status != "approved")))
            .values(status="skipped")
        )
        overdue = session.exec(
            select(Invoice.id, Invoice.account_id, Invoice.number, Invoice.due_date, Account.email)
            .join(Account, Account.id == Invoice.account_id)
            .where(Invoice.status == "approved", col(Invoice.due_date) < today)
            .order_by(Invoice.id)
        ).all()
        if not overdue:
            return 0
        recorded: dict[int, set[int]] = {}
        for invoice_id, stage in session.exec(
            select(PaymentReminder.invoice_id, PaymentReminder.stage_days).where(col(PaymentReminder.invoice_id).in_([row.id for row in overdue]))
        ):
            recorded.setdefault(invoice_id, set()).add(stage)
        rows, events, mailed = [], [], 0
        for invoice in overdue:
            days = (today - invoice.due_date).days
            done = recorded.get(invoice.id, set())
            reached = [stage for stage in [OVERDUE, *stages] if stage <= days and stage not in done]
            if not reached:
                continue
            latest_mail = max((stage for stage in reached if stage != OVERDUE), default=None)
            for stage in reached:
                status = "pending" if stage == latest_mail else "skipped"
                rows.append({
                    "invoice_id": invoice.id, "account_id": invoice.account_id, "stage_days": stage, "recipient": invoice.email,
                    "status": status, "attempts": 0, "last_error": None, "next_attempt_at": now, "claimed_until": None,
                    "message_id": None, "sent_at": None, "created_at": now,
                })
            if OVERDUE in reached:
                data = {"invoice_id": str(invoice.id), "number": invoice.number, "account_id": str(invoice.account_id)}
                events.append(event_row("invoice.overdue", data | {"due_date": invoice.due_date.isoformat()}, at=now))
            mailed += latest_mail is not None
        insert_new(session, table, rows, unique=["invoice_id", "stage_days"])
        record_events(session, events)
    return mailed


def send_reminders(database: Database, *, now: datetime, settings: Settings | None = None, limit: int = 100):
    """Mail the pending reminders through the delivery worker."""
    from licensing.documents.delivery import reminder_channel
    from licensing.events import worker

    settings = settings or get_settings()
    return worker.work(database, reminder_channel(database, settings, now=now), now=now, limit=limit)

