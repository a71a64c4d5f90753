"""Queueing the e-mail of an approved document, in the approving transaction (an outbox): the
mail is sent after the approval commits (``documents/delivery.py``), never before, and the
unique key on (document type, document id) means it is queued, and so sent, once.

With ``mail_on_approval`` the sender starts as soon as the approval commits, whichever path
approved (API, CLI, top-up, billing run, scheduler); the scheduler's deliveries job sends what it
does not."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from licensing.accounts.models import Account
from licensing.config import get_settings
from licensing.db import Database, after_commit
from licensing.db.bulk import insert_rows
from licensing.documents.models import Delivery


def queue_deliveries(session: Session, document_type: str, documents: list[tuple[int, Account]], *, at: datetime) -> None:
    insert_rows(session, Delivery.__table__, [
        {
            "document_type": document_type, "document_id": document_id, "account_id": account.id, "recipient": account.email,
            "status": "pending", "attempts": 0, "last_error": None, "next_attempt_at": at, "claimed_until": None,
            "message_id": None, "sent_at": None, "created_at": at,
        }
        for document_id, account in documents
    ])
    if documents and get_settings().mail_on_approval:
        after_commit(session, "mail approved documents", send_now)


def send_now(database: Database) -> None:
    """Start sending the due mail in the background (the deliveries job retries what fails)."""
    from licensing.documents.delivery import send_in_background

    send_in_background(database)
