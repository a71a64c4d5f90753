from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from licensing.db.types import UTCDateTime


class ApiKey(SQLModel, table=True):
    """An API key, stored only as the SHA-256 hash of the secret."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role in ('admin', 'billing', 'bookings', 'read')", name="api_key_role"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # Comma-separated ids of the accounts a ``bookings`` or ``read`` key is limited to (None: all).
    account_ids: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a POST carrying an ``Idempotency-Key`` (per API key and route)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "route", "key", name="uq_idempotency"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="api_keys.id")
    route: str = Field(max_length=200)
    key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    status_code: int
    response_body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
