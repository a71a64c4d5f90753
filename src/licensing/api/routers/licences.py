"""Licences and their contract services."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import select

from licensing import clock
from licensing.accounts.models import Account
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import (
    Billing,
    DatabaseDep,
    Pagination,
    ReadBooks,
    get_owned,
    in_scope,
    paginate,
    write,
)
from licensing.api.schemas import (
    LicenceIn,
    LicencePatch,
    ServiceIn,
    ServicePatch,
    TerminationIn,
)
from licensing.db.repository import id_filter
from licensing.licences import services as licences
from licensing.licences.models import ContractService, Licence

router = APIRouter(prefix="/api/v1/licences", tags=["licences"])


@router.post(
    "", status_code=201,
    summary="Create a licence",
    description=(
        "A licence of an account: its term, renewal, billing anchor day and whether its invoices are approved by the "
        "billing run."
    ),
    responses=docs.documented(docs.Licence, "The licence created.", *docs.AUTH, "unknown_reference", status=201),
)
def create_licence(body: LicenceIn, caller: Billing, database: DatabaseDep):
    values = body.model_dump()
    return write(database, lambda s: (201, presenters.licence(licences.create_licence(s, at=clock.now(), **values))))


@router.get(
    "",
    summary="List licences",
    description="Licences, optionally of one `?account_id=`.",
    responses=docs.documented(docs.LicencePage, "A page of licences.", *docs.AUTH),
)
def list_licences(caller: ReadBooks, database: DatabaseDep, page: Pagination, account_id: str | None = None):
    statement = in_scope(select(Licence), caller, Licence.account_id)
    if account_id is not None:
        statement = statement.where(Licence.account_id == id_filter(account_id))
    with database.read() as session:
        return paginate(session, statement, Licence.id, page, presenters.licence)


@router.get(
    "/{licence_id}",
    summary="Get a licence",
    description="One licence.",
    responses=docs.documented(docs.Licence, "The licence.", *docs.AUTH, "not_found"),
)
def get_licence(licence_id: str, caller: ReadBooks, database: DatabaseDep):
    with database.read() as session:
        licence = get_owned(session, caller, Licence, licence_id, "licence")
        return presenters.licence(licence)


@router.patch(
    "/{licence_id}",
    summary="Update a licence",
    description="Change the fields given; a change that would bill billed periods again is 409 `licence_already_billed`.",
    responses=docs.documented(docs.Licence, "The licence as updated.", *docs.AUTH, "not_found", "licence_already_billed"),
)
def update_licence(licence_id: str, body: LicencePatch, caller: Billing, database: DatabaseDep):
    changes = body.model_dump(exclude_unset=True)
    return write(database, lambda s: (200, presenters.licence(licences.update_licence(s, licence_id, **changes))))


@router.post(
    "/{licence_id}/terminate",
    summary="Terminate a licence",
    description=(
        "End the licence after `effective_date` (its last active day, inclusive): its status is `terminated` at once, "
        "and periods up to that date still bill."
    ),
    responses=docs.documented(docs.Licence, "The licence, terminated.", *docs.AUTH, "not_found"),
)
def terminate(licence_id: str, body: TerminationIn, caller: Billing, database: DatabaseDep):
    return write(
        database,
        lambda s: (
            200,
            presenters.licence(licences.terminate_licence(s, licence_id, effective_date=body.effective_date, at=clock.now(), actor=caller.actor)),
        ),
    )


@router.post(
    "/{licence_id}/services",
    status_code=201,
    summary="Add a contract service",
    description=(
        "Bill a product on the licence: `quantity`, `unit_price` (default the product's), `schedule`, dates, business unit, rollover and pro-rating."
    ),
    responses=docs.documented(
        docs.Service, "The contract service added.", *docs.AUTH, "not_found", "unknown_reference", "currency_mismatch", status=201
    ),
)
def add_service(licence_id: str, body: ServiceIn, caller: Billing, database: DatabaseDep):
    values = body.model_dump()

    def action(session):
        service = licences.add_service(session, licence_id, at=clock.now(), **values)
        return 201, presenters.service(service, _currency(session, service.licence_id))

    return write(database, action)


@router.get(
    "/{licence_id}/services",
    summary="List a licence's contract services",
    description="The licence's contract services, paginated.",
    responses=docs.documented(docs.ServicePage, "A page of contract services.", *docs.AUTH, "not_found"),
)
def list_services(licence_id: str, caller: ReadBooks, database: DatabaseDep, page: Pagination):
    with database.read() as session:
        licence = get_owned(session, caller, Licence, licence_id, "licence")
        currency = _currency(session, licence.id)
        return paginate(
            session, select(ContractService).where(ContractService.licence_id == licence.id), ContractService.id, page,
            lambda row: presenters.service(row, currency),
        )


@router.patch(
    "/{licence_id}/services/{service_id}",
    summary="Update a contract service",
    description="Change the fields given; a change that would bill billed lines again is 409 `service_already_billed`.",
    responses=docs.documented(
        docs.Service, "The contract service as updated.", *docs.AUTH, "not_found", "unknown_reference", "service_already_billed"
    ),
)
def update_service(licence_id: str, service_id: str, body: ServicePatch, caller: Billing, database: DatabaseDep):
    changes = body.model_dump(exclude_unset=True)

    def action(session):
        service = licences.update_service(session, licence_id, service_id, **changes)
        return 200, presenters.service(service, _currency(session, service.licence_id))

    return write(database, action)


def _currency(session, licence_id: int) -> str:
    licence = session.get(Licence, licence_id)
    return session.get(Account, licence.account_id).currency
