"""The console's accounts: the list (search, a new account) and one account's page with its
credits, people, licences, ledger, invoices, holds and payments, and the changes an operator
makes to it (business units, members, adjustments, top-ups, transfers, reversals).

Every figure is the API's answer (``calls.call``) and every change goes through the API's route
function, so the page refuses what the API refuses, with the same code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import Query, Request

from licensing import clock
from licensing.api.deps import Caller
from licensing.api.errors import Forbidden
from licensing.api.routers import accounts as accounts_api
from licensing.api.routers import catalog as catalog_api
from licensing.api.routers import consumptions as consumptions_api
from licensing.api.routers import credit_notes as corrections_api
from licensing.api.routers import invoices as invoices_api
from licensing.api.routers import licences as licences_api
from licensing.api.routers import payments as payments_api
from licensing.api.schemas import AccountIn, AdjustmentIn, BusinessUnitIn, MemberIn, TopUpIn, TransferIn
from licensing.config import get_settings
from licensing.credits.kinds import LedgerKind
from licensing.db import Database
from licensing.errors import LicensingError, NotFound, ValidationFailed
from licensing.web.calls import allowed, body, call
from licensing.web.pages import page_router, see_other
from licensing.web.render import page, problem_of, refused
from licensing.web.sessions import ConsoleVisitor, Form, caller_of, database_of

router = page_router("/console/accounts")

LIST_TEMPLATE = "console/accounts/list.html"
ACCOUNT_TEMPLATE = "console/accounts/account.html"
SECTION_SIZE = 20  # rows shown of each list on an account's page other than the ledger
LEDGER_KINDS = [kind.value for kind in LedgerKind]

# What a page says after a change (``?done=<key>``): fixed texts, never the query's.
DONE = {
    "created": "Account created.",
    "business-unit": "Business unit added.",
    "member": "Member added.",
    "adjustment": "Credits adjusted.",
    "top-up": "Top-up invoiced.",
    "transfer": "Credits transferred.",
    "reversal": "Consumption reversed: its credits are back.",
}

Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=40)]


# --- The list -----------------------------------------------------------------------------------


def _list_context(request: Request, visitor, q: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    caller, database = caller_of(visitor), database_of(request)
    found = call(accounts_api.list_accounts, caller, database, q=q or None, limit=limit, cursor=cursor)
    return {
        "visitor": visitor, "section": "Accounts", "title": "Accounts", "q": q or "", "accounts": found,
        "may_create": allowed(accounts_api.create_account, caller),
    }


@router.get("")
def account_list(request: Request, visitor: ConsoleVisitor, q: Annotated[str | None, Query(max_length=200)] = None, limit: Limit = 50,
                 cursor: Cursor = None):
    return page(request, LIST_TEMPLATE, entered={"currency": "EUR"}, **_list_context(request, visitor, q, limit, cursor))


@router.post("")
def create_account(request: Request, visitor: ConsoleVisitor, form: Form):
    caller, database = caller_of(visitor), database_of(request)
    fields = {name: form.get(name, "") for name in ("name", "email", "currency", "address", "country", "tax_id")}
    try:
        created = call(accounts_api.create_account, caller, database, body=body(AccountIn, fields))
    except Forbidden:
        raise
    except LicensingError as error:
        return refused(request, LIST_TEMPLATE, error, entered=fields, **_list_context(request, visitor, None, 50, None))
    return see_other(f"/console/accounts/{created['id']}?done=created")


# --- One account ----------------------------------------------------------------------------------


def _first(route: Callable, caller: Caller, database: Database, limit: int = SECTION_SIZE, **arguments: Any) -> dict | None:
    """A first page of an API list, or None when the visitor's role may not read it."""
    if not allowed(route, caller):
        return None
    return call(route, caller, database, limit=limit, **arguments)


