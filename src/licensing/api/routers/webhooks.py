"""Webhooks and the event log (SPEC 9): where events go, and what became of each."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field, StringConstraints
from sqlmodel import col, select

from licensing import clock
from licensing.api import responses as docs
from licensing.api.deps import (
    Billing,
    DatabaseDep,
    Pagination,
    ReadAllBooks,
    paginate,
    write,
)
from licensing.api.presenters import sid
from licensing.api.schemas import Input, instant_text
from licensing.errors import ValidationFailed
from licensing.events import Event
from licensing.webhooks.models import Webhook, WebhookDelivery
from licensing.webhooks.services import (
    EVENT_TYPES,
    delete_webhook,
    event_types_of,
    register_webhook,
)

router = APIRouter(prefix="/api/v1", tags=["webhooks"])

EventType = Annotated[str, StringConstraints(min_length=1, max_length=60)]
# RFC 3339: a date, "T" (or a space, as RFC 3339 allows), a time, and Z or an offset.
_INSTANT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$")


class WebhookIn(Input):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES) + 1)]


def present_webhook(webhook: Webhook, secret: str | None = None) -> dict:
    body = {
        "id": sid(webhook.id), "url": webhook.url, "events": event_types_of(webhook),
        "created_at": instant_text(webhook.created_at), "deleted_at": instant_text(webhook.deleted_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def present_delivery(delivery: WebhookDelivery) -> dict:
    return {
        "webhook_id": sid(delivery.webhook_id), "status": delivery.status, "attempts": delivery.attempts,
        "last_error": delivery.last_error, "last_status_code": delivery.last_status_code,
        "next_attempt_at": instant_text(delivery.next_attempt_at), "delivered_at": instant_text(delivery.delivered_at),
    }


@router.post(
    "/webhooks",
    status_code=201,
    summary="Register a webhook",
    description=(
        'Register a URL for events of the given types (or `["*"]`); the response alone carries the `secret` that signs '
        "each delivery. A URL that resolves to a loopback, private, link-local, unique-local, unspecified, multicast or"
        " reserved address, or does not resolve, is 422 `webhook_url_forbidden` unless "
        "`LICENSING_WEBHOOK_ALLOWED_NETWORKS` allows it."
    ),
    responses=docs.documented(
        docs.WebhookCreated, "The webhook, with its secret (shown only here).", *docs.AUTH, "webhook_url_forbidden", status=201
    ),
)
def create_webhook(body: WebhookIn, caller: Billing, database: DatabaseDep):
    # The URL's name is resolved (and checked) before the transaction's first statement.
    def action(session):
        webhook, secret = register_webhook(session, url=body.url, events=body.events, now=clock.now())
        return 201, present_webhook(webhook, secret)

    return write(database, action)


@router.get(
    "/webhooks",
    summary="List webhooks",
    description="The webhooks not deleted, never with their secrets.",
    responses=docs.documented(docs.WebhookPage, "A page of webhooks.", *docs.AUTH),
)
def list_webhooks(caller: Billing, database: DatabaseDep, page: Pagination):
    statement = select(Webhook).where(col(Webhook.deleted_at).is_(None))
    with database.read() as session:
        return paginate(session, statement, Webhook.id, page, present_webhook)


@router.delete(
    "/webhooks/{webhook_id}",
    summary="Delete a webhook",
    description="Stop delivering to a webhook; deliveries not made yet are given up (`failed`).",
    responses=docs.documented(docs.Webhook, "The webhook, deleted.", *docs.AUTH, "not_found"),
)
def remove_webhook(webhook_id: str, caller: Billing, database: DatabaseDep):

    def action(session):
        return 200, present_webhook(delete_webhook(session, webhook_id, clock.now()))

    return write(database, action)


@router.get(
    "/events",
    summary="List events",
    description=(
        "The event log (outbox), oldest first, each event with its deliveries to webhooks; `?type=`, `?since=` (RFC "
        "3339)."
    ),
    responses=docs.documented(docs.EventPage, "A page of events.", *docs.AUTH),
)
def list_events(
    caller: ReadAllBooks,
    database: DatabaseDep,
    page: Pagination,
    type: Annotated[str | None, Query(max_length=60)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
):
    if type is not None and type not in EVENT_TYPES:
        raise ValidationFailed(f"unknown event type {type!r} (known: {', '.join(EVENT_TYPES)})", field="type")
    statement = select(Event)
    if type is not None:
        statement = statement.where(Event.type == type)
    if since is not None:
        statement = statement.where(Event.created_at >= _instant(since, "since"))
    with database.read() as session:
        result = paginate(session, statement, Event.id, page, lambda event: event)
        events = result["items"]
        deliveries: dict[int, list[dict]] = {event.id: [] for event in events}
        if events:
            for delivery in session.exec(
                select(WebhookDelivery).where(col(WebhookDelivery.event_id).in_(list(deliveries))).order_by(WebhookDelivery.webhook_id)
            ).all():
                deliveries[delivery.event_id].append(present_delivery(delivery))
    result["items"] = [
        {
            "id": sid(event.id),
            "type": event.type,
            "created_at": instant_text(event.created_at),
            "data": json.loads(event.data),
            "deliveries": deliveries[event.id],
        }
        for event in events
    ]
    return result


def _instant(text: str, field: str) -> datetime:
    if not _INSTANT.match(text):
        raise ValidationFailed(f"{field} must be an RFC 3339 instant with an offset, e.g. 2027-01-01T00:00:00Z", field=field)
    try:
        return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T")).astimezone(UTC)
    except (ValueError, OverflowError):  # no such day, or out of range once in UTC
        raise ValidationFailed(f"{field} is not a valid instant", field=field) from None
