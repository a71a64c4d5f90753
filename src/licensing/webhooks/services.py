"""Webhooks (SPEC 9): the events of the outbox, delivered to operator-registered URLs.

An event reaches a webhook in three steps, each safe to run twice and from several processes:

1. **Register** (``register_webhook``): the URL, the event types it wants (or ``*``) and a
   secret made here and shown once. ``after_event_id`` is set to the newest event: only events
   recorded after registration are delivered. A URL whose host is (or resolves to) a
   loopback, private, link-local, unique-local, unspecified, multicast or reserved address is
   refused (``guard``: 422 ``webhook_url_forbidden``) unless the operator allows its network.
2. **Fan out** (``fan_out``): one ``WebhookDelivery`` per webhook and matching event, inserted
   with ``ON CONFLICT DO NOTHING`` on the unique key (webhook, event), so that two schedulers at
   once never make two. ``after_event_id`` doubles as the webhook's cursor: events at or below
   it are dealt with. Event ids are allocated when an event is written but become visible when
   its transaction commits, so on PostgreSQL a lower id can appear after a higher one; the scan
   therefore looks back over the last ``LOOKBACK`` events each time (the anti-join on the
   deliveries skips those already fanned out) and the cursor trails the newest event by that
   much (it moves once it lags by twice as much). A run that finds nothing new reads at most
   ``2 * LOOKBACK`` event ids per webhook, by primary key, and writes nothing. An event that
   commits after more than ``LOOKBACK`` newer events were written by other transactions (and
   fanned out) would be missed: between a use case's insert of its events and its commit,
   other writers would have to record a thousand events.
3. **Deliver** (``deliver_due``), one delivery at a time: claim it in a short write transaction
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's write lock elsewhere) with a lease in
   ``claimed_until``; POST it outside any transaction; record the outcome in a second short
   transaction. A 2xx is ``delivered`` (never sent again); anything else (another status, a
   timeout, a refused connection) counts an attempt and pushes the next one back 10 s, 20 s,
   40 s ... (at most an hour); after ``MAX_ATTEMPTS`` failures the delivery is ``failed``.
   The POST goes only to addresses the guard checks again at that moment, and ends by the
   delivery's wall-clock deadline (``transport``). The recorded error says no more than the
   status class (``HTTP 4xx``), ``unreachable`` (refused, timed out, past the deadline, DNS or
   TLS failure) or ``forbidden address``: never the system's words, which would tell a caller
   of ``/events`` which ports answer on which hosts.

The request is ``POST <url>`` with the JSON body ``{"id", "type", "created_at", "data"}`` and
the header ``Licensing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, keyed
with the secret's UTF-8 bytes; receivers check it with ``verify`` (or its few lines in their own
language) and refuse stale timestamps. Redirects are not followed (a 3xx is a failure).
Delivery is at least once: a sender that dies after the receiver answered and before step 3
leaves the delivery to be sent again once its lease runs out; receivers deduplicate with the
event id (``Licensing-Event-Id``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from licensing import __version__, clock
from licensing.config import Settings, get_settings
from licensing.db import Database
from licensing.db.bulk import insert_new
from licensing.db.repository import get_or_404, lock
from licensing.errors import NotFound, ValidationFailed
from licensing.events import Event, worker
from licensing.events.worker import describe
from licensing.webhooks import guard
from licensing.webhooks.models import Webhook, WebhookDelivery
from licensing.webhooks.transport import Sender

log = logging.getLogger("licensing.webhooks")

# Every type the engine records (API.md's list, plus adjustments and transfers).
EVENT_TYPES = (
    "invoice.generated", "invoice.approved", "invoice.voided", "invoice.sent",
    "credit_note.approved",
    "credits.granted", "credits.consumed", "credits.reversed", "credits.expired", "credits.expiring",
    "credits.adjusted", "credits.transferred",
    "licence.renewed", "licence.terminated",
    "billing.failed", "renewal.failed",
    "payment.received", "payment.reversed", "invoice.paid", "invoice.overdue", "invoice.reminded", "bank_statement.imported",
    "mandate.created", "mandate.revoked", "direct_debit.created",
)
ALL = "*"
URL_LENGTH = 2000  # the column's length
DEFAULT_TIMEOUT = timedelta(seconds=10)  # per network operation (each read, each write ...)
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=10)
LAST_RETRY = timedelta(hours=1)
# How long a sender has to POST one delivery before others may take it over (at least this,
# and at least a few times the request timeout).
CLAIM_TIME = timedelta(minutes=5)
# How far behind the newest event each fan-out looks for events committed late (see above).
LOOKBACK = 1000
FAN_OUT_LIMIT = 1000  # deliveries made per webhook and run; the next run makes the rest
SIGNATURE_HEADER = "Licensing-Signature"


# -- registering ------------------------------------------------------------------------------


def register_webhook(
    session: Session, *, url: str, events: list[str], now: datetime, settings: Settings | None = None
) -> tuple[Webhook, str]:
    """A new webhook and its secret (the only time the secret is handed out)."""
    url = valid_url(url)
    types = valid_event_types(events)
    # Resolving the host comes last (the cheap checks answer first) and before the session's
    # first statement, so that no transaction (nor SQLite's write lock) waits on DNS.
    guard.check_url(url, settings=settings)
    newest = session.exec(select(func.max(Event.id))).one()
    secret = secrets.token_urlsafe(32)
    webhook = Webhook(url=url, events=json.dumps(types), secret=secret, after_event_id=newest or 0, created_at=now)
    session.add(webhook)
    session.flush()
    return webhook, secret


def delete_webhook(session: Session, webhook_id: int | str, now: datetime) -> Webhook:
    """Stop delivering to a webhook: it is marked deleted, and its deliveries not yet made are
    ``failed`` ("webhook deleted") so that none of them is sent."""
    webhook = get_or_404(session, Webhook, webhook_id, "webhook")
    webhook = lock(session, Webhook, webhook.id, "webhook")
    if webhook.deleted_at is not None:
        raise NotFound(f"webhook {webhook_id} does not exist")
    webhook.deleted_at = now
    session.add(webhook)
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.status == "pending")
        .values(status="failed", last_error="webhook deleted", claimed_until=None)
    )
    return webhook


def event_types_of(webhook: Webhook) -> list[str]:
    return json.loads(webhook.events)


def valid_url(url: Any) -> str:
    """An absolute http(s) URL with a host, at most 2,000 characters, or ``ValidationFailed``."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationFailed("url is required", field="url")
    url = url.strip()
    if len(url) > URL_LENGTH:
        raise ValidationFailed(f"url is longer than {URL_LENGTH} characters", field="url")
    try:
        url.encode()
    except UnicodeEncodeError:
        raise ValidationFailed("url is not valid UTF-8", field="url") from None
    if any(character.isspace() or ord(character) < 32 or ord(character) == 127 for character in url):
        raise ValidationFailed("url must not contain spaces or control characters", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise ValidationFailed("url is not a valid URL", field="url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationFailed("url must start with http:// or https://", field="url")
    if not parts.hostname:
        raise ValidationFailed("url must name a host", field="url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationFailed("url must not carry credentials (user:password@): deliveries are signed instead", field="url")
    try:
        httpx.URL(url)  # what the sender will parse: a host it cannot encode is refused now
    except (httpx.InvalidURL, ValueError):
        raise ValidationFailed("url is not a valid URL", field="url") from None
    return url


def valid_event_types(events: Any) -> list[str]:
    """The types asked for, in the order given without repeats; ``["*"]`` for every type."""
    if not isinstance(events, list) or not events:
        raise ValidationFailed("events must list at least one event type, or \"*\" for all", field="events")
    unknown = [event for event in events if not isinstance(event, str) or (event != ALL and event not in EVENT_TYPES)]
    if unknown:
        raise ValidationFailed(
            f"unknown event types: {', '.join(map(repr, unknown))} (known: {', '.join(EVENT_TYPES)}, or \"*\")",
            field="events", known=list(EVENT_TYPES),
        )
    if ALL in events:
        return [ALL]
    return list(dict.fromkeys(events))


# -- fanning out ------------------------------------------------------------------------------


def fan_out(database: Database, *, now: datetime, limit: int = FAN_OUT_LIMIT) -> int:
    """Queue a delivery for each active webhook and each matching event not queued yet (at most
    ``limit`` per webhook in one run); returns how many were queued."""
    with database.read() as session:
        webhook_ids = list(session.exec(select(Webhook.id).where(col(Webhook.deleted_at).is_(None)).order_by(Webhook.id)).all())
    return sum(_fan_out_webhook(database, webhook_id, now=now, limit=limit) for webhook_id in webhook_ids)


def _fan_out_webhook(database: Database, webhook_id: int, *, now: datetime, limit: int) -> int:
    with database.read() as session:
        webhook = session.get(Webhook, webhook_id)
        if webhook is None or webhook.deleted_at is not None:
            return 0
        newest = session.exec(select(func.max(Event.id))).one() or 0
        event_ids = _missing_events(session, webhook, newest, limit)
    # Move the cursor only when this run saw every missing event below it, and only when it has
    # fallen well behind (so that a quiet run writes nothing).
    cursor = newest - LOOKBACK
    move_cursor = len(event_ids) < limit and cursor >= webhook.after_event_id + LOOKBACK
    if not event_ids and not move_cursor:
        return 0
    with database.write() as session:
        webhook = lock(session, Webhook, webhook_id, "webhook")  # queues behind a concurrent delete
        if webhook.deleted_at is not None:
            return 0
        queued = 0
        if event_ids:
            rows = [
                {
                    "webhook_id": webhook_id, "event_id": event_id, "status": "pending", "attempts": 0, "last_error": None,
                    "last_status_code": None, "next_attempt_at": now, "claimed_until": None, "delivered_at": None, "created_at": now,
                }
                for event_id in event_ids
            ]
            queued = insert_new(session, WebhookDelivery.__table__, rows, unique=["webhook_id", "event_id"])
        if move_cursor and cursor > webhook.after_event_id:
            webhook.after_event_id = cursor
            session.add(webhook)
    return queued


def _missing_events(session: Session, webhook: Webhook, newest: int, limit: int) -> list[int]:
    """Ids of the events above the webhook's cursor (up to ``newest``) that it wants and has no
    delivery for."""
    types = event_types_of(webhook)
    delivered = select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.event_id == Event.id)
    statement = select(Event.id).where(Event.id > webhook.after_event_id, Event.id <= newest, ~delivered.exists())
    if ALL not in types:
        statement = statement.where(col(Event.type).in_(types))
    return list(session.exec(statement.order_by(Event.id).limit(limit)).all())


# -- delivering -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookRun:
    delivered: int = 0
    retried: int = 0  # failed this run, to be tried again
    failed: int = 0  # given up on this run (status ``failed``)

    def __str__(self) -> str:
        return f"{self.delivered} delivered, {self.retried} to retry, {self.failed} failed"


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: int
    claimed_until: datetime
    url: str
    secret: str
    event_id: int
    event_type: str
    body: bytes


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 10 seconds, then doubling (20, 40,
    80 ...), never more than an hour."""
    if attempts >= 10:  # 10 s * 2**9 is already past the hour
        return LAST_RETRY
    return min(FIRST_RETRY * 2 ** (attempts - 1), LAST_RETRY)


def deliver_due(
    database: Database, *, now: datetime, settings: Settings | None = None, limit: int = 100, timeout: timedelta = DEFAULT_TIMEOUT,
    deadline: timedelta | None = None, budget: timedelta | None = None,
) -> WebhookRun:
    """POST up to ``limit`` due deliveries, one at a time, oldest event first, through the
    delivery worker (``events.worker``: claim, send, record). A failure is counted and retried
    later; nothing here raises for a receiver's fault.

    Each POST ends by ``deadline`` (default: the setting ``webhook_deadline_seconds``), each of
    its network operations by ``timeout`` as well. With a ``budget``, no delivery is claimed once
    the run has lasted that long (the run then ends by ``budget + deadline``)."""
    settings = settings or get_settings()
    max_attempts = max(1, int(getattr(settings, "webhook_max_attempts", MAX_ATTEMPTS)))
    if deadline is None:
        deadline = settings.webhook_deadline
    deadline = max(deadline, timedelta(milliseconds=1))
    headers = {"User-Agent": f"licensing/{__version__} (webhooks)"}
    with Sender(allowed=guard.allowed_by(settings), deadline=deadline, timeout=timeout, headers=headers) as sender:
        channel = webhook_channel(sender, max_attempts=max_attempts, lease=max(CLAIM_TIME, 4 * max(timeout, deadline)))
        run = worker.work(database, channel, now=now, limit=limit, budget=budget)
    return WebhookRun(delivered=run.done, retried=run.retried, failed=run.failed)


def webhook_channel(sender: Sender, *, max_attempts: int, lease: timedelta) -> worker.Channel:
    """Webhook deliveries as the worker sends them: of active webhooks, oldest event first."""

    def prepare(session: Session, delivery: WebhookDelivery) -> Claim:
        webhook = session.get(Webhook, delivery.webhook_id)
        event = session.get(Event, delivery.event_id)
        return Claim(
            delivery_id=delivery.id, claimed_until=delivery.claimed_until, url=webhook.url, secret=webhook.secret,
            event_id=event.id, event_type=event.type, body=delivery_body(event),
        )

    def send(claim: Claim, at: datetime) -> int | worker.Failure:
        status_code, error = post(sender, claim, at=at)
        return status_code if error is None else worker.Failure(error, status_code)

    def on_done(_session, delivery: WebhookDelivery, _claim, status_code: int | None, at: datetime) -> None:
        delivery.delivered_at, delivery.last_status_code = at, status_code

    def on_failure(delivery: WebhookDelivery, failure: worker.Failure) -> None:
        delivery.last_status_code = failure.status_code

    return worker.Channel(
        name="webhook delivery", table=WebhookDelivery, done="delivered", log=log, max_attempts=max_attempts, retry_delay=retry_delay,
        lease_until=lambda at: at + lease, prepare=prepare, send=send, on_done=on_done, on_failure=on_failure,
        order=(WebhookDelivery.event_id,),
        filters=(col(WebhookDelivery.webhook_id).in_(select(Webhook.id).where(col(Webhook.deleted_at).is_(None))),),
    )


def post(sender: Sender, claim: Claim, *, at: datetime) -> tuple[int | None, str | None]:
    """Send one delivery: (status code or None, None when it was accepted or else what went
    wrong, in the words ``/events`` may show: ``HTTP 5xx``, ``unreachable``, ``forbidden address``).
    The details go to the log only."""
    timestamp = int(at.timestamp())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: f"t={timestamp},v1={sign(claim.secret, timestamp, claim.body)}",
        "Licensing-Event-Id": str(claim.event_id),
        "Licensing-Event-Type": claim.event_type,
    }
    try:
        # Not read: a receiver's answer is its status, whatever the size of its body.
        status_code = sender.post(claim.url, claim.body, headers)
    except guard.ForbiddenAddress:
        log.warning(
            "webhook delivery %s (event %s to %s) refused: the host resolves to a forbidden address", claim.delivery_id, claim.event_id, claim.url
        )
        return None, "forbidden address"
    except Exception as error:  # noqa: BLE001 - any failure to deliver is recorded and retried
        log.warning("webhook delivery %s (event %s to %s) failed: %s", claim.delivery_id, claim.event_id, claim.url, describe(error))
        return None, "unreachable"
    if 200 <= status_code < 300:
        return status_code, None
    log.warning("webhook delivery %s (event %s to %s) failed: HTTP %s", claim.delivery_id, claim.event_id, claim.url, status_code)
    return status_code, status_class(status_code)


def status_class(status_code: int) -> str:
    """``HTTP 4xx`` for 404: what a failed delivery's ``last_error`` says of the answer."""
    return f"HTTP {status_code // 100}xx"


def delivery_body(event: Event) -> bytes:
    """The JSON body of an event's delivery (compact, UTF-8): what the signature covers."""
    payload = {"id": str(event.id), "type": event.type, "created_at": event.created_at.isoformat(), "data": json.loads(event.data)}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# -- signatures -------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes | str) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with the secret's UTF-8 bytes."""
    if isinstance(body, str):
        body = body.encode()
    return hmac.new(secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, header: str | None, body: bytes | str, *, tolerance: int | None = 300, now: datetime | None = None) -> bool:
    """Whether ``header`` (a ``Licensing-Signature`` value) signs ``body`` with ``secret``, at a
    timestamp within ``tolerance`` seconds of ``now`` (default: the clock; ``None``: any time).
    Any ``v1`` in the header may match (several appear while a secret is being replaced)."""
    if not header or not isinstance(header, str):
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) < 16:
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if tolerance is not None:
        moment = (now or clock.now()).timestamp()
        if abs(moment - timestamp) > tolerance:
            return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, signature) for signature in signatures)
