"""The console's admin pages: webhooks and API keys, for console users of the admin role only.

A secret (a webhook's signing secret, an API key) is shown once, on the page that answers the
form that created it, never in a link or a redirect, and never again."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from licensing.api.errors import Forbidden
from licensing.api.routers import api_keys as api_keys_api
from licensing.api.routers import webhooks as webhooks_api
from licensing.api.schemas import ApiKeyIn
from licensing.errors import LicensingError
from licensing.web.calls import body, call
from licensing.web.console_licences import PAGE_QUERY
from licensing.web.pages import page_router, see_other
from licensing.web.render import page as render
from licensing.web.render import refused
from licensing.web.sessions import ConsoleVisitor, Form, caller_of, database_of
from licensing.webhooks.services import ALL, EVENT_TYPES

router = page_router("/console")

# What a page says after a change (``?done=<key>``); query text is never echoed.
DONE = {
    "deleted": "The webhook was deleted: nothing more is delivered to it.",
    "revoked": "The API key was revoked: it is refused from now on.",
}
ROLES = ("admin", "billing", "bookings", "read")


def _admin(visitor) -> None:
    """Webhooks and keys are the admin's (the API lets a billing key manage webhooks, the
    console keeps both pages to admins)."""
    if visitor.role != "admin":
        raise Forbidden(f"role {visitor.role!r} may not manage webhooks and API keys (needs admin)")


def _shown(request: Request, template: str, error: LicensingError | None, created: dict | None, **context: Any):
    if error is not None:
        return refused(request, template, error, created=None, **context)
    notice = DONE.get(request.query_params.get("done", "")) if created is None else None
    return render(request, template, notice=notice, created=created, **context)


# ---- webhooks --------------------------------------------------------------------------------


def _webhooks_page(request: Request, visitor, form: dict[str, Any] | None = None, error: LicensingError | None = None,
                   created: dict | None = None):
    webhooks = call(webhooks_api.list_webhooks, caller_of(visitor), database_of(request), limit=50, cursor=request.query_params.get("cursor"))
    return _shown(
        request, "console/admin/webhooks.html", error, created, visitor=visitor, section="Webhooks", title="Webhooks", webhooks=webhooks,
        event_types=(ALL, *EVENT_TYPES), values=form or {},
    )


@router.get("/webhooks", dependencies=PAGE_QUERY)
def webhooks_page(request: Request, visitor: ConsoleVisitor):
    _admin(visitor)
    return _webhooks_page(request, visitor)


@router.post("/webhooks")
def register_webhook(request: Request, visitor: ConsoleVisitor, form: Form):
    _admin(visitor)
    # One box per event type, named ``event:<type>`` (a form sends one value per name here).
    events = [event_type for event_type in (ALL, *EVENT_TYPES) if form.get(f"event:{event_type}") == "true"]
    try:
        given = body(webhooks_api.WebhookIn, {"url": str(form.get("url", "")).strip(), "events": events})
        created = call(webhooks_api.create_webhook, caller_of(visitor), database_of(request), body=given)
    except LicensingError as error:
        return _webhooks_page(request, visitor, form, error)
    return _webhooks_page(request, visitor, created=created)


@router.post("/webhooks/{webhook_id}/delete")
def delete_webhook(request: Request, visitor: ConsoleVisitor, webhook_id: str):
    _admin(visitor)
    call(webhooks_api.remove_webhook, caller_of(visitor), database_of(request), webhook_id=webhook_id)
    return see_other("/console/webhooks?done=deleted")


# ---- API keys --------------------------------------------------------------------------------


def _keys_page(request: Request, visitor, form: dict[str, Any] | None = None, error: LicensingError | None = None,
               created: dict | None = None):
    keys = call(api_keys_api.list_keys, caller_of(visitor), database_of(request), limit=50, cursor=request.query_params.get("cursor"))
    return _shown(
        request, "console/admin/api_keys.html", error, created, visitor=visitor, section="API keys", title="API keys", keys=keys,
        roles_options=[(role, role) for role in ROLES], values=form or {},
    )


@router.get("/api-keys", dependencies=PAGE_QUERY)
def api_keys_page(request: Request, visitor: ConsoleVisitor):
    _admin(visitor)
    return _keys_page(request, visitor)


@router.post("/api-keys")
def create_api_key(request: Request, visitor: ConsoleVisitor, form: Form):
    _admin(visitor)
    values = {name: form.get(name, "") for name in ("name", "role", "expires_at")}
    # Account ids separated by commas or spaces; none: every account.
    account_ids = str(form.get("account_ids", "")).replace(",", " ").split()
    if account_ids:
        values["account_ids"] = account_ids
    try:
        created = call(api_keys_api.create_key, caller_of(visitor), database_of(request), body=body(ApiKeyIn, values))
    except LicensingError as error:
        return _keys_page(request, visitor, form, error)
    return _keys_page(request, visitor, created=created)


@router.post("/api-keys/{key_id}/revoke")
def revoke_api_key(request: Request, visitor: ConsoleVisitor, key_id: str):
    _admin(visitor)
    call(api_keys_api.revoke_key, caller_of(visitor), database_of(request), key_id=key_id)
    return see_other("/console/api-keys?done=revoked")
