"""API keys (admin only): create, list, revoke. Only the answer that creates a key carries it."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import select

from licensing import clock
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import Admin, DatabaseDep, Pagination, paginate, write
from licensing.api.schemas import ApiKeyIn
from licensing.auth.models import ApiKey
from licensing.auth.services import create_api_key, revoke_api_key

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])


@router.post(
    "", status_code=201,
    summary="Create an API key",
    description=(
        "Admin only. A new key with one `role`, an optional `expires_at` and optional `account_ids` (a bookings or read"
        " key limited to those accounts); the response alone carries its secret (`key`): it is stored only as a hash."
    ),
    responses=docs.documented(docs.ApiKeyCreated, "The key, with its secret (shown only here).", *docs.AUTH, "unknown_reference", status=201),
)
def create_key(body: ApiKeyIn, caller: Admin, database: DatabaseDep):
    now = clock.now()

    def action(session):
        key, secret = create_api_key(
            session, name=body.name, role=body.role, expires_at=body.expires_at, account_ids=body.account_ids, at=now
        )
        return 201, presenters.api_key(key, now, secret)

    return write(database, action)


@router.get(
    "",
    summary="List API keys",
    description="Admin only. Every key, revoked and expired ones too (`status`), never a secret nor its hash.",
    responses=docs.documented(docs.ApiKeyPage, "A page of API keys.", *docs.AUTH),
)
def list_keys(caller: Admin, database: DatabaseDep, page: Pagination):
    now = clock.now()
    with database.read() as session:
        return paginate(session, select(ApiKey), ApiKey.id, page, lambda key: presenters.api_key(key, now))


@router.delete(
    "/{key_id}",
    summary="Revoke an API key",
    description=(
        "Admin only. Revoke a key: refused at once by every worker; revoking it again answers the same (the first "
        "`revoked_at` stays)."
    ),
    responses=docs.documented(docs.ApiKey, "The key, revoked.", *docs.AUTH, "not_found"),
)
def revoke_key(key_id: str, caller: Admin, database: DatabaseDep):
    now = clock.now()
    return write(database, lambda session: (200, presenters.api_key(revoke_api_key(session, key_id, at=now), now)))
