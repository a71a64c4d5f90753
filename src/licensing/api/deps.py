"""Dependencies: the database, the caller's API key and role, idempotent writes, pagination."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from licensing import clock
from licensing.api.errors import Forbidden, Unauthorized
from licensing.auth.idempotency import IdempotentRequest, Outcome
from licensing.auth.services import authenticate, scope_of
from licensing.db import Database, WriterBusy
from licensing.db.repository import Model, get_or_404, parse_id
from licensing.db.unit_of_work import run
from licensing.errors import NotFound, ValidationFailed

T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="An API key made with `licensing api-key create`")


# Dependencies that do no I/O are ``async``: FastAPI runs a plain ``def`` dependency in its thread
# pool, and each such hop costs more than the dependency itself.


async def get_database(request: Request) -> Database:
    return request.app.state.database


DatabaseDep = Annotated[Database, Depends(get_database)]


@dataclass(frozen=True, slots=True)
class Caller:
    api_key_id: int
    name: str
    role: str
    # The accounts a ``bookings`` or ``read`` key is limited to; None: every account.
    account_ids: frozenset[int] | None = None
    # Who calls: an API key, a console user or a member on the portal (``web``), in the actor.
    kind: str = "api-key"

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"

    def may_see(self, account_id: int | str | None) -> bool:
        """Whether this key may see the account (a scoped key sees no id that is not one)."""
        return self.account_ids is None or parse_id(account_id) in self.account_ids


def lookup_caller(database: Database, secret: str, at: datetime) -> Caller | None:
    """The caller this secret authenticates at ``at``. The key row is read on every request (one
    query by its unique hash), never cached: a revoked or expired key is refused at once, in
    every worker and process."""
    key = authenticate(database, secret, at)
    if key is None:
        return None
    return Caller(key.id, key.name, key.role, scope_of(key))


async def quick_read(database: Database, read: Callable[..., T], *args: Any) -> T:
    """``read(database, *args)``, a read of one statement on an index (the caller's key, an
    account): on SQLite in the event loop itself (tens of microseconds from a file, and a WAL
    reader never waits on a writer: less than the hop to the thread pool), on PostgreSQL in the
    thread pool (a round trip to a server: the event loop never waits on the network)."""
    if database.is_sqlite:
        return read(database, *args)
    return await run_in_threadpool(read, database, *args)


def require(*roles: str, all_accounts: bool = False) -> Callable[..., Caller]:
    """A caller whose role is one of ``roles``; with ``all_accounts``, not a key limited to some
    accounts (what spans every account, such as reports, is 403 to such a key)."""

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Caller:
        if credentials is None or not credentials.credentials:
            raise Unauthorized("an Authorization: Bearer <api key> header is required")
        caller = await quick_read(request.app.state.database, lookup_caller, credentials.credentials, clock.now())
        if caller is None:
            raise Unauthorized("unknown, revoked or expired API key")
        if caller.role not in roles:
            raise Forbidden(f"role {caller.role!r} may not do this (needs {' or '.join(roles)})")
        if all_accounts and caller.account_ids is not None:
            raise Forbidden("this key is limited to some accounts and may not read across every account")
        return caller

    # Read by the browser pages (``web.calls``), which call the same route functions in process.
    dependency.roles, dependency.all_accounts = roles, all_accounts
    return dependency


ReadAny = Annotated[Caller, Depends(require("admin", "billing", "bookings", "read"))]
ReadBooks = Annotated[Caller, Depends(require("admin", "billing", "read"))]
# Reports and logs across every account: not for a key limited to some accounts.
ReadAllBooks = Annotated[Caller, Depends(require("admin", "billing", "read", all_accounts=True))]
Bookings = Annotated[Caller, Depends(require("admin", "billing", "bookings"))]
Billing = Annotated[Caller, Depends(require("admin", "billing"))]
# Work across every account (a direct-debit collection): not for a key limited to some accounts.
BillingAllAccounts = Annotated[Caller, Depends(require("admin", "billing", all_accounts=True))]
Admin = Annotated[Caller, Depends(require("admin"))]


def check_account(caller: Caller, account_id: int | str, *, missing: str | None = None) -> None:
    """404 for an account outside the key's scope, as for an account that does not exist."""
    if not caller.may_see(account_id):
        raise NotFound(missing or f"account {account_id} does not exist")


def get_owned(session: Session, caller: Caller, model: type[Model], row_id: int | str, what: str) -> Model:
    """The row (consumption, hold, invoice, ...) with this id, or 404: when there is none, and when
    it belongs to an account outside the key's scope, as if it did not exist."""
    row = get_or_404(session, model, row_id, what)
    check_account(caller, row.account_id, missing=f"{what} {row_id} does not exist")
    return row


