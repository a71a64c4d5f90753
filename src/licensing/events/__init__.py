"""The events outbox (SPEC 9): each event is written in the same transaction as its change.

Two kinds of reader follow the outbox: webhooks (``webhooks.services.fan_out``) and the mail of
approved documents (``documents.queue``). A part that must act soon after an event is committed
subscribes to its types (``subscribe``, wired once at the root: ``licensing.bootstrap``): the
transaction that records such an event runs the subscriber once it has committed (an
after-commit hook of the unit of work), with the events of those types it recorded. The
subscriber acts on those only; its scheduled job reads the outbox and catches up on whatever a
hook did not get to (a crash between the commit and the hook, a process that was not wired).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Column, Text
from sqlmodel import Field, Session, SQLModel

from licensing.db import Database, after_commit
from licensing.db.bulk import insert_rows
from licensing.db.types import UTCDateTime


class Event(SQLModel, table=True):
    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=60, index=True)
    data: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class OutboxCursor(SQLModel, table=True):
    """How far a reader of the outbox has dealt with it: events at or below ``after_event_id``
    are done (webhooks keep theirs on each webhook)."""

    __tablename__ = "outbox_cursors"

    name: str = Field(primary_key=True, max_length=60)
    after_event_id: int = 0


def event_row(type_: str, data: dict[str, Any], *, at: dt.datetime) -> dict[str, Any]:
    return {"type": type_, "data": json.dumps(data, default=str, sort_keys=True), "created_at": at}


def record_event(session: Session, type_: str, data: dict[str, Any], *, at: dt.datetime) -> None:
    record_events(session, [event_row(type_, data, at=at)])


def record_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    insert_rows(session, Event.__table__, rows)
    for type_ in {row["type"] for row in rows} & _subscribers.keys():
        for name, subscriber in _subscribers[type_].items():
            recorded = session.info.setdefault(_RECORDED, {})
            if name not in recorded:
                recorded[name] = []
                after_commit(session, name, _with_events(subscriber, recorded[name]))
            recorded[name].extend(row for row in rows if row["type"] == type_)


Subscriber = Callable[[Database, list[dict[str, Any]]], None]
_subscribers: dict[str, dict[str, Subscriber]] = {}  # event type -> {name: subscriber}
_RECORDED = "licensing.events.recorded"  # session.info: subscriber name -> the rows it will be given


def _with_events(subscriber: Subscriber, rows: list[dict[str, Any]]) -> Callable[[Database], None]:
    return lambda database: subscriber(database, rows)


def subscribe(types: Iterable[str], name: str, subscriber: Subscriber) -> None:
    """Run ``subscriber(database, events)`` once after each commit of a transaction that recorded
    events of ``types`` (once per transaction and ``name``; subscribing again replaces), with
    those events as recorded (``type``, ``data`` as JSON, ``created_at``), in order."""
    for type_ in types:
        _subscribers.setdefault(type_, {})[name] = subscriber
