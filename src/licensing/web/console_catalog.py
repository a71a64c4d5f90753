"""The console's catalog: products (plain services and credit packs) and credit prices, each
listed with a form for a new one, and a product with the form that updates it (the API's PATCH)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from licensing.api.routers import catalog as catalog_api
from licensing.api.schemas import CreditPriceIn, ProductIn, ProductPatch
from licensing.errors import LicensingError
from licensing.web.calls import allowed, body, call
from licensing.web.console_licences import PAGE_QUERY, form_values
from licensing.web.pages import page_router, see_other
from licensing.web.render import page as render
from licensing.web.render import refused
from licensing.web.sessions import ConsoleVisitor, Form, caller_of, database_of

router = page_router("/console")

# What a page says after a change (``?done=<key>``); query text is never echoed.
DONE = {
    "created": "The product was created.",
    "updated": "The product was updated.",
    "credit_price": "The credit price was created.",
}


def _notice(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done", ""))


def _shown(request: Request, template: str, error: LicensingError | None, **context: Any):
    if error is not None:
        return refused(request, template, error, **context)
    return render(request, template, notice=_notice(request), **context)


def _products_page(request: Request, visitor, form: dict[str, Any] | None = None, error: LicensingError | None = None):
    caller = caller_of(visitor)
    products = call(catalog_api.list_products, caller, database_of(request), limit=50, cursor=request.query_params.get("cursor"))
    return _shown(
        request, "console/catalog/products.html", error, visitor=visitor, section="Products", title="Products", products=products,
        can_create=allowed(catalog_api.create_product, caller), values=form or {},
    )


@router.get("/products", dependencies=PAGE_QUERY)
def products_page(request: Request, visitor: ConsoleVisitor):
    return _products_page(request, visitor)


@router.post("/products")
def create_product(request: Request, visitor: ConsoleVisitor, form: Form):
    try:
        created = call(catalog_api.create_product, caller_of(visitor), database_of(request), body=body(ProductIn, form_values(form, ())))
    except LicensingError as error:
        return _products_page(request, visitor, form, error)
    return see_other(f"/console/products/{created['id']}?done=created")


def _product_page(request: Request, visitor, product_id: str, form: dict[str, Any] | None = None, error: LicensingError | None = None):
    caller = caller_of(visitor)
    product = call(catalog_api.get_product, caller, database_of(request), product_id=product_id)
    return _shown(
        request, "console/catalog/product.html", error, visitor=visitor, section="Products", title=product["name"], product=product,
        can_change=allowed(catalog_api.update_product, caller), values=form or product,
    )


@router.get("/products/{product_id}", dependencies=PAGE_QUERY)
def product_page(request: Request, visitor: ConsoleVisitor, product_id: str):
    return _product_page(request, visitor, product_id)


@router.post("/products/{product_id}")
def update_product(request: Request, visitor: ConsoleVisitor, form: Form, product_id: str):
    try:
        call(catalog_api.update_product, caller_of(visitor), database_of(request), product_id=product_id,
             body=body(ProductPatch, form_values(form, ())))
    except LicensingError as error:
        return _product_page(request, visitor, product_id, form, error)
    return see_other(f"/console/products/{product_id}?done=updated")


def _credit_prices_page(request: Request, visitor, form: dict[str, Any] | None = None, error: LicensingError | None = None):
    caller = caller_of(visitor)
    credit_prices = call(catalog_api.list_credit_prices, caller, database_of(request), limit=50, cursor=request.query_params.get("cursor"))
    return _shown(
        request, "console/catalog/credit_prices.html", error, visitor=visitor, section="Products", title="Credit prices",
        credit_prices=credit_prices, can_create=allowed(catalog_api.create_credit_price, caller), values=form or {},
    )


@router.get("/credit-prices", dependencies=PAGE_QUERY)
def credit_prices_page(request: Request, visitor: ConsoleVisitor):
    return _credit_prices_page(request, visitor)


@router.post("/credit-prices")
def create_credit_price(request: Request, visitor: ConsoleVisitor, form: Form):
    try:
        call(catalog_api.create_credit_price, caller_of(visitor), database_of(request), body=body(CreditPriceIn, form_values(form, ())))
    except LicensingError as error:
        return _credit_prices_page(request, visitor, form, error)
    return see_other("/console/credit-prices?done=credit_price")
