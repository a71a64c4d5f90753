"""Who is signed in: console users (argon2 passwords, lock-out after repeated failures), browser
sessions, and the single-use sign-in links of the member portal.

Every secret handed to a browser (a session cookie, a sign-in link) is a random 256-bit token;
only its SHA-256 hash is stored, so a copy of the database signs nobody in."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, func, or_, select

from licensing.accounts.models import Account, Member
from licensing.auth.services import ROLES
from licensing.errors import Conflict, ValidationFailed
from licensing.web.models import BrowserSession, ConsoleUser, SignInLink

LOCK_AFTER_FAILURES = 5
LOCK_TIME = timedelta(minutes=15)
CONSOLE_SESSION_TIME = timedelta(hours=12)
PORTAL_SESSION_TIME = timedelta(hours=12)
LINK_TIME = timedelta(minutes=15)
# A new link for the same account and address is not mailed sooner than this after the last one.
LINK_INTERVAL = timedelta(minutes=1)
MIN_PASSWORD_LENGTH = 12
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so that a wrong address takes as long as a wrong password.
_NOBODY = hasher.hash(secrets.token_urlsafe(16))


class UserExists(Conflict):
    pass


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normal_email(email: str) -> str:
    return email.strip().lower()


def create_user(session: Session, *, email: str, role: str, password: str, at: datetime) -> ConsoleUser:
    """A console user with one of the API's roles; the password is stored as an argon2 hash."""
    email = normal_email(email)
    if not EMAIL.match(email) or len(email) > 320:
        raise ValidationFailed("email must be an e-mail address", field="email")
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"the password must have at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if session.exec(select(ConsoleUser.id).where(ConsoleUser.email == email)).first() is not None:
        raise UserExists(f"a console user with the e-mail {email} exists")
    user = ConsoleUser(email=email, role=role, password_hash=hasher.hash(password), created_at=at)
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a password sign-in: a session token, or why not."""

    token: str | None = None
    session: BrowserSession | None = None
    locked_until: datetime | None = None


def sign_in(session: Session, *, email: str, password: str, at: datetime) -> SignIn:
    """A new console session for the right e-mail and password. Each failure is counted; at
    ``LOCK_AFTER_FAILURES`` in a row the user is locked out for ``LOCK_TIME`` (even the right
    password is refused meanwhile). The caller commits the count of a failure too."""
    user = session.exec(select(ConsoleUser).where(ConsoleUser.email == normal_email(email)).with_for_update()).first()
    if user is None:
        _verify(_NOBODY, password)
        return SignIn()
    if user.locked_until is not None and at < user.locked_until:
        return SignIn(locked_until=user.locked_until)
    if not _verify(user.password_hash, password):
        user.failed_sign_ins += 1
        if user.failed_sign_ins >= LOCK_AFTER_FAILURES:
            user.failed_sign_ins, user.locked_until = 0, at + LOCK_TIME
        session.add(user)
        return SignIn(locked_until=user.locked_until if user.locked_until and at < user.locked_until else None)
    user.failed_sign_ins, user.locked_until = 0, None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    session.add(user)
    token, browser = _start(session, "console", email=user.email, user_id=user.id, at=at, lasting=CONSOLE_SESSION_TIME)
    return SignIn(token=token, session=browser)


def _verify(stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _start(session: Session, kind: str, *, email: str, at: datetime, lasting: timedelta, user_id=None, account_id=None) -> tuple[str, BrowserSession]:
    token = secrets.token_urlsafe(32)
    browser = BrowserSession(
        kind=kind, token_hash=token_hash(token), csrf_token=secrets.token_urlsafe(32), user_id=user_id, account_id=account_id,
        email=email, created_at=at, expires_at=at + lasting,
    )
    session.add(browser)
    session.flush()
    return token, browser


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who a browser session belongs to: a console user with a role, or a member's account."""

    session_id: int
    kind: str
    email: str
    csrf_token: str
    role: str | None = None
    account_id: int | None = None


def visitor(session: Session, kind: str, token: str | None, at: datetime) -> Visitor | None:
    """The signed-in visitor of this cookie's token, if the session is live (not ended, not
    expired) and of this kind; the role is read from the user each time (a change applies at once)."""
    if not token:
        return None
    browser = session.exec(select(BrowserSession).where(BrowserSession.token_hash == token_hash(token))).first()
    if browser is None or browser.kind != kind or browser.ended_at is not None or at >= browser.expires_at:
        return None
    role = None
    if kind == "console":
        user = session.get(ConsoleUser, browser.user_id)
        if user is None:
            return None
        role = user.role
    return Visitor(browser.id, kind, browser.email, browser.csrf_token, role=role, account_id=browser.account_id)


def sign_out(session: Session, session_id: int, *, at: datetime) -> None:
    browser = session.get(BrowserSession, session_id)
    if browser is not None and browser.ended_at is None:
        browser.ended_at = at
        session.add(browser)


# -- the member portal's sign-in links ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    account_id: int
    account_name: str
    email: str
    token: str


def new_links(session: Session, *, email: str, at: datetime) -> list[Link]:
    """A sign-in link (valid ``LINK_TIME``, single use) for each account that knows this
    address, as its own e-mail or a member's; none for an unknown address (the page says the
    same either way), and none for an account whose last link is younger than ``LINK_INTERVAL``."""
    email = normal_email(email)
    if not EMAIL.match(email) or len(email) > 320:
        raise ValidationFailed("enter your e-mail address", field="email")
    members = select(Member.account_id).where(func.lower(Member.email) == email)
    accounts = session.exec(select(Account).where(or_(func.lower(Account.email) == email, Account.id.in_(members))).order_by(Account.id)).all()
    links = []
    for account in accounts:
        recent = session.exec(
            select(SignInLink.id).where(
                SignInLink.account_id == account.id, SignInLink.email == email, SignInLink.created_at > at - LINK_INTERVAL
            )
        ).first()
        if recent is not None:
            continue
        token = secrets.token_urlsafe(32)
        session.add(SignInLink(token_hash=token_hash(token), account_id=account.id, email=email, created_at=at, expires_at=at + LINK_TIME))
        links.append(Link(account.id, account.name, email, token))
    session.flush()
    return links


def redeem_link(session: Session, token: str, *, at: datetime) -> tuple[str, BrowserSession] | None:
    """A portal session for a link that is unused and not expired, which is used up by it;
    None for any other token."""
    link = session.exec(select(SignInLink).where(SignInLink.token_hash == token_hash(token)).with_for_update()).first()
    if link is None or link.used_at is not None or at >= link.expires_at:
        return None
    link.used_at = at
    session.add(link)
    return _start(session, "portal", email=link.email, account_id=link.account_id, at=at, lasting=PORTAL_SESSION_TIME)
