"""The FastAPI application: ``create_app(database)``."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.requests import Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from licensing import __version__
from licensing.api import errors, responses
from licensing.api.errors import RETRY_AFTER_SECONDS
from licensing.api.routers import (
    accounts,
    api_keys,
    books,
    catalog,
    consumptions,
    credit_notes,
    holds,
    invoices,
    licences,
    payments,
    reports,
    webhooks,
)
from licensing.bootstrap import add_pages, connect
from licensing.db import Database, get_database


def create_app(database: Database | None = None) -> FastAPI:
    app = FastAPI(
        title="licensing",
        docs_url=None,  # /docs and /redoc: see serve_docs_offline
        redoc_url=None,
        version=__version__,
        description="Billing engine for coworking operators: licences, invoices and credits. "
        "Authenticate with `Authorization: Bearer <api key>`; errors are application/problem+json.",
        dependencies=[Depends(errors.refuse_unknown_query_parameters)],
    )
    connect()
    app.state.database = database or get_database()
    errors.install(app)
    serve_docs_offline(app)

    @app.get(
        "/health", tags=["health"], summary="Liveness and database reachability",
        responses=responses.ok(responses.Health, "The engine runs and reaches its database.")
        | {503: {"model": responses.Health, "description": "The database cannot be reached (with `Retry-After`)."}},
    )
    def health():
        """Whether the engine runs and reaches its database; no API key needed. Answers 503 with
        `Retry-After` while the database cannot be reached."""
        try:
            with app.state.database.read() as session:
                session.exec(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - reported, not raised
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable", "detail": type(error).__name__}, status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return {"status": "ok", "database": "ok", "version": __version__}

    for module in (accounts, catalog, licences, invoices, payments, credit_notes, consumptions, holds, reports, books, webhooks, api_keys):
        app.include_router(module.router)
    add_pages(app)
    document_problems(app)
    return app


DOCS_ASSETS = "/static/docs"


def serve_docs_offline(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with their scripts, styles and favicon served by the
    application (shipped by the ``fastapi-offline`` package) instead of a CDN, so that they work
    without internet: neither page loads anything from another host (no Google fonts, no favicon
    or online validator badge from elsewhere)."""
    app.mount(DOCS_ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

    # Plain Starlette routes, as FastAPI adds its own docs pages: the API's dependencies
    # (authentication, query parameter checks) do not apply to them.
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url=root + app.swagger_ui_oauth2_redirect_url,
            swagger_ui_parameters={"validatorUrl": None} | (app.swagger_ui_parameters or {}),
        )

    async def swagger_ui_oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_redoc_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        # ReDoc 2 always shows the Redocly logo from its CDN in the menu footer (no option turns
        # it off; the image removes itself when it cannot load): images come from here only.
        page.headers["Content-Security-Policy"] = "img-src 'self' data:"
        return page

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route(app.swagger_ui_oauth2_redirect_url, swagger_ui_oauth2_redirect, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


def document_problems(app: FastAPI) -> None:
    """The OpenAPI document with every 422 and 503 as application/problem+json (FastAPI would
    document its own ``HTTPValidationError``, which this API never answers)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = responses.finish_document(generate())
        return app.openapi_schema

    app.openapi = openapi
