"""Queueing the e-mail of approved documents: a reader of the events outbox.

Approving an invoice records ``invoice.approved``, approving a credit note
``credit_note.approved``, in the approving transaction; invoicing knows nothing of mail. This
module turns those events into ``deliveries`` (one per document: the unique key on (document
type, document id) means a document is queued, and so mailed, once), and
``documents/delivery.py`` sends them.

It runs right after the approving transaction has committed, whichever path approved (API, CLI,
top-up, billing run, scheduler), as the subscriber of those events (``licensing.bootstrap``
wires it): ``queue_and_send`` queues the documents that transaction approved, and starts the
sender when ``mail_on_approval`` is on. The scheduler's deliveries job reads the outbox
(``queue_approved``) and queues whatever no hook did (so a crash between the commit and the
hook delays a mail and loses none). The hook reads no outbox: a billing batch's hook used to
read the thousand events behind the newest again after every batch, and two billing workers
queued each other's documents, one waiting on the other's insert.

The outbox's reader keeps a cursor (``outbox_cursors``, name ``documents``). Event ids are
allocated when an event is written but become visible when its transaction commits, so on
PostgreSQL a lower id can appear after a higher one: as the webhooks' fan-out does, each run
looks back over the ``LOOKBACK`` events below the newest, and the cursor trails the newest event
by that much.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, tuple_
from sqlmodel import col, select

from licensing.accounts.models import Account
from licensing.config import get_settings
from licensing.db import Database
from licensing.db.bulk import insert_new
from licensing.documents.models import Delivery
from licensing.events import Event, OutboxCursor

CURSOR = "documents"
# The events of an approved document: its type and the field of the event naming it.
DOCUMENT_EVENTS = {"invoice.approved": ("invoice", "invoice_id"), "credit_note.approved": ("credit_note", "credit_note_id")}
LOOKBACK = 1000
QUEUE_LIMIT = 1000  # events read in one run; the next run reads on


def queue_approved(database: Database, *, limit: int = QUEUE_LIMIT) -> int:
    """Queue a delivery for each approved document of the outbox that has none yet, due from its
    approval on; returns how many were queued."""
    with database.read() as session:
        cursor = session.get(OutboxCursor, CURSOR)
        after = cursor.after_event_id if cursor is not None else 0
        newest = session.exec(select(func.max(Event.id))).one() or 0
        events = session.exec(
            select(Event.id, Event.type, Event.data, Event.created_at)
            .where(Event.id > after, Event.id <= newest, col(Event.type).in_(DOCUMENT_EVENTS))
            .order_by(Event.id)
            .limit(limit)
        ).all()
    # Move the cursor over what this run has seen, never closer than LOOKBACK to the newest event,
    # and only when it has fallen well behind (so that a quiet run writes nothing). After a full
    # page, up to its last event at most: the next run reads on from there.
    full = bool(events) and len(events) == limit
    moved = min(events[-1].id, newest - LOOKBACK) if full else newest - LOOKBACK
    queued = _queue(database, [event._asdict() for event in events])
    if moved >= after + LOOKBACK or (full and moved > after):
        with database.write() as session:
            cursor = session.get(OutboxCursor, CURSOR, with_for_update=True) or OutboxCursor(name=CURSOR)
            if moved > cursor.after_event_id:
                cursor.after_event_id = moved
                session.add(cursor)
    return queued


def _queue(database: Database, events: list[dict]) -> int:
    """Queue a delivery for each document approved by ``events`` (mappings with ``type``,
    ``data`` and ``created_at``) that has none yet; returns how many were queued."""
    documents: dict[tuple[str, int], tuple[int, datetime]] = {}  # (document type, id) -> (account id, approved at)
    for event in events:
        if event["type"] in DOCUMENT_EVENTS:
            document_type, field = DOCUMENT_EVENTS[event["type"]]
            data = json.loads(event["data"])
            documents[(document_type, int(data[field]))] = (int(data["account_id"]), event["created_at"])
    if not documents:
        return 0
    with database.read() as session:
        queued = session.exec(
            select(Delivery.document_type, Delivery.document_id).where(tuple_(Delivery.document_type, Delivery.document_id).in_(list(documents)))
        ).all()
    for key in queued:
        documents.pop(tuple(key), None)
    if not documents:
        return 0
    with database.write() as session:
        account_ids = {account_id for account_id, _approved_at in documents.values()}
        emails = dict(session.exec(select(Account.id, Account.email).where(col(Account.id).in_(account_ids))).all())
        # Due from the approval on, as if the approving transaction had queued it.
        rows = [
            {
                "document_type": document_type, "document_id": document_id, "account_id": account_id, "recipient": emails[account_id],
                "status": "pending", "attempts": 0, "last_error": None, "next_attempt_at": approved_at, "claimed_until": None,
                "message_id": None, "sent_at": None, "created_at": approved_at,
            }
            for (document_type, document_id), (account_id, approved_at) in documents.items()
        ]
        return insert_new(session, Delivery.__table__, rows, unique=["document_type", "document_id"])


def queue_and_send(database: Database, events: list[dict]) -> None:
    """After an approval has committed: queue the mail of the documents its ``events`` approved,
    and start sending it with ``mail_on_approval``."""
    _queue(database, events)
    if get_settings().mail_on_approval:
        from licensing.documents.delivery import send_in_background  # the PDF libraries, only when mail leaves

        send_in_background(database)
