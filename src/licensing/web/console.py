"""The operator console: sign-in, sign-out and the dashboard; the other pages are in
``web.console_*`` modules, each a router of its own (``routers``)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import Request
from sqlmodel import select

from licensing import clock
from licensing.api.routers import invoices as invoices_api
from licensing.api.routers import reports as reports_api
from licensing.config import get_settings
from licensing.db.unit_of_work import run
from licensing.reports import expiring
from licensing.scheduler.models import JobRun
from licensing.web import billing
from licensing.web.calls import account_names, allowed, call
from licensing.web.pages import page_router, see_other
from licensing.web.render import page
from licensing.web.sessions import (
    CONSOLE_COOKIE,
    ConsoleVisitor,
    Form,
    caller_of,
    check_form_token,
    database_of,
    form_token,
    remember_form_token,
    set_cookie,
    signed_out,
)
from licensing.web.users import sign_in

router = page_router("/console")


def _next(target: str | None) -> str:
    """Where to go after signing in: a console page of this site, never elsewhere."""
    if target and target.startswith("/console") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return "/console"


@router.get("/login")
def login_page(request: Request, next: str | None = None):  # noqa: A002 - the query parameter's name
    token = form_token(request)
    response = page(request, "console/login.html", title="Sign in", form_token=token, next=_next(next), email="", message=None)
    remember_form_token(response, token, "/console")
    return response


@router.post("/login")
def login(request: Request, form: Form):
    check_form_token(request, form)
    email, password = str(form.get("email", ""))[:320], str(form.get("password", ""))[:1000]
    outcome = run(database_of(request), lambda session: sign_in(session, email=email, password=password, at=clock.now()))
    if outcome.token is None:
        token = form_token(request)
        if outcome.locked_until is not None:
            message, status = "Too many failed sign-ins: this user is locked out for 15 minutes. Try again later.", 429
        else:
            message, status = "Wrong e-mail or password.", 401
        response = page(
            request, "console/login.html", status_code=status, title="Sign in", form_token=token, next=_next(form.get("next")), email=email,
            message=message,
        )
        remember_form_token(response, token, "/console")
        return response
    response = see_other(_next(form.get("next")))
    set_cookie(response, CONSOLE_COOKIE, outcome.token, path="/console")
    return response


@router.post("/logout")
def logout(request: Request, visitor: ConsoleVisitor):
    return signed_out(request, visitor, cookie=CONSOLE_COOKIE, path="/console", then="/console/login")


@router.get("")
def dashboard(request: Request, visitor: ConsoleVisitor):
    caller, database = caller_of(visitor), database_of(request)
    now = clock.now()
    today = clock.local_date(now, get_settings().zone)
    figures = {}
    if allowed(reports_api.liability_report, caller):
        figures["liability"] = call(reports_api.liability_report, caller, database)["currencies"]
        figures["revenue"] = call(reports_api.revenue_report, caller, database, start=today.replace(day=1).isoformat(), end=today.isoformat())
        figures["receivables"] = call(reports_api.receivables_report, caller, database)["currencies"]
        with database.read() as session:
            figures["expiring"] = expiring(session, now, now + timedelta(days=30))
    if allowed(invoices_api.list_invoices, caller):
        figures["overdue"] = call(invoices_api.list_invoices, caller, database, overdue=True, limit=10)
        figures["names"] = account_names(database, {invoice["account_id"] for invoice in figures["overdue"]["items"]})
        figures["drafts"] = call(invoices_api.list_invoices, caller, database, status="draft", limit=1)
    with database.read() as session:
        scheduled = session.exec(select(JobRun).where(JobRun.name == "billing-run")).first()
    return page(
        request, "console/dashboard.html", visitor=visitor, section="Dashboard", title="Dashboard", figures=figures, scheduled=scheduled,
        console_run=billing.latest(request.app), today=today,
    )
