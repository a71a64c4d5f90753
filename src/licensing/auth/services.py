"""API keys: created from the command line, stored only as SHA-256 hashes, one role each."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlmodel import Session, select

from licensing.auth.models import ApiKey
from licensing.errors import ValidationFailed

ROLES = ("admin", "billing", "bookings", "read")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(session: Session, *, name: str, role: str, at: datetime) -> tuple[ApiKey, str]:
    """A new key and its secret; the secret is shown once and never stored."""
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    if not name or len(name) > 200:
        raise ValidationFailed("name must be 1 to 200 characters", field="name")
    secret = "lk_" + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role, key_hash=hash_key(secret), created_at=at)
    session.add(key)
    session.flush()
    return key, secret


def authenticate(session: Session, secret: str) -> ApiKey | None:
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(secret))).one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    return key
