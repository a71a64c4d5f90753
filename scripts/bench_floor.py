"""The HTTP floors of ``scripts/bench``: the least a web stack can do for a booking.

A *minimal locked debit* (lock the account's row, read its balance, update it, insert one ledger
row, commit) and a *bare GET* (read one row by primary key), served by FastAPI on the same
uvicorn as ``licensing serve``, in the styles the ratios compare with:

- ``/stack/...``: what this project is built on: a sync route (FastAPI's thread pool), a
  pydantic body model, SQLAlchemy Core on the engine ``licensing.db.Database`` makes (same pool,
  same pragmas, ``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL);
- ``/async-core/...``: an async route with the same body model and SQLAlchemy Core;
- ``/raw/...`` and ``/raw-model/...``: an async route on the plain DB-API driver (sqlite3 or
  psycopg), without and with the body model: the floor of the framework alone.

Served with ``uvicorn bench_floor:app --app-dir scripts`` and ``BENCH_FLOOR_DATABASE_URL``; the
tables are made by ``create_tables`` before the server starts. Nothing here is part of the engine.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from licensing.db import Database, normalise_url


class Debit(BaseModel):
    credits: Decimal
    business_unit_id: str | None = None


def create_tables(url: str, accounts: int = 16) -> None:
    database = Database(url)
    # Exact decimals: text on SQLite (its NUMERIC would keep 0.5 as a float), NUMERIC on PostgreSQL.
    money = "TEXT" if database.is_sqlite else "NUMERIC(18, 2)"
    serial = "INTEGER PRIMARY KEY" if database.is_sqlite else "BIGSERIAL PRIMARY KEY"
    with database.writer.begin() as connection:
        connection.execute(text(f"CREATE TABLE floor_accounts (id INTEGER PRIMARY KEY, balance {money} NOT NULL)"))
        connection.execute(text(
            f"CREATE TABLE floor_ledger (id {serial}, account_id INTEGER NOT NULL REFERENCES floor_accounts (id), "
            f"credits {money} NOT NULL, balance_after {money} NOT NULL, recorded_at VARCHAR(40) NOT NULL)"
        ))
        connection.execute(text("INSERT INTO floor_accounts (id, balance) VALUES (:id, :balance)"),
                           [{"id": n, "balance": "1000000.00"} for n in range(1, accounts + 1)])
    database.dispose()


# Set by the server's environment (the benchmark itself only imports ``create_tables``).
URL = normalise_url(os.environ.get("BENCH_FLOOR_DATABASE_URL", "sqlite:///bench-floor.db"))
DATABASE = Database(URL)  # no connection until the first request
SQLITE = DATABASE.is_sqlite
LOCK = "SELECT balance FROM floor_accounts WHERE id = :id" + ("" if SQLITE else " FOR UPDATE")
UPDATE = "UPDATE floor_accounts SET balance = :balance WHERE id = :id"
INSERT = "INSERT INTO floor_ledger (account_id, credits, balance_after, recorded_at) VALUES (:id, :credits, :balance, :at)"

app = FastAPI()


def core_debit(account_id: int, credits: Decimal) -> dict:
    with DATABASE.writer.connect() as connection, connection.begin():
        balance = Decimal(str(connection.execute(text(LOCK), {"id": account_id}).scalar_one())) - credits
        connection.execute(text(UPDATE), {"id": account_id, "balance": str(balance)})
        at = datetime.now(UTC).isoformat()
        connection.execute(text(INSERT), {"id": account_id, "credits": str(-credits), "balance": str(balance), "at": at})
    return {"account_id": str(account_id), "credits": str(credits), "balance": str(balance)}


@app.post("/stack/accounts/{account_id}/debit", status_code=201)
def stack_debit(account_id: int, body: Debit) -> dict:
    return core_debit(account_id, body.credits)


@app.get("/stack/accounts/{account_id}")
def stack_get(account_id: int) -> dict:
    with DATABASE.reader.connect() as connection:
        balance = connection.execute(text("SELECT balance FROM floor_accounts WHERE id = :id"), {"id": account_id}).scalar_one()
    return {"id": str(account_id), "balance": str(balance)}


@app.post("/async-core/accounts/{account_id}/debit", status_code=201)
async def async_core_debit(account_id: int, body: Debit) -> dict:
    return core_debit(account_id, body.credits)


_raw = None


def raw_connection():
    """One DB-API connection per worker process (an async route runs on the event loop's thread)."""
    global _raw
    if _raw is None:
        if SQLITE:
            import sqlite3

            _raw = sqlite3.connect(URL.removeprefix("sqlite:///"), isolation_level=None, timeout=30, check_same_thread=False)
            _raw.execute("PRAGMA journal_mode=WAL")
            _raw.execute("PRAGMA synchronous=NORMAL")
        else:
            import psycopg

            _raw = psycopg.connect(URL.replace("postgresql+psycopg://", "postgresql://"))
    return _raw


def raw_debit(account_id: int, credits: Decimal) -> dict:
    connection = raw_connection()
    mark = "?" if SQLITE else "%s"
    if SQLITE:
        connection.execute("BEGIN IMMEDIATE")
    try:
        lock = f"SELECT balance FROM floor_accounts WHERE id = {mark}" + ("" if SQLITE else " FOR UPDATE")
        balance = Decimal(str(connection.execute(lock, (account_id,)).fetchone()[0])) - credits
        connection.execute(f"UPDATE floor_accounts SET balance = {mark} WHERE id = {mark}", (str(balance), account_id))
        connection.execute(
            f"INSERT INTO floor_ledger (account_id, credits, balance_after, recorded_at) VALUES ({mark}, {mark}, {mark}, {mark})",
            (account_id, str(-credits), str(balance), datetime.now(UTC).isoformat()),
        )
        connection.execute("COMMIT") if SQLITE else connection.commit()
    except BaseException:
        connection.execute("ROLLBACK") if SQLITE else connection.rollback()
        raise
    return {"account_id": str(account_id), "credits": str(credits), "balance": str(balance)}


@app.post("/raw/accounts/{account_id}/debit")
async def raw_plain_debit(account_id: int, request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    return JSONResponse(raw_debit(account_id, Decimal(body["credits"])), status_code=201)


@app.post("/raw-model/accounts/{account_id}/debit", status_code=201)
async def raw_model_debit(account_id: int, body: Debit) -> dict:
    return raw_debit(account_id, body.credits)
