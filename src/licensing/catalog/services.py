"""The catalog: products (plain services and credit packs) and credit prices."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from licensing.catalog.models import CreditPrice, Product
from licensing.dates import parse_lifetime
from licensing.db.repository import apply, patched
from licensing.errors import ValidationFailed
from licensing.money import check_line_size, is_currency, minor_unit

PRODUCT_FIELDS = ("kind", "name", "price", "currency", "tax_rate", "credits", "lifetime", "grant_on", "active")


def _check_product(values: dict[str, Any]) -> None:
    kind = values.get("kind")
    if kind not in ("service", "credit_pack"):
        raise ValidationFailed("kind must be 'service' or 'credit_pack'", field="kind")
    if not is_currency(values.get("currency") or ""):
        raise ValidationFailed(f"unknown currency {values.get('currency')!r} (ISO 4217)", field="currency")
    price = values.get("price")
    if price is None or price < 0:
        raise ValidationFailed("price must be zero or more", field="price")
    if price != price.quantize(Decimal(1).scaleb(-max(minor_unit(values["currency"]), 4))):
        raise ValidationFailed("price has too many decimal places", field="price")
    tax_rate = values.get("tax_rate") or Decimal(0)
    if tax_rate < 0 or tax_rate > 100:
        raise ValidationFailed("tax_rate is a percentage between 0 and 100", field="tax_rate")
    if kind == "credit_pack":
        credits = values.get("credits")
        if credits is None or credits <= 0:
            raise ValidationFailed("a credit pack needs credits greater than zero", field="credits")
        if values.get("lifetime") is not None:
            parse_lifetime(values["lifetime"])
    elif values.get("credits") is not None or values.get("lifetime") is not None:
        raise ValidationFailed("only credit packs carry credits and a lifetime", field="credits")
    if values.get("grant_on") not in (None, "approval", "payment"):
        raise ValidationFailed("grant_on must be approval or payment", field="grant_on")
    if kind != "credit_pack" and values.get("grant_on") == "payment":
        raise ValidationFailed("only credit packs grant credits, on payment or otherwise", field="grant_on")


def create_product(session: Session, *, at: datetime, **values: Any) -> Product:
    values.setdefault("tax_rate", Decimal(0))
    if values["tax_rate"] is None:
        values["tax_rate"] = Decimal(0)
    _check_product(values)
    product = Product(created_at=at, **{key: value for key, value in values.items() if key in PRODUCT_FIELDS and value is not None})
    session.add(product)
    session.flush()
    return product


def change_product(session: Session, product: Product, *, lines_in_use: Iterable[tuple[Decimal, Decimal | None]], **changes: Any) -> Product:
    """Change a product's fields. ``lines_in_use`` are the (quantity, own unit price or None) of
    the contract services that bill it: a new price or credits must keep each of them within what
    a line may hold (a service with its own unit price keeps it). The catalog knows no contract
    service: ``licences.services.update_product`` is the use case, and reads them."""
    values = patched(product, PRODUCT_FIELDS, changes)
    if values["tax_rate"] is None:
        values["tax_rate"] = Decimal(0)
    _check_product(values)
    credits = values.get("credits") if values["kind"] == "credit_pack" else None
    for quantity, unit_price in lines_in_use:
        check_line_size(quantity, values["price"] if unit_price is None else unit_price, credits, field="price")
    apply(product, values)
    session.add(product)
    session.flush()
    return product


def create_credit_price(session: Session, *, name: str, credits_per_unit: Decimal, at: datetime) -> CreditPrice:
    if credits_per_unit <= 0:
        raise ValidationFailed("credits_per_unit must be greater than zero", field="credits_per_unit")
    price = CreditPrice(name=name, credits_per_unit=credits_per_unit, created_at=at)
    session.add(price)
    session.flush()
    return price
