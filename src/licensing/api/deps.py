"""Dependencies: the database, the caller's API key and role, idempotent writes, pagination."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from licensing import clock
from licensing.api.errors import Forbidden, Unauthorized
from licensing.auth.models import IdempotencyRecord
from licensing.auth.services import authenticate, hash_key
from licensing.db import Database
from licensing.errors import IdempotencyConflict, ValidationFailed

bearer = HTTPBearer(auto_error=False, description="An API key made with `licensing api-key create`")


def get_database(request: Request) -> Database:
    return request.app.state.database


DatabaseDep = Annotated[Database, Depends(get_database)]


@dataclass(frozen=True, slots=True)
class Caller:
    api_key_id: int
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"api-key:{self.name}"


class KeyCache:
    """Hash -> caller, so that a request does not read the key table each time (keys are rarely
    created and revocation is not exposed yet; the cache lives as long as the app)."""

    def __init__(self) -> None:
        self._callers: dict[str, Caller] = {}

    def lookup(self, database: Database, secret: str) -> Caller | None:
        digest = hash_key(secret)
        caller = self._callers.get(digest)
        if caller is None:
            with database.read() as session:
                key = authenticate(session, secret)
                if key is None:
                    return None
                caller = Caller(key.id, key.name, key.role)
            self._callers[digest] = caller
        return caller


def require(*roles: str) -> Callable[..., Caller]:
    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Caller:
        if credentials is None or not credentials.credentials:
            raise Unauthorized("an Authorization: Bearer <api key> header is required")
        caller = request.app.state.keys.lookup(request.app.state.database, credentials.credentials)
        if caller is None:
            raise Unauthorized("unknown API key")
        if caller.role not in roles:
            raise Forbidden(f"role {caller.role!r} may not do this (needs {' or '.join(roles)})")
        return caller

    return dependency


ReadAny = Annotated[Caller, Depends(require("admin", "billing", "bookings", "read"))]
ReadBooks = Annotated[Caller, Depends(require("admin", "billing", "read"))]
Bookings = Annotated[Caller, Depends(require("admin", "billing", "bookings"))]
Billing = Annotated[Caller, Depends(require("admin", "billing"))]
Admin = Annotated[Caller, Depends(require("admin"))]

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def write(
    database: Database,
    action: Callable[[Session], tuple[int, Any]],
    *,
    caller: Caller | None = None,
    request: Request | None = None,
    idempotency_key: str | None = None,
    body: Any = None,
) -> JSONResponse:
    """Run ``action`` in one write transaction and answer with what it returns.

    With an ``Idempotency-Key`` the first response is stored in the same transaction; a repeat
    with the same key and body returns it, another body is ``idempotency_conflict``."""
    if not idempotency_key:
        with database.write() as session:
            status, payload = action(session)
        return JSONResponse(jsonable_encoder(payload), status_code=status)

    route = f"{request.method} {request.scope['route'].path}"
    request_hash = hashlib.sha256(
        json.dumps({"path": request.url.path, "body": jsonable_encoder(body)}, sort_keys=True).encode()
    ).hexdigest()
    for _attempt in range(2):
        try:
            with database.write() as session:
                stored = _stored_response(session, caller.api_key_id, route, idempotency_key, request_hash)
                if stored is not None:
                    return stored
                status, payload = action(session)
                payload = jsonable_encoder(payload)
                session.add(
                    IdempotencyRecord(
                        api_key_id=caller.api_key_id, route=route, key=idempotency_key, request_hash=request_hash,
                        status_code=status, response_body=json.dumps(payload), created_at=clock.now(),
                    )
                )
            return JSONResponse(payload, status_code=status)
        except IntegrityError:
            continue  # a concurrent request with the same key won: answer with its response
    raise IdempotencyConflict("a request with this Idempotency-Key is being processed; retry")


def _stored_response(session: Session, api_key_id: int, route: str, key: str, request_hash: str) -> JSONResponse | None:
    record = session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.route == route, IdempotencyRecord.key == key
        )
    ).one_or_none()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was used with another request")
    return JSONResponse(json.loads(record.response_body), status_code=record.status_code, headers={"Idempotent-Replayed": "true"})


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    after: int | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: Annotated[str | None, Query(max_length=40)] = None
) -> PageParams:
    if cursor is not None and not (cursor.isdigit() and len(cursor) < 19):
        raise ValidationFailed("cursor is not one this API gave", field="cursor")
    return PageParams(limit, int(cursor) if cursor is not None else None)


Pagination = Annotated[PageParams, Depends(page_params)]


def paginate(session: Session, statement, id_column, params: PageParams, present: Callable[[Any], dict]) -> dict:
    """Keyset pagination by id: ``{"items": [...], "next_cursor": ...}``."""
    if params.after is not None:
        statement = statement.where(id_column > params.after)
    rows = session.exec(statement.order_by(id_column).limit(params.limit + 1)).all()
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    return {"items": [present(row) for row in rows], "next_cursor": str(rows[-1].id) if more and rows else None}


def mail_approved_documents(database: Database) -> None:
    """Once an approval has committed: send its mail now, in the background (the scheduler's
    deliveries job retries whatever this does not send)."""
    from licensing.config import get_settings
    from licensing.documents.delivery import send_in_background

    if get_settings().mail_on_approval:
        send_in_background(database)
