"""The events outbox (SPEC 9): each event is written in the same transaction as its change."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Column, Text
from sqlmodel import Field, Session, SQLModel

from licensing.db.bulk import insert_rows
from licensing.db.types import UTCDateTime


class Event(SQLModel, table=True):
    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=60, index=True)
    data: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def event_row(type_: str, data: dict[str, Any], *, at: dt.datetime) -> dict[str, Any]:
    return {"type": type_, "data": json.dumps(data, default=str, sort_keys=True), "created_at": at}


def record_event(session: Session, type_: str, data: dict[str, Any], *, at: dt.datetime) -> None:
    record_events(session, [event_row(type_, data, at=at)])


def record_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        insert_rows(session, Event.__table__, rows)
