"""One place that turns failures into RFC 9457 problem+json responses with stable codes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from licensing.db import is_outage
from licensing.errors import LicensingError, ValidationFailed

log = logging.getLogger("licensing.api")

STATUS_BY_CODE = {
    "validation_error": 422,
    "unknown_reference": 422,
    "currency_mismatch": 409,
    "not_found": 404,
    "unauthorized": 401,
    "forbidden": 403,
    "insufficient_credits": 409,
    "invoice_not_draft": 409,
    "credits_already_consumed": 409,
    "idempotency_conflict": 409,
    "consumption_reversed": 409,
    "conflict": 409,
    "hold_not_open": 409,
    "einvoice_unavailable": 409,
    "invoice_credited": 409,
    "credit_note_not_draft": 409,
    "webhook_url_forbidden": 422,
    "licence_already_billed": 409,
    "service_already_billed": 409,
    "overpayment": 409,
    "invoice_not_payable": 409,
    "invoice_paid": 409,
    "payment_already_reversed": 409,
    "invalid_statement": 422,
    "account_overdue": 409,
    "period_locked": 409,
    "direct_debit_unavailable": 409,
    "nothing_to_collect": 409,
    "mandate_revoked": 409,
    "database_unavailable": 503,
}

PROBLEM = "application/problem+json"
BODY_NOT_PARSED = "There was an error parsing the body"
RETRY_AFTER_SECONDS = 5


def database_unavailable() -> JSONResponse:
    """503 while the database cannot be reached: the client may try again shortly (the pool
    reconnects by itself once the database is back)."""
    response = problem(
        503, "database_unavailable", "The database cannot be reached",
        "the database cannot be reached at the moment; nothing was written; retry shortly",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def problem(http_status: int, code: str, title: str, detail: str, extra: dict | None = None) -> JSONResponse:
    """An RFC 9457 body; ``extra`` members never replace the standard ones."""
    body = dict(extra or {})
    body.update(
        {"type": f"https://licensing.dev/problems/{code.replace('_', '-')}", "title": title, "status": http_status, "detail": detail, "code": code}
    )
    return JSONResponse(body, status_code=http_status, media_type=PROBLEM)


class Unauthorized(LicensingError):
    code = "unauthorized"
    title = "Missing or unknown API key"


class Forbidden(LicensingError):
    code = "forbidden"
    title = "This key's role does not allow the call"


def install(app: FastAPI) -> None:
    @app.exception_handler(LicensingError)
    async def _business(_request: Request, error: LicensingError):
        status = STATUS_BY_CODE.get(error.code, 409)
        response = problem(status, error.code, error.title, error.detail, error.extra)
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError):
        items = error.errors()
        malformed = next((item for item in items if item.get("type") == "json_invalid"), None)
        if malformed is not None:
            # FastAPI names the character position as if it were a field ("invalid 50").
            where = await _json_position(request, malformed)
            detail = f"malformed JSON{where}: {malformed.get('ctx', {}).get('error', 'not JSON')}"
            return problem(422, "validation_error", "Invalid input", detail, {"errors": [{"field": "body", "message": detail}]})
        errors = [{"field": _field_of(item), "message": item.get("msg", "")} for item in items]
        if any(item.get("type") == "missing" and tuple(item.get("loc", ())) == ("body",) for item in items):
            detail = "the request needs a JSON body (Content-Type: application/json)"
            return problem(422, "validation_error", "Invalid input", detail, {"errors": [{"field": "body", "message": detail}]})
        fields = ", ".join(sorted({e["field"] for e in errors if e["field"]})) or "the request"
        return problem(422, "validation_error", "Invalid input", f"invalid {fields}", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException):
        if error.status_code == 400 and error.detail == BODY_NOT_PARSED:
            # FastAPI's answer to a body that is not text at all (malformed UTF-8): bad input.
            return problem(
                422,
                "validation_error",
                "Invalid input",
                "the request body is not valid UTF-8 JSON",
                {"errors": [{"field": "body", "message": "not valid UTF-8 JSON"}]},
            )
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}.get(error.status_code, "http_error")
        response = problem(error.status_code, code, str(error.detail), str(error.detail))
        response.headers.update(error.headers or {})
        if error.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(OverflowError)
    async def _overflow(_request: Request, error: OverflowError):
        # Dates and instants at the edge of the calendar (year 1 with a positive offset, year
        # 9999 with a negative one) overflow when converted to UTC: bad input, not a crash.
        return problem(422, "validation_error", "Invalid input", "a date or instant is outside the calendar this engine can count with")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception):
        if isinstance(getattr(error, "orig", None), OverflowError):  # an instant bound by the database driver
            return problem(422, "validation_error", "Invalid input", "a date or instant is outside the calendar this engine can count with")
        if is_outage(error):
            log.warning("database unavailable: %s", str(error).splitlines()[0] if str(error) else type(error).__name__)
            return database_unavailable()
        log.exception("unexpected error", exc_info=error)
        return problem(500, "internal_error", "Internal error", "an unexpected error occurred; it has been logged")


def _field_of(item: dict) -> str:
    return ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path", "header"))


async def _json_position(request: Request, item: dict) -> str:
    """" at line L, column C" of a JSON decoding error (its location holds the character offset)."""
    location = item.get("loc", ())
    if len(location) < 2 or not isinstance(location[1], int):
        return ""
    offset = location[1]
    text = (await request.body()).decode("utf-8", errors="replace")[:offset]
    line = text.count("\n") + 1
    column = offset - (text.rfind("\n") + 1) + 1
    return f" at line {line}, column {column}"


async def refuse_unknown_query_parameters(request: Request) -> None:
    """A query parameter the route does not take is a mistake (``/accounts?q=`` on a route
    without ``q`` would otherwise list everyone): 422 naming it. (``async``: no I/O, so no hop
    to the thread pool.)"""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ValidationFailed(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (this route takes: {', '.join(sorted(known)) or 'none'})",
            errors=[{"field": name, "message": "unknown query parameter"} for name in unknown],
        )


def _query_names(route) -> set[str]:
    names = getattr(route, "_licensing_query_names", None)
    if names is None:
        names, pending = set(), [route.dependant]
        while pending:  # the route's own parameters and those of its dependencies
            dependant = pending.pop()
            names.update(parameter.alias for parameter in dependant.query_params)
            pending.extend(dependant.dependencies)
        route._licensing_query_names = names
    return names


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette names only the first route's)."""
    return [
        method
        for method in ("DELETE", "GET", "PATCH", "POST", "PUT")
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.routes)
    ]
