from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from licensing.db.types import UTCDateTime


class Webhook(SQLModel, table=True):
    """An endpoint that receives events: ``events`` is a JSON list of types, or ``["*"]``. Only
    events recorded after registration (id above ``after_event_id``) are delivered to it;
    ``after_event_id`` also serves as the fan-out cursor and only moves forward."""

    __tablename__ = "webhooks"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    events: str = Field(sa_column=Column(Text, nullable=False))
    secret: str = Field(max_length=200)
    after_event_id: int = 0
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    deleted_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook: retried with back-off until delivered, or failed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_delivery"),
        CheckConstraint("status in ('pending', 'delivered', 'failed')", name="webhook_delivery_status"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id", index=True)
    event_id: int = Field(foreign_key="events.id", index=True)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    last_status_code: int | None = None
    next_attempt_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    delivered_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
