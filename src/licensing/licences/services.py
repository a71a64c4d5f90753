"""Licences and their contract services."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from licensing.accounts.models import Account, BusinessUnit
from licensing.catalog.models import Product
from licensing.catalog.services import change_product
from licensing.dates import parse_lifetime
from licensing.db.repository import apply, get_or_404, get_reference, lock, patched
from licensing.errors import (
    CurrencyMismatch,
    LicenceAlreadyBilled,
    NotFound,
    ServiceAlreadyBilled,
    UnknownReference,
    ValidationFailed,
)
from licensing.events import record_event
from licensing.licences.models import ContractService, Licence
from licensing.money import check_line_size

LICENCE_FIELDS = ("start_date", "end_date", "auto_renew", "renewal_term", "billing_anchor_day", "auto_approve", "status")
SERVICE_FIELDS = (
    "product_id", "quantity", "unit_price", "schedule", "from_date", "to_date", "business_unit_id",
    "max_rollover", "prorate", "prorate_credits",
)
SCHEDULES = ("one_off", "weekly", "monthly")


def _check_licence(values: dict[str, Any]) -> None:
    start, end = values.get("start_date"), values.get("end_date")
    if start is None:
        raise ValidationFailed("start_date is required", field="start_date")
    if end is not None and end < start:
        raise ValidationFailed("end_date is before start_date", field="end_date")
    anchor = values.get("billing_anchor_day", 1)
    if not isinstance(anchor, int) or not 1 <= anchor <= 31:
        raise ValidationFailed("billing_anchor_day must be between 1 and 31", field="billing_anchor_day")
    if values.get("renewal_term") is not None:
        try:
            parse_lifetime(values["renewal_term"])
        except ValidationFailed as error:
            detail = error.detail.replace("lifetime", "renewal_term", 1)
            raise ValidationFailed(detail, field="renewal_term") from None
    if values.get("status", "active") not in ("active", "terminated", "ended"):
        raise ValidationFailed("status must be active, terminated or ended", field="status")


def create_licence(session: Session, *, account_id: str | int, at: datetime, **values: Any) -> Licence:
    account = get_reference(session, Account, account_id, "account_id")
    values = {key: value for key, value in values.items() if key in LICENCE_FIELDS and value is not None}
    _check_licence(values)
    licence = Licence(account_id=account.id, created_at=at, **values)
    session.add(licence)
    session.flush()
    return licence


def update_licence(session: Session, licence_id: str | int, **changes: Any) -> Licence:
    licence = get_or_404(session, Licence, licence_id, "licence")
    values = patched(licence, LICENCE_FIELDS, changes)
    if values["billing_anchor_day"] is None:
        values["billing_anchor_day"] = licence.billing_anchor_day
    _check_licence(values)
    if values["billing_anchor_day"] != licence.billing_anchor_day and _billed(session, ContractService.licence_id == licence.id):
        # New periods from another anchor would overlap the days already billed (SPEC 2: each
        # day of a service is billed once). A new licence carries the new anchor.
        raise LicenceAlreadyBilled(
            f"licence {licence.id} has billed periods on anchor day {licence.billing_anchor_day}: its anchor cannot change "
            "(end it and start a new licence on the new anchor)",
            field="billing_anchor_day",
        )
    apply(licence, values)
    session.add(licence)
    session.flush()
    return licence


def terminate_licence(session: Session, licence_id: str | int, *, effective_date: date, at: datetime, actor: str) -> Licence:
    """End a licence early: ``effective_date`` is its last active day (inclusive). The status is
    ``terminated`` at once; periods up to that date still bill (the last one pro-rated to it, as
    any period cut by an end date) and nothing after it does. Credits already granted stay until
    they expire. Terminating again moves the date (never past the licence's own end)."""
    licence = lock(session, Licence, licence_id, "licence")
    if effective_date < licence.start_date:
        raise ValidationFailed("effective_date is before the licence's start_date", field="effective_date")
    if licence.end_date is not None and effective_date > licence.end_date:
        raise ValidationFailed("effective_date is after the licence's end_date", field="effective_date")
    licence.status = "terminated"
    licence.terminated_on = effective_date
    session.add(licence)
    record_event(
        session, "licence.terminated",
        {"licence_id": str(licence.id), "account_id": str(licence.account_id), "effective_date": effective_date.isoformat(), "actor": actor},
        at=at,
    )
    session.flush()
    return licence


def update_product(session: Session, product: Product, **changes: Any) -> Product:
    """Change a product of the catalog. A new price or credits is checked against every contract
    service that bills the product (its line must stay within what a line may hold)."""
    lines = []
    if "price" in changes or "credits" in changes:
        lines = session.exec(select(ContractService.quantity, ContractService.unit_price).where(ContractService.product_id == product.id)).all()
    return change_product(session, product, lines_in_use=lines, **changes)


def _billed(session: Session, which) -> bool:
    """Whether any of the contract services matching ``which`` has been billed."""
    statement = select(ContractService.id).where(which, col(ContractService.billed)).limit(1)
    return session.exec(statement).first() is not None


def _default_flags(values: dict[str, Any]) -> None:
    """Pro-rata policy when not given: plain services pro-rated, credit packs in full."""
    for flag, default in (("prorate", True), ("prorate_credits", False)):
        if values.get(flag) is None:
            values[flag] = default


def _check_service(session: Session, licence: Licence, values: dict[str, Any]) -> None:
    account = session.get(Account, licence.account_id)
    product = get_reference(session, Product, values.get("product_id"), "product_id")
    values["product_id"] = product.id
    if product.currency != account.currency:
        raise CurrencyMismatch(
            f"product {product.id} is priced in {product.currency}, the account in {account.currency}", field="product_id"
        )
    if values.get("schedule") not in SCHEDULES:
        raise ValidationFailed("schedule must be one_off, weekly or monthly", field="schedule")
    quantity = values.get("quantity")
    if quantity is None or quantity <= 0:
        raise ValidationFailed("quantity must be greater than zero", field="quantity")
    if values.get("unit_price") is not None and values["unit_price"] < 0:
        raise ValidationFailed("unit_price must be zero or more", field="unit_price")
    if values.get("max_rollover") is not None and values["max_rollover"] < 0:
        raise ValidationFailed("max_rollover must be zero or more", field="max_rollover")
    unit_price = values.get("unit_price")
    check_line_size(
        quantity, product.price if unit_price is None else unit_price, product.credits if product.kind == "credit_pack" else None,
        field="quantity" if unit_price is None else "unit_price",
    )
    from_date: date = values.get("from_date") or licence.start_date
    values["from_date"] = from_date
    to_date = values.get("to_date")
    if to_date is not None and to_date < from_date:
        raise ValidationFailed("to_date is before from_date", field="to_date")
    unit_id = values.get("business_unit_id")
    if unit_id is not None:
        unit = get_reference(session, BusinessUnit, unit_id, "business_unit_id")
        if unit.account_id != account.id:
            raise UnknownReference(f"business unit {unit_id} belongs to another account", field="business_unit_id")
        values["business_unit_id"] = unit.id


def add_service(session: Session, licence_id: str | int, *, at: datetime, **values: Any) -> ContractService:
    licence = get_or_404(session, Licence, licence_id, "licence")
    values = {key: value for key, value in values.items() if key in SERVICE_FIELDS}
    if values.get("quantity") is None:
        values["quantity"] = Decimal(1)
    _default_flags(values)
    _check_service(session, licence, values)
    service = ContractService(licence_id=licence.id, created_at=at, **values)
    session.add(service)
    session.flush()
    return service


def update_service(session: Session, licence_id: str | int, service_id: str | int, **changes: Any) -> ContractService:
    licence = get_or_404(session, Licence, licence_id, "licence")
    service = get_or_404(session, ContractService, service_id, "contract service")
    if service.licence_id != licence.id:
        raise NotFound(f"contract service {service_id} is not a service of licence {licence.id}")
    values = patched(service, SERVICE_FIELDS, changes)
    _default_flags(values)
    _check_service(session, licence, values)
    if service.schedule == "weekly" and values["from_date"] != service.from_date and _billed(session, ContractService.id == service.id):
        # A weekly service's weeks run from its from-date: other weeks would overlap those billed.
        raise ServiceAlreadyBilled(
            f"contract service {service.id} has billed weeks counted from {service.from_date}: its from_date cannot change "
            "(end it with to_date and add a new service)",
            field="from_date",
        )
    apply(service, values)
    session.add(service)
    session.flush()
    return service
