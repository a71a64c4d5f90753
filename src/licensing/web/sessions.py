"""Browser sessions as FastAPI dependencies: the session cookie, CSRF protection, sign-in redirects.

* The session cookie holds a random token (its hash is the ``BrowserSession`` row): HttpOnly,
  Secure (``LICENSING_SECURE_COOKIES``), SameSite=Lax, limited to ``/console`` or ``/portal``.
* Every POST carries the session's CSRF token, as the form field ``csrf_token`` or, from HTMX,
  the ``X-CSRF-Token`` header; a POST without it, or with another, is refused (403) and does
  nothing. Forms shown before a session exists (sign-in, asking for a link) use a double-submit
  token: a cookie set with the form and the same value in the form.
* A page asked for without a live session redirects to the sign-in page (HTMX: ``HX-Redirect``).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from licensing import clock
from licensing.api.deps import Caller
from licensing.config import get_settings
from licensing.db import Database
from licensing.db.unit_of_work import run
from licensing.web.users import Visitor, sign_out, visitor

CONSOLE_COOKIE = "licensing_console"
PORTAL_COOKIE = "licensing_portal"
FORM_COOKIE = "licensing_form"  # the double-submit token of forms shown before a session


class SignInRequired(Exception):
    def __init__(self, to: str) -> None:
        self.to = to


class CsrfRefused(Exception):
    pass


def database_of(request: Request) -> Database:
    return request.app.state.database


async def form_data(request: Request) -> dict[str, Any]:
    """The posted form's fields (the last value of a repeated one); nothing for a GET."""
    if request.method != "POST":
        return {}
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


Form = Annotated[dict[str, Any], Depends(form_data)]


def _visitor(request: Request, kind: str, cookie: str) -> Visitor | None:
    with database_of(request).read() as session:
        return visitor(session, kind, request.cookies.get(cookie), clock.now())


def _check_csrf(request: Request, form: dict[str, Any], expected: str) -> None:
    if request.method not in ("GET", "HEAD"):
        given = request.headers.get("x-csrf-token") or form.get("csrf_token") or ""
        if not secrets.compare_digest(given.encode(), expected.encode()):
            raise CsrfRefused()


def console_visitor(request: Request, form: Form) -> Visitor:
    """The signed-in console user (and, for a POST, its CSRF token checked)."""
    found = _visitor(request, "console", CONSOLE_COOKIE)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(f"/console/login?next={quote(target, safe='')}" if request.method == "GET" else "/console/login")
    _check_csrf(request, form, found.csrf_token)
    return found


def portal_visitor(request: Request, form: Form) -> Visitor:
    found = _visitor(request, "portal", PORTAL_COOKIE)
    if found is None:
        raise SignInRequired("/portal/sign-in")
    _check_csrf(request, form, found.csrf_token)
    return found


ConsoleVisitor = Annotated[Visitor, Depends(console_visitor)]
PortalVisitor = Annotated[Visitor, Depends(portal_visitor)]


def caller_of(found: Visitor) -> Caller:
    """The API caller a visitor is: a console user with their role, or a member who reads
    their own account only (so the API's scoping answers 404 for any other)."""
    if found.kind == "console":
        return Caller(0, found.email, found.role or "read", kind="console")
    return Caller(0, found.email, "read", frozenset({found.account_id}), kind="portal")


def check_form_token(request: Request, form: dict[str, Any]) -> None:
    """The double-submit check of a form posted before any session (sign-in, asking for a link)."""
    _check_csrf(request, form, request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(8) + "!")


def form_token(request: Request) -> str:
    """The token for a form shown before a session: the browser's, or a new one (set by ``remember_form_token``)."""
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)


def set_cookie(response: Response, name: str, value: str, *, path: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, path=path, max_age=max_age, httponly=True, secure=get_settings().secure_cookies, samesite="lax",
    )


def remember_form_token(response: Response, token: str, path: str) -> None:
    set_cookie(response, FORM_COOKIE, token, path=path)


def signed_out(request: Request, found: Visitor, *, cookie: str, path: str, then: str) -> Response:
    """Sign-out: the session ends (for every copy of its cookie), the cookie is removed, and the
    browser goes to ``then``."""
    run(database_of(request), lambda session: sign_out(session, found.session_id, at=clock.now()))
    response = RedirectResponse(then, status_code=303)
    response.delete_cookie(cookie, path=path)
    return response