def check_owner(session: Session, caller: Caller, model: type, row_id: int | str, what: str) -> None:
    """``get_owned`` for a key limited to some accounts; reads nothing for a key that sees every
    account (the use case then answers 404 for a row that does not exist)."""
    if caller.account_ids is not None:
        get_owned(session, caller, model, row_id, what)


def in_scope(statement, caller: Caller, account_column):
    """``statement`` limited to the key's accounts (unchanged for a key that sees every account)."""
    if caller.account_ids is None:
        return statement
    return statement.where(col(account_column).in_(sorted(caller.account_ids)))


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def write(
    database: Database,
    action: Callable[[Session], tuple[int, Any]],
    *,
    caller: Caller | None = None,
    request: Request | None = None,
    idempotency_key: str | None = None,
    body: Any = None,
    wait: bool = True,
) -> JSONResponse:
    """Run ``action`` (the use case and the shape of its answer) as one unit of work
    (``db.unit_of_work.run``) and answer with what it returns.

    With an ``Idempotency-Key`` the first response is stored in the same transaction; a repeat
    with the same key and body returns it, another body is ``idempotency_conflict``. ``wait=False``:
    begin at once or raise ``WriterBusy`` (``write_soon``)."""
    guard = None
    if idempotency_key:
        request_hash = hashlib.sha256(
            json.dumps({"path": request.url.path, "body": jsonable_encoder(body)}, sort_keys=True).encode()
        ).hexdigest()
        guard = IdempotentRequest(
            api_key_id=caller.api_key_id, route=f"{request.method} {request.scope['route'].path}", key=idempotency_key,
            request_hash=request_hash, at=clock.now(),
        )

    def use_case(session: Session) -> Outcome:
        status, payload = action(session)
        return Outcome(status, json_ready(payload))

    outcome = run(database, use_case, idempotency=guard, wait=wait)
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers={"Idempotent-Replayed": "true"} if outcome.replayed else None)


async def write_soon(database: Database, action: Callable[[Session], tuple[int, Any]], **options: Any) -> JSONResponse:
    """``write`` from an async route, for a booking: a unit of work of a few milliseconds that
    queues no mail or other slow work after its commit.

    On SQLite it runs in the event loop itself when the writer is free at once (SQLite takes one
    writer at a time anyway, and the hop to the thread pool and back, with the threads fighting
    for the GIL, cost a booking over HTTP a third of its throughput); when another thread or
    process holds the writer it waits its turn in the thread pool, as any write, so the event
    loop never waits on a lock. On PostgreSQL it runs in the thread pool (round trips to a
    server: the event loop never waits on the network)."""
    if database.is_sqlite:
        try:
            return write(database, action, wait=False, **options)
        except WriterBusy:
            pass
    return await run_in_threadpool(write, database, action, **options)


def json_ready(payload: Any) -> Any:
    """``payload`` in JSON's own types: itself when it is made of them already, as the
    presenters make it (dicts with string keys, lists, strings, integers, booleans, None:
    checked by a walk a tenth of the cost of ``jsonable_encoder``), else ``jsonable_encoder``'s copy,
    with a decimal as a string of its digits (API.md: money, credits and quantities are strings;
    ``jsonable_encoder`` alone would make a ``Decimal`` a JSON number)."""
    return payload if _plain(payload) else jsonable_encoder(payload, custom_encoder=_DECIMAL_AS_TEXT)


_PLAIN = frozenset({str, int, bool, type(None)})
_DECIMAL_AS_TEXT = {Decimal: lambda value: format(value, "f")}


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    if kind is list:
        return all(map(_plain, value))
    return kind in _PLAIN


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    after: int | None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: Annotated[str | None, Query(max_length=40)] = None
) -> PageParams:
    after = parse_id(cursor)
    if cursor is not None and after is None:
        raise ValidationFailed("cursor is not one this API gave", field="cursor")
    return PageParams(limit, after)


Pagination = Annotated[PageParams, Depends(page_params)]


def paginate(session: Session, statement, id_column, params: PageParams, present: Callable[[Any], dict]) -> dict:
    """Keyset pagination by id: ``{"items": [...], "next_cursor": ...}``."""
    if params.after is not None:
        statement = statement.where(id_column > params.after)
    rows = session.exec(statement.order_by(id_column).limit(params.limit + 1)).all()
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    return {"items": [present(row) for row in rows], "next_cursor": str(rows[-1].id) if more and rows else None}


