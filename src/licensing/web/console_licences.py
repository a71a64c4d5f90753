"""The console's licences: the list with a form for a new licence, and one licence with its
contract services and the forms that add a service, update, and terminate it.

Each form is the API's body model (``calls.body``) and each change the API's route function
(``calls.call``), so a refusal is the API's own code, shown on the same page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from licensing.api.routers import accounts as accounts_api
from licensing.api.routers import catalog as catalog_api
from licensing.api.routers import licences as licences_api
from licensing.api.schemas import LicenceIn, LicencePatch, ServiceIn, TerminationIn
from licensing.errors import LicensingError
from licensing.web.calls import allowed, body, call
from licensing.web.pages import page_router, see_other
from licensing.web.render import page as render
from licensing.web.render import refused
from licensing.web.sessions import ConsoleVisitor, Form, caller_of, database_of

router = page_router("/console/licences")

# What a page says after a change (``?done=<key>``); query text is never echoed.
DONE = {
    "created": "The licence was created.",
    "service": "The service was added to the licence.",
    "updated": "The licence was updated.",
    "terminated": "The licence was terminated.",
}
# The API's largest page: the choices of a form's account and product lists.
CHOICES = 500
# Form fields the API wants as JSON integers (a form sends text).
INTEGERS = ("billing_anchor_day",)


def page_query(
    done: Annotated[str | None, Query(max_length=40)] = None, cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> None:
    """The query parameters a page takes besides its own (the app refuses any other, 422): the
    message after a change and the list's page. The views read them from the request."""


# For a page route's ``dependencies``: ``?done=`` and ``?cursor=`` are known query parameters.
PAGE_QUERY = [Depends(page_query)]


def form_values(form: dict[str, Any], integers: tuple[str, ...] = INTEGERS) -> dict[str, Any]:
    """The posted fields as the API's JSON would carry them: whole numbers where the API wants
    integers (anything else is left as text, for the API to refuse naming the field)."""
    values = {name: value.strip() if isinstance(value, str) else value for name, value in form.items()}
    for name in integers:
        if isinstance(values.get(name), str) and values[name].isdigit():
            values[name] = int(values[name])
    return values


def _notice(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done", ""))


def _account_choices(caller, database) -> dict | None:
    """The accounts a new licence may be for, or None when they are too many for a list (the
    form then asks for the account's id)."""
    accounts = call(accounts_api.list_accounts, caller, database, limit=CHOICES)
    return None if accounts["next_cursor"] else accounts


def _list_page(request: Request, visitor, form: dict[str, Any] | None = None, error: LicensingError | None = None):
    caller, database = caller_of(visitor), database_of(request)
    account_id = request.query_params.get("account_id") or None
    licences = call(licences_api.list_licences, caller, database, account_id=account_id, limit=50, cursor=request.query_params.get("cursor"))
    can_create = allowed(licences_api.create_licence, caller)
    context = dict(
        visitor=visitor, section="Licences", title="Licences", licences=licences, account_id=account_id or "", can_create=can_create,
        accounts=_account_choices(caller, database) if can_create else None, values=form or {"account_id": account_id or ""},
        notice=None if error else _notice(request),
    )
    if error is not None:
        return refused(request, "console/licences/list.html", error, **context)
    return render(request, "console/licences/list.html", **context)


@router.get("", dependencies=PAGE_QUERY)
def licences_page(request: Request, visitor: ConsoleVisitor, account_id: Annotated[str | None, Query(max_length=40)] = None):
    return _list_page(request, visitor)


@router.post("")
def create_licence(request: Request, visitor: ConsoleVisitor, form: Form):
    try:
        created = call(licences_api.create_licence, caller_of(visitor), database_of(request), body=body(LicenceIn, form_values(form)))
    except LicensingError as error:
        return _list_page(request, visitor, form, error)
    return see_other(f"/console/licences/{created['id']}?done=created")


def _licence_page(request: Request, visitor, licence_id: str, form: dict[str, Any] | None = None, form_name: str = "",
                  error: LicensingError | None = None):
    caller, database = caller_of(visitor), database_of(request)
    licence = call(licences_api.get_licence, caller, database, licence_id=licence_id)
    services = call(licences_api.list_services, caller, database, licence_id=licence_id, limit=50, cursor=request.query_params.get("cursor"))
    products = call(catalog_api.list_products, caller, database, limit=CHOICES)
    can_change = allowed(licences_api.update_licence, caller)
    business_units = call(accounts_api.list_business_units, caller, database, account_id=licence["account_id"], limit=CHOICES)
    context = dict(
        visitor=visitor, section="Licences", title=f"Licence {licence['id']}", licence=licence, services=services,
        products=products["items"], products_by_id={product["id"]: product for product in products["items"]},
        business_units=business_units["items"], can_change=can_change, form_name=form_name, values=form or {},
        notice=None if error else _notice(request),
    )
    if error is not None:
        return refused(request, "console/licences/licence.html", error, **context)
    return render(request, "console/licences/licence.html", **context)


@router.get("/{licence_id}", dependencies=PAGE_QUERY)
def licence_page(request: Request, visitor: ConsoleVisitor, licence_id: str):
    return _licence_page(request, visitor, licence_id)


def _change(request: Request, visitor, licence_id: str, form: dict[str, Any], form_name: str, done: str, action):
    """Run ``action`` (an API call); on success back to the licence with ``done``, on a refusal
    the licence page again with the refusal and the form as it was filled in."""
    try:
        action(caller_of(visitor), database_of(request))
    except LicensingError as error:
        return _licence_page(request, visitor, licence_id, form, form_name, error)
    return see_other(f"/console/licences/{licence_id}?done={done}")


@router.post("/{licence_id}/services")
def add_service(request: Request, visitor: ConsoleVisitor, form: Form, licence_id: str):
    return _change(
        request, visitor, licence_id, form, "service", "service",
        lambda caller, database: call(licences_api.add_service, caller, database, licence_id=licence_id, body=body(ServiceIn, form_values(form))),
    )


@router.post("/{licence_id}/update")
def update_licence(request: Request, visitor: ConsoleVisitor, form: Form, licence_id: str):
    def action(caller, database):
        values = form_values(form)
        open_ended = values.pop("open_ended", "") == "true"
        changes = body(LicencePatch, values).model_dump(exclude_unset=True)
        if open_ended:  # an empty field means "left out": clearing the end date is said in so many words
            changes["end_date"] = None
        return call(licences_api.update_licence, caller, database, licence_id=licence_id, body=LicencePatch.model_validate(changes))

    return _change(request, visitor, licence_id, form, "update", "updated", action)


@router.post("/{licence_id}/terminate")
def terminate_licence(request: Request, visitor: ConsoleVisitor, form: Form, licence_id: str):
    return _change(
        request, visitor, licence_id, form, "terminate", "terminated",
        lambda caller, database: call(licences_api.terminate, caller, database, licence_id=licence_id, body=body(TerminationIn, form_values(form))),
    )