def _ledger_filters(kind: str | None, since: str | None, until: str | None) -> dict[str, str]:
    """The ledger's API filters from the page's form: a day ``since`` starts at its 00:00, a day
    ``until`` is included (the API's ``until`` is the start of the next day), in the operator's zone."""
    zone = get_settings().zone
    filters: dict[str, Any] = {}
    if kind:
        filters["kind"] = kind
    for name, value, instant_of in (("since", since, clock.start_of_day), ("until", until, clock.end_of_day)):
        if value:
            try:
                day = date.fromisoformat(value)
            except ValueError:
                raise ValidationFailed(f"{name} must be a date written YYYY-MM-DD", field=name) from None
            filters[name] = instant_of(day, zone)
    return filters


def _account_context(request: Request, visitor, account_id: str, ledger_query: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything an account's page shows, read from the API as the visitor. An unknown account
    is the API's ``not_found`` (shown on the error page)."""
    caller, database = caller_of(visitor), database_of(request)
    account = call(accounts_api.get_account, caller, database, account_id=account_id)
    account_id = account["id"]
    query = ledger_query or {}
    ledger, ledger_problem = {"items": [], "next_cursor": None}, None
    try:
        filters = _ledger_filters(query.get("kind"), query.get("since"), query.get("until"))
        ledger = call(accounts_api.list_ledger, caller, database, account_id=account_id, limit=query.get("limit", 50),
                      cursor=query.get("cursor"), **filters)
    except ValidationFailed as error:  # a filter the API refuses: the page, with the refusal beside the ledger
        ledger_problem = problem_of(error)
    may_reverse = allowed(consumptions_api.reverse, caller)
    consumptions = {}
    if may_reverse:
        # The status of each consumption on this page of the ledger, as the API tells it.
        for entry in ledger["items"]:
            source = entry["source"]
            if source["type"] == "consumption" and str(source["id"]) not in consumptions:
                consumptions[str(source["id"])] = call(consumptions_api.get_consumption, caller, database, consumption_id=str(source["id"]))
    business_units = call(accounts_api.list_business_units, caller, database, account_id=account_id, limit=500)
    products = []
    if allowed(accounts_api.create_top_up, caller):
        products = [
            product for product in call(catalog_api.list_products, caller, database, limit=500)["items"]
            if product["kind"] == "credit_pack" and product["active"]
        ]
    return {
        "visitor": visitor, "section": "Accounts", "title": account["name"], "account": account,
        "credits": call(accounts_api.get_credits, caller, database, account_id=account_id),
        "business_units": business_units,
        "members": call(accounts_api.list_members, caller, database, account_id=account_id, limit=SECTION_SIZE),
        "licences": _first(licences_api.list_licences, caller, database, account_id=account_id),
        "grants": call(accounts_api.list_grants, caller, database, account_id=account_id, limit=SECTION_SIZE),
        "ledger": ledger, "ledger_problem": ledger_problem, "ledger_kinds": LEDGER_KINDS,
        "ledger_query": {name: query.get(name) or "" for name in ("kind", "since", "until")},
        "consumptions": consumptions,
        "invoices": _first(invoices_api.list_invoices, caller, database, account_id=account_id),
        "holds": call(accounts_api.list_holds, caller, database, account_id=account_id, limit=SECTION_SIZE),
        "payments": _first(payments_api.list_payments, caller, database, account_id=account_id),
        "products": products,
        "may": {
            "add_business_unit": allowed(accounts_api.create_business_unit, caller),
            "add_member": allowed(accounts_api.create_member, caller),
            "adjust": allowed(accounts_api.create_adjustment, caller),
            "top_up": allowed(accounts_api.create_top_up, caller),
            "transfer": allowed(corrections_api.create_transfer, caller),
            "reverse": may_reverse,
        },
        "entered": {}, "action": None,
    }


@router.get("/{account_id}")
def account_page(
    request: Request, visitor: ConsoleVisitor, account_id: str, kind: Annotated[str | None, Query(max_length=30)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None, until: Annotated[str | None, Query(max_length=40)] = None,
    limit: Limit = 50, cursor: Cursor = None, done: Annotated[str | None, Query(max_length=40)] = None,
):
    query = {"kind": kind, "since": since, "until": until, "limit": limit, "cursor": cursor}
    context = _account_context(request, visitor, account_id, query)
    return page(request, ACCOUNT_TEMPLATE, notice=DONE.get(done or ""), **context)


def _act(
    request: Request, visitor, account_id: str, action: str, form: dict[str, Any], route: Callable, change: Callable[[Caller, Database], Any],
):
    """Make a change through the API's ``route``, then show the account again: with
    ``?done=<action>``, or with the API's refusal and the form as it was filled in. A role that
    may not call the route gets the error page (403) before its form is even read."""
    caller = caller_of(visitor)
    if not allowed(route, caller):
        raise Forbidden(f"role {caller.role!r} may not do this")
    try:
        change(caller, database_of(request))
    except (Forbidden, NotFound):
        raise
    except LicensingError as error:
        context = _account_context(request, visitor, account_id) | {"entered": form, "action": action}
        return refused(request, ACCOUNT_TEMPLATE, error, **context)
    return see_other(f"/console/accounts/{account_id}?done={action}")


def _fields(form: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: form[name] for name in names if name in form}


def _post(request: Request, visitor, account_id: str, action: str, route: Callable, model: type, fields: dict[str, Any], in_path: bool = True):
    """A form that is one API call: its fields are the body ``model`` of ``route`` (whose path
    names the account when ``in_path``)."""
    arguments = {"account_id": account_id} if in_path else {}
    return _act(request, visitor, account_id, action, fields, route,
                lambda caller, database: call(route, caller, database, body=body(model, fields), **arguments))


@router.post("/{account_id}/business-units")
def add_business_unit(request: Request, visitor: ConsoleVisitor, account_id: str, form: Form):
    return _post(request, visitor, account_id, "business-unit", accounts_api.create_business_unit, BusinessUnitIn, _fields(form, "name"))


@router.post("/{account_id}/members")
def add_member(request: Request, visitor: ConsoleVisitor, account_id: str, form: Form):
    return _post(request, visitor, account_id, "member", accounts_api.create_member, MemberIn, _fields(form, "name", "email"))


@router.post("/{account_id}/adjustments")
def adjust_credits(request: Request, visitor: ConsoleVisitor, account_id: str, form: Form):
    fields = _fields(form, "kind", "credits", "reason", "lifetime", "business_unit_id")
    return _post(request, visitor, account_id, "adjustment", accounts_api.create_adjustment, AdjustmentIn, fields)


@router.post("/{account_id}/top-ups")
def top_up(request: Request, visitor: ConsoleVisitor, account_id: str, form: Form):
    fields = _fields(form, "product_id", "quantity", "business_unit_id", "approve")
    return _post(request, visitor, account_id, "top-up", accounts_api.create_top_up, TopUpIn, fields)


@router.post("/{account_id}/transfers")
def transfer_credits(request: Request, visitor: ConsoleVisitor, account_id: str, form: Form):
    """From this account (and one of its business units, if chosen) to the account given."""
    fields = _fields(form, "to_account_id", "from_business_unit_id", "to_business_unit_id", "credits", "reason")
    return _post(request, visitor, account_id, "transfer", corrections_api.create_transfer, TransferIn, {"from_account_id": account_id, **fields},
                 in_path=False)


@router.post("/{account_id}/reverse")
def reverse_consumption(request: Request, visitor: ConsoleVisitor, account_id: str, form: Form):
    consumption_id = str(form.get("consumption_id", ""))[:40]

    def change(caller: Caller, database: Database) -> None:
        account = call(accounts_api.get_account, caller, database, account_id=account_id)
        consumption = call(consumptions_api.get_consumption, caller, database, consumption_id=consumption_id)
        if consumption["account_id"] != account["id"]:
            raise NotFound(f"consumption {consumption_id} not found on account {account['id']}")
        call(consumptions_api.reverse, caller, database, consumption_id=consumption_id)

    return _act(request, visitor, account_id, "reversal", {"consumption_id": consumption_id}, consumptions_api.reverse, change)
