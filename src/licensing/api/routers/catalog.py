"""Products (services and credit packs) and credit prices."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import select

from licensing import clock
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import (
    Billing,
    DatabaseDep,
    Pagination,
    ReadAny,
    paginate,
    write,
)
from licensing.api.schemas import CreditPriceIn, ProductIn, ProductPatch
from licensing.catalog import services as catalog
from licensing.catalog.models import CreditPrice, Product
from licensing.db.repository import get_or_404
from licensing.licences.services import update_product as update_product_in_use

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.post(
    "/products", status_code=201,
    summary="Create a product",
    description="A plain service or a credit pack (`credits`, `lifetime`), priced net in one currency with its `tax_rate`.",
    responses=docs.documented(docs.Product, "The product created.", *docs.AUTH, status=201),
)
def create_product(body: ProductIn, caller: Billing, database: DatabaseDep):
    return write(database, lambda s: (201, presenters.product(catalog.create_product(s, at=clock.now(), **body.model_dump()))))


@router.get(
    "/products",
    summary="List products",
    description="The catalog, paginated.",
    responses=docs.documented(docs.ProductPage, "A page of products.", *docs.AUTH),
)
def list_products(caller: ReadAny, database: DatabaseDep, page: Pagination):
    with database.read() as session:
        return paginate(session, select(Product), Product.id, page, presenters.product)


@router.get(
    "/products/{product_id}",
    summary="Get a product",
    description="One product of the catalog.",
    responses=docs.documented(docs.Product, "The product.", *docs.AUTH, "not_found"),
)
def get_product(product_id: str, caller: ReadAny, database: DatabaseDep):
    with database.read() as session:
        return presenters.product(get_or_404(session, Product, product_id, "product"))


@router.patch(
    "/products/{product_id}",
    summary="Update a product",
    description="Change the fields given; invoices already issued keep their prices.",
    responses=docs.documented(docs.Product, "The product as updated.", *docs.AUTH, "not_found"),
)
def update_product(product_id: str, body: ProductPatch, caller: Billing, database: DatabaseDep):
    changes = body.model_dump(exclude_unset=True)

    def action(session):
        product = get_or_404(session, Product, product_id, "product")
        return 200, presenters.product(update_product_in_use(session, product, **changes))

    return write(database, action)


@router.post(
    "/credit-prices", status_code=201,
    summary="Create a credit price",
    description="A credit-priced service (e.g. a meeting room per hour) for consumptions and holds by quantity.",
    responses=docs.documented(docs.CreditPrice, "The credit price created.", *docs.AUTH, status=201),
)
def create_credit_price(body: CreditPriceIn, caller: Billing, database: DatabaseDep):
    return write(
        database,
        lambda s: (
            201,
            presenters.credit_price(catalog.create_credit_price(s, name=body.name, credits_per_unit=body.credits_per_unit, at=clock.now())),
        ),
    )


@router.get(
    "/credit-prices",
    summary="List credit prices",
    description="Credit-priced services, paginated.",
    responses=docs.documented(docs.CreditPricePage, "A page of credit prices.", *docs.AUTH),
)
def list_credit_prices(caller: ReadAny, database: DatabaseDep, page: Pagination):
    with database.read() as session:
        return paginate(session, select(CreditPrice), CreditPrice.id, page, presenters.credit_price)
