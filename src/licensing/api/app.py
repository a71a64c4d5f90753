"""The FastAPI application: ``create_app(database)``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from licensing import __version__
from licensing.api import errors
from licensing.api.errors import RETRY_AFTER_SECONDS
from licensing.api.routers import (
    accounts,
    api_keys,
    catalog,
    consumptions,
    credit_notes,
    holds,
    invoices,
    licences,
    reports,
    webhooks,
)
from licensing.db import Database, get_database


def create_app(database: Database | None = None) -> FastAPI:
    app = FastAPI(
        title="licensing",
        version=__version__,
        description="Billing engine for coworking operators: licences, invoices and credits. "
        "Authenticate with `Authorization: Bearer <api key>`; errors are application/problem+json.",
    )
    app.state.database = database or get_database()
    errors.install(app)

    @app.get("/health", tags=["health"])
    def health():
        try:
            with app.state.database.read() as session:
                session.exec(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - reported, not raised
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable", "detail": type(error).__name__}, status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return {"status": "ok", "database": "ok", "version": __version__}

    for module in (accounts, catalog, licences, invoices, credit_notes, consumptions, holds, reports, webhooks, api_keys):
        app.include_router(module.router)
    return app
