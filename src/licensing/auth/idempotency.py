"""The idempotency guard of a write request made with an ``Idempotency-Key`` (API.md): the
first outcome is stored with the request's hash, per API key, route and key, in the request's
own transaction (``db.unit_of_work.run``); the same request again gets that outcome, another
request with the same key is ``idempotency_conflict``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from licensing.auth.models import IdempotencyRecord
from licensing.errors import IdempotencyConflict


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    body: Any  # JSON-ready
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    api_key_id: int
    route: str  # "POST /api/v1/accounts/{account_id}/consumptions"
    key: str
    request_hash: str
    at: datetime

    def replay(self, session: Session) -> Outcome | None:
        record = session.exec(
            select(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == self.api_key_id, IdempotencyRecord.route == self.route, IdempotencyRecord.key == self.key
            )
        ).one_or_none()
        if record is None:
            return None
        if record.request_hash != self.request_hash:
            raise IdempotencyConflict(f"Idempotency-Key {self.key!r} was used with another request")
        return Outcome(record.status_code, json.loads(record.response_body), replayed=True)

    def remember(self, session: Session, outcome: Outcome) -> None:
        session.add(
            IdempotencyRecord(
                api_key_id=self.api_key_id, route=self.route, key=self.key, request_hash=self.request_hash,
                status_code=outcome.status_code, response_body=json.dumps(outcome.body), created_at=self.at,
            )
        )

    def lost_race(self, error: IntegrityError) -> bool:
        return is_idempotency_race(error)


def is_idempotency_race(error: IntegrityError) -> bool:
    """Whether the failed insert is the idempotency record's own unique key (two requests with
    the same key at once), as PostgreSQL and SQLite name it."""
    message = str(getattr(error, "orig", error))
    return "uq_idempotency" in message or "idempotency_records.api_key_id" in message
