"""API keys: stored only as SHA-256 hashes, one role each; they may expire, be revoked, and a
``bookings`` or ``read`` key may be limited to some accounts."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from licensing.accounts.models import Account
from licensing.auth.models import ApiKey
from licensing.db import Database
from licensing.db.driver import fetch_one_autocommit
from licensing.db.repository import get_reference, lock
from licensing.errors import ValidationFailed
from licensing.text import unprintable

ROLES = ("admin", "billing", "bookings", "read")
SCOPED_ROLES = ("bookings", "read")  # the roles a key limited to some accounts may have


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(
    session: Session,
    *,
    name: str,
    role: str,
    at: datetime,
    expires_at: datetime | None = None,
    account_ids: Iterable[int | str] | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret; the secret is shown once and never stored.

    ``expires_at`` (an instant after ``at``) ends the key by itself; ``account_ids`` limits a
    ``bookings`` or ``read`` key to those accounts (each must exist)."""
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    if not name or len(name) > 200:
        raise ValidationFailed("name must be 1 to 200 characters", field="name")
    if problem := unprintable(name):
        raise ValidationFailed(f"name {problem}", field="name")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValidationFailed("expires_at must be an instant with an offset (RFC 3339)", field="expires_at")
        if expires_at <= at:
            raise ValidationFailed("expires_at must be in the future", field="expires_at")
    scope = None
    if account_ids is not None:
        if role not in SCOPED_ROLES:
            raise ValidationFailed(f"account_ids may only limit a bookings or read key; this key's role is {role}", field="account_ids")
        ids = sorted({get_reference(session, Account, account_id, "account_ids").id for account_id in account_ids})
        if not ids:
            raise ValidationFailed("account_ids must name at least one account (leave it out for every account)", field="account_ids")
        scope = ",".join(str(account_id) for account_id in ids)
    secret = "lk_" + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role, key_hash=hash_key(secret), created_at=at, expires_at=expires_at, account_ids=scope)
    session.add(key)
    session.flush()
    return key, secret


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked and expired ones too, oldest first."""
    return list(session.exec(select(ApiKey).order_by(ApiKey.id)).all())


def revoke_api_key(session: Session, key_id: int | str, *, at: datetime) -> ApiKey:
    """Revoke a key from ``at`` on; revoking it again changes nothing (idempotent)."""
    key = lock(session, ApiKey, key_id, "api key")
    if key.revoked_at is None:
        key.revoked_at = at
        session.add(key)
        session.flush()
    return key


_BY_HASH = sa_select(ApiKey.__table__).where(ApiKey.__table__.c.key_hash == bindparam("key_hash"))  # built once: read on every request


def authenticate(database: Database, secret: str, at: datetime) -> Any | None:
    """The key with this secret if it may be used at ``at``: not revoked, not expired. Read on
    every request, never cached (a revoked key is refused at once, in every process): one
    statement on a pooled connection, outside any transaction (``db.driver``), as a plain row
    with the columns of ``ApiKey`` as attributes (building a validated model costs more than
    the query)."""
    key = fetch_one_autocommit(database.reader, _BY_HASH, {"key_hash": hash_key(secret)})
    return key if key is not None and is_active(key, at) else None


def is_active(key: ApiKey, at: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or at < key.expires_at)


def status_of(key: ApiKey, at: datetime) -> str:
    """``revoked``, ``expired`` or ``active``."""
    if key.revoked_at is not None:
        return "revoked"
    return "active" if is_active(key, at) else "expired"


def scope_of(key: ApiKey) -> frozenset[int] | None:
    """The accounts a key is limited to, or None for every account."""
    if key.account_ids is None:
        return None
    return frozenset(int(part) for part in key.account_ids.split(",") if part)
