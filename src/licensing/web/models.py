"""Console users, browser sessions (console and portal) and the portal's sign-in links.

Secrets are never stored: passwords as argon2 hashes, session tokens and sign-in links as
SHA-256 hashes of random 256-bit tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Column
from sqlmodel import Field, SQLModel

from licensing.db.types import UTCDateTime


class ConsoleUser(SQLModel, table=True):
    """A person who signs in to the operator console, with one of the API's roles."""

    __tablename__ = "console_users"
    __table_args__ = (CheckConstraint("role in ('admin', 'billing', 'bookings', 'read')", name="console_user_role"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # stored in lower case
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=200)
    # Failed sign-ins since the last success; at LOCK_AFTER_FAILURES the user is locked out
    # until ``locked_until``.
    failed_sign_ins: int = 0
    locked_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class BrowserSession(SQLModel, table=True):
    """A signed-in browser: a console user's, or a member's on the portal (for one account)."""

    __tablename__ = "browser_sessions"
    __table_args__ = (
        CheckConstraint("(kind = 'console' and user_id is not null) or (kind = 'portal' and account_id is not null)", name="browser_session_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str = Field(max_length=64)
    user_id: int | None = Field(default=None, foreign_key="console_users.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="accounts.id")
    email: str = Field(max_length=320)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class SignInLink(SQLModel, table=True):
    """A single-use link to the portal, mailed to an address the account knows."""

    __tablename__ = "sign_in_links"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    email: str = Field(max_length=320)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
