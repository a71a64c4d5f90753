"""The pages call the API's own route functions in process, as the signed-in visitor.

``call(route, caller, database, **arguments)`` checks the route's roles (the same ``require``
dependency the API checks), calls the function with the visitor as its caller, and returns what
the API would answer, as JSON data: so a page shows the API's figures, never its own, and a
change made from a page goes through the very use case an API client's does. A refusal is the
API's ``LicensingError`` with its code, which the page shows."""

from __future__ import annotations

import asyncio
import inspect
import json
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

import anyio.from_thread
from fastapi.encoders import jsonable_encoder
from fastapi.params import Depends as DependsParameter
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from licensing.api.deps import Caller, PageParams
from licensing.api.errors import Forbidden
from licensing.api.routers.reports import account_names as names_of
from licensing.db import Database
from licensing.db.repository import parse_id
from licensing.errors import ValidationFailed


@cache
def _roles(route: Callable) -> tuple[str, tuple[str, ...], bool]:
    """The name of the route's caller parameter, the roles it admits and whether it needs a
    caller that sees every account."""
    hints = typing.get_type_hints(route, include_extras=True)
    for name, hint in hints.items():
        for extra in getattr(hint, "__metadata__", ()):
            if isinstance(extra, DependsParameter) and hasattr(extra.dependency, "roles"):
                return name, extra.dependency.roles, extra.dependency.all_accounts
    raise TypeError(f"{route.__name__} has no caller parameter")


def allowed(route: Callable, caller: Caller) -> bool:
    """Whether the caller's role may call the route (what a page offers)."""
    _name, roles, all_accounts = _roles(route)
    return caller.role in roles and not (all_accounts and caller.account_ids is not None)


def call(route: Callable, caller: Caller, database: Database, **arguments: Any) -> Any:
    """The API's answer to ``route`` called with ``arguments`` by ``caller``: JSON data, or
    the route's own response when it is not JSON (a PDF, a CSV file). ``page`` may be given as
    ``limit`` and ``cursor``."""
    name, roles, all_accounts = _roles(route)
    if caller.role not in roles:
        raise Forbidden(f"role {caller.role!r} may not do this (needs {' or '.join(roles)})")
    if all_accounts and caller.account_ids is not None:
        raise Forbidden("this is not for a visitor limited to some accounts")
    limit, cursor = arguments.pop("limit", 50), arguments.pop("cursor", None)
    given: dict[str, Any] = {name: caller}
    for parameter in inspect.signature(route).parameters.values():
        if parameter.name in given:
            continue
        if parameter.name in arguments:
            given[parameter.name] = arguments.pop(parameter.name)
        elif parameter.name == "database":
            given["database"] = database
        elif parameter.name == "page":
            given["page"] = PageParams(limit, _cursor(cursor))
        elif parameter.name in ("request", "idempotency_key"):
            given[parameter.name] = None
        elif parameter.default is not inspect.Parameter.empty:
            given[parameter.name] = parameter.default.default if isinstance(parameter.default, FieldInfo) else parameter.default
        else:
            raise TypeError(f"{route.__name__} needs {parameter.name}")
    if arguments:
        raise TypeError(f"{route.__name__} takes no {', '.join(arguments)}")
    result = route(**given)
    if inspect.iscoroutine(result):
        result = _finish(result)
    if isinstance(result, Response):
        if result.media_type in ("application/json", None) and not result.headers.get("content-disposition"):
            return json.loads(result.body)
        return result
    return jsonable_encoder(result)


def _finish(coroutine) -> Any:
    """An async route's answer (one that SQLite answers without the thread pool), awaited from
    this page's thread: on the server's event loop when the page runs in its thread pool, else
    on a loop of its own."""
    try:
        return anyio.from_thread.run(_awaited, coroutine)
    except RuntimeError:
        if inspect.getcoroutinestate(coroutine) != inspect.CORO_CREATED:
            raise  # the route's own error
        # Not a worker thread of a running event loop (a page rendered by a test).
        return asyncio.run(_awaited(coroutine))


async def _awaited(coroutine) -> Any:
    return await coroutine


def _cursor(cursor: str | None) -> int | None:
    if cursor in (None, ""):
        return None
    if not str(cursor).isdigit():
        raise ValidationFailed("cursor is not one this page gave", field="cursor")
    return int(cursor)


def body(model: type[BaseModel], form: dict[str, Any]) -> BaseModel:
    """The API's body model from a form's fields (empty fields left out, as if not sent); a
    field the model refuses is a ``validation_error`` naming it, as over the API."""
    values = {name: value for name, value in form.items() if name != "csrf_token" and value not in ("", None)}
    try:
        return model.model_validate(values)
    except ValidationError as error:
        errors = [{"field": ".".join(str(part) for part in item["loc"]) or "body", "message": item["msg"]} for item in error.errors()]
        fields = ", ".join(sorted({item["field"] for item in errors}))
        raise ValidationFailed(f"invalid {fields}", errors=errors) from None


def account_names(database: Database, account_ids: set[str]) -> dict[str, str]:
    """The names of the accounts a page links to, by the API's id (a label beside the id, as
    the reports show them; lists such as invoices carry the id only)."""
    ids = {parse_id(account_id) for account_id in account_ids} - {None}
    with database.read() as session:
        return {str(account_id): name for account_id, name in names_of(session, ids).items()}
