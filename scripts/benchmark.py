"""Benchmarks of the engine against floors measured in the same run (run by ``scripts/bench``).

Each figure is the median over several runs and is compared with a floor: what the database or
the framework does for the same work with nothing of ours in the way.

1. Billing run: licences with a monthly service, a monthly credit pack (P1M) and a weekly credit
   pack (P2W), billed and approved for one month; floor = the very same rows written in one
   transaction by the driver alone: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.
2. Consumption: an account with 1,000 grants in 3 business units; consumptions through the
   service layer (p50/p99).
   HTTP: ``POST /accounts/{id}/consumptions`` and ``GET /accounts/{id}`` of ``licensing serve``
   (one worker on SQLite, ``--workers 2`` on PostgreSQL), loaded by wrk (-t2 -c16, Lua scripts),
   against the floors of ``scripts/bench_floor.py`` served by the same uvicorn with as many
   workers: a minimal locked debit and a bare one-row GET on the project's stack (sync route,
   body model, SQLAlchemy Core on the project's engine), and the same debit on an async route
   with the plain driver (the raw floor). Slices of each in turn; each ratio is the median over
   rounds of our slice against the floor's slice of the same round.
3. Balance: the credit summary of an account with 1,000 ledger entries and of one with
   1,000,000 (the summary must not scan the ledger).
4. PDF: one-page approved invoices rendered as the engine sends them (template, WeasyPrint,
   PDF/A-3b with the EN 16931 XML embedded): median milliseconds per PDF, compared with the floor,
   WeasyPrint rendering a minimal one-page invoice of the same content (plain table, one font),
   and with WeasyPrint rendering our own HTML string; and a batch over every core (process pool).

Usage: scripts/bench [--quick] [--no-postgres] [--parts billing,consumption,http,balance,pdf] [--profile FILE].
A run of every part writes its section of docs/benchmarks.md (full or quick).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

from licensing.accounts.models import Account, BusinessUnit
from licensing.auth.services import create_api_key
from licensing.catalog.models import Product
from licensing.credits.balance import credit_summary
from licensing.credits.consumption import consume
from licensing.credits.grants import NewGrant, create_grants
from licensing.credits.models import LedgerEntry
from licensing.db import Database, normalise_url
from licensing.db.bulk import insert_rows
from licensing.db.repository import lock
from licensing.invoicing.billing import run_billing
from licensing.licences.models import ContractService, Licence
from licensing.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
SETUP = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BILLING_DAY = date(2027, 1, 1)
BILLED_AT = datetime(2027, 1, 1, 1, 0, tzinfo=UTC)
NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
# Grants valid for years around any clock (the HTTP server reads the real one).
GRANTS_VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
GRANTS_EXPIRE = datetime(2040, 1, 1, tzinfo=UTC)
WRITTEN_TABLES = (
    "invoices", "invoice_lines", "grants", "ledger_entries", "events", "number_series", "deliveries", "journal_entries", "journal_postings",
)  # in foreign-key order


PARTS = ("billing", "consumption", "http", "balance", "pdf")


@dataclass
class Sizes:
    licences: int
    billing_runs: int
    consumptions: int
    wrk_seconds: int
    wrk_rounds: int
    scale: tuple[int, int]  # licences: the billing run's time and memory at the small size and at 10 times it
    big_ledger: int
    summary_calls: int
    pdfs: int


FULL = Sizes(licences=10_000, billing_runs=3, consumptions=10_000, wrk_seconds=6, wrk_rounds=3, scale=(10_000, 100_000),
             big_ledger=1_000_000, summary_calls=300, pdfs=200)
QUICK = Sizes(licences=300, billing_runs=2, consumptions=200, wrk_seconds=1, wrk_rounds=2, scale=(300, 3_000),
              big_ledger=10_000, summary_calls=30, pdfs=12)


@dataclass
class Figure:
    section: str
    name: str
    value: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def add(self, *args, **kwargs) -> None:
        figure = Figure(*args, **kwargs)
        self.figures.append(figure)
        mark = "" if figure.met is None else ("  ok" if figure.met else "  MISSED")
        print(f"  {figure.section:<22} {figure.name:<44} {figure.value:>16}  {figure.ratio:<24} {figure.target}{mark}", flush=True)


# ----------------------------------------------------------------------------- databases


class Databases:
    """Fresh migrated databases: SQLite files copied from a migrated template, PostgreSQL
    databases created from a migrated template database."""

    def __init__(self, workdir: Path, postgres_url: str | None) -> None:
        self.workdir = workdir
        self.template = workdir / "template.db"
        upgrade(f"sqlite:///{self.template}")
        self.postgres_url = normalise_url(postgres_url) if postgres_url else None
        self.created: list[str] = []
        if self.postgres_url:
            self.pg_template = f"bench_template_{os.getpid()}"
            self._admin(f"DROP DATABASE IF EXISTS {self.pg_template}", f"CREATE DATABASE {self.pg_template}")
            upgrade(self._url(self.pg_template))

    def _url(self, name: str) -> str:
        return f"{self.postgres_url.rpartition('/')[0]}/{name}"

    def _admin(self, *statements: str) -> None:
        engine = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
        engine.dispose()

    def fresh(self, kind: str) -> str:
        if kind == "sqlite":
            path = self.workdir / f"{uuid.uuid4().hex[:8]}.db"
            shutil.copy(self.template, path)
            return f"sqlite:///{path}"
        name = f"bench_{uuid.uuid4().hex[:10]}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {self.pg_template}")
        self.created.append(name)
        return self._url(name)

    def drop_all(self) -> None:
        if self.postgres_url:
            self._admin(*(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in [*self.created, self.pg_template]))


def raw_connection(url: str):
    """A plain DB-API connection (sqlite3 or psycopg), for the floors."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))


# ----------------------------------------------------------------------------- 1. billing


def seed_licences(database: Database, count: int) -> None:
    with database.write() as session:
        products = insert_rows(
            session,
            Product.__table__,
            [
                {
                    "kind": "service",
                    "name": "Hot desk",
                    "price": Decimal("250.00"),
                    "currency": "EUR",
                    "tax_rate": Decimal("20"),
                    "credits": None,
                    "lifetime": None,
                    "active": True,
                    "created_at": SETUP,
                },
                {
                    "kind": "credit_pack",
                    "name": "Meeting credits (monthly)",
                    "price": Decimal("90.00"),
                    "currency": "EUR",
                    "tax_rate": Decimal("20"),
                    "credits": Decimal("20"),
                    "lifetime": "P1M",
                    "active": True,
                    "created_at": SETUP,
                },
                {
                    "kind": "credit_pack",
                    "name": "Day passes (weekly)",
                    "price": Decimal("30.00"),
                    "currency": "EUR",
                    "tax_rate": Decimal("20"),
                    "credits": Decimal("5"),
                    "lifetime": "P2W",
                    "active": True,
                    "created_at": SETUP,
                },
            ],
            return_ids=True,
        )
        accounts = insert_rows(
            session,
            Account.__table__,
            [
                {
                    "name": f"Member {n}",
                    "email": f"member{n}@example.test",
                    "currency": "EUR",
                    "address": "",
                    "country": "FR",
                    "tax_exempt": False,
                    "balance": Decimal(0),
                    "debt": Decimal(0),
                    "created_at": SETUP,
                }
                for n in range(count)
            ],
            return_ids=True,
        )
        licences = insert_rows(
            session,
            Licence.__table__,
            [
                {
                    "account_id": account_id,
                    "start_date": BILLING_DAY,
                    "end_date": None,
                    "auto_renew": False,
                    "renewal_term": None,
                    "billing_anchor_day": 1,
                    "auto_approve": False,
                    "status": "active",
                    "terminated_on": None,
                    "created_at": SETUP,
                }
                for account_id in accounts
            ],
            return_ids=True,
        )
        insert_rows(
            session,
            ContractService.__table__,
            [
                {
                    "licence_id": licence_id,
                    "product_id": product_id,
                    "quantity": Decimal(1),
                    "unit_price": None,
                    "schedule": schedule,
                    "from_date": BILLING_DAY,
                    "to_date": None,
                    "business_unit_id": None,
                    "max_rollover": None,
                    "prorate": True,
                    "prorate_credits": False,
                    "created_at": SETUP,
                }
                for licence_id in licences
                for product_id, schedule in zip(products, ("monthly", "monthly", "weekly"), strict=True)
            ],
        )


def written_rows(url: str) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every row the billing run wrote, as the database stores it (with each column's type: a
    PostgreSQL type oid, or None on SQLite)."""
    connection = raw_connection(url)
    rows = {}
    for table in WRITTEN_TABLES:
        cursor = connection.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
        rows[table] = ([column[0] for column in cursor.description], cursor.fetchall())
        TYPES[table] = [getattr(column, "type_code", None) for column in cursor.description]
    balances = connection.execute("SELECT id, balance FROM accounts").fetchall()
    rows["accounts"] = (["id", "balance"], balances)
    connection.close()
    return rows


TYPES: dict[str, list] = {}


def floor_write(url: str, rows: dict[str, tuple[list[str], list[tuple]]]) -> float:
    """Seconds to write ``rows`` in one transaction with the driver alone: plain executemany on
    SQLite, ``COPY ... FROM STDIN`` on PostgreSQL (each table's rows in one COPY), and the
    accounts' balances with executemany."""
    connection = raw_connection(url)
    sqlite = url.startswith("sqlite")
    mark = "?" if sqlite else "%s"
    started = time.perf_counter()
    if sqlite:
        connection.execute("BEGIN IMMEDIATE")
    cursor = connection.cursor()
    for table in WRITTEN_TABLES:
        columns, values = rows[table]
        if not values:
            continue
        if sqlite:
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})", values)  # noqa: S608
            continue
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.set_types(TYPES[table])
            for row in values:
                copy.write_row(row)
    cursor.executemany(
        f"UPDATE accounts SET balance = {mark} WHERE id = {mark}", [(balance, account_id) for account_id, balance in rows["accounts"][1]]
    )
    connection.commit() if not sqlite else connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def profile_billing(databases: Databases, sizes: Sizes, path: Path) -> None:
    """Where a billing run's time goes (pyinstrument), written next to the figures."""
    from pyinstrument import Profiler

    database = Database(databases.fresh("sqlite"))
    seed_licences(database, sizes.licences)
    profiler = Profiler(interval=0.0005)
    with profiler:
        run_billing(database, as_of=BILLING_DAY, now=BILLED_AT, actor="bench", approve_all=True)
    database.dispose()
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(f"profile of the billing run written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def bench_billing(report: Report, databases: Databases, kind: str, sizes: Sizes) -> None:
    # Warm up first (statements compiled and cached, modules imported): the figure is the
    # steady state of a scheduler that bills every day, not a cold start.
    warm = Database(databases.fresh(kind))
    seed_licences(warm, 20)
    run_billing(warm, as_of=BILLING_DAY, now=BILLED_AT, actor="bench", approve_all=True)
    warm.dispose()
    ours, floors = [], []
    for _ in range(sizes.billing_runs):
        url = databases.fresh(kind)
        database = Database(url)
        seed_licences(database, sizes.licences)
        started = time.perf_counter()
        result = run_billing(database, as_of=BILLING_DAY, now=BILLED_AT, actor="bench", approve_all=True)
        ours.append(time.perf_counter() - started)
        assert result.invoices_created == result.invoices_approved == sizes.licences, result
        rows = written_rows(url)
        database.dispose()
        floor_url = databases.fresh(kind)
        floor_database = Database(floor_url)
        seed_licences(floor_database, sizes.licences)
        floor_database.dispose()
        floors.append(floor_write(floor_url, rows))
    seconds, floor = statistics.median(ours), statistics.median(floors)
    rate = sizes.licences / seconds
    rows_written = sum(len(values) for table, (_columns, values) in rows.items() if table != "accounts")
    # The absolute target is for the monthly run of 10,000 licences: a quick run's few hundred
    # licences spend a larger share on each batch's fixed costs, so only its ratio is judged.
    absolute = kind == "sqlite" and sizes.licences >= FULL.licences
    # On PostgreSQL the floor is a COPY of the same rows and the target issue 17's 3x; on SQLite
    # an executemany of them and round one's 10x.
    most = 3 if kind == "postgresql" else 10
    target = f"<= {most}x floor" if kind != "sqlite" else (">= 2,000/s, <= 10x floor" if absolute else "<= 10x floor (2,000/s: full run)")
    report.add(f"billing run ({kind})", f"{sizes.licences:,} licences billed + approved, {rows_written:,} rows", f"{rate:,.0f} licences/s",
               f"{seconds / floor:.1f}x the floor ({sizes.licences / floor:,.0f}/s)", target,
               met=(rate >= 2000 if absolute else True) and seconds / floor <= most)


def cli_billing_run(url: str, workers: int) -> tuple[float, int]:
    """``licensing billing-run --approve --workers N`` as its own process: seconds, and the peak
    resident memory of that process (KiB; its workers are processes of their own). Approved
    invoices are queued for mail but not sent (``LICENSING_MAIL_ON_APPROVAL=false``): rendering
    and sending is the delivery job's, measured by the PDF part.

    The peak is the command's own: ``VmHWM`` of its address space, read while it runs. The
    ``ru_maxrss`` its exit reports would not do: a child forked from this benchmark (hundreds of
    MiB by then) counts the benchmark's memory until it executes the command, so that figure
    was this process's size, whatever the command used."""
    command = [str(Path(sys.executable).parent / "licensing"), "billing-run", "--as-of", BILLING_DAY.isoformat(), "--approve",
               "--workers", str(workers)]
    return run_measured(command, {"LICENSING_DATABASE_URL": url, "LICENSING_MAIL_ON_APPROVAL": "false"})


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``command`` (a script, ``command[0]``) to its end: seconds, and its own peak resident
    memory (KiB). Raises with its error output if it fails."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while True:
        peak = max(peak, _command_peak_kib(process.pid, command[0]))
        try:
            process.wait(timeout=0.02)
            break
        except subprocess.TimeoutExpired:
            continue
    elapsed = time.perf_counter() - started
    errors = process.stderr.read().decode()
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {errors[-2000:]}")
    return elapsed, peak


def _command_peak_kib(pid: int, executable: str) -> int:
    """The peak resident memory so far of process ``pid`` (KiB), once it runs ``executable``
    (before that it is a copy of this process); 0 when it cannot be read (not yet, or ended)."""
    try:
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2] != [executable.encode()]:
            return 0
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, IndexError):
        return 0
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return int(line.split()[1]) if line else 0


def bench_billing_processes(report: Report, databases: Databases, kind: str, sizes: Sizes) -> None:
    """The command an operator runs: one process against two workers (PostgreSQL), and one
    process at ten times the licences (time and peak memory)."""
    if kind != "postgresql":
        return

    def seeded(count: int) -> str:
        url = databases.fresh(kind)
        database = Database(url)
        seed_licences(database, count)
        database.dispose()
        return url

    cli_billing_run(seeded(20), 2)  # warm: the first start writes the bytecode caches
    one, two = [], []
    count = max(sizes.licences, 3_000)  # 10,000 (full) or 3,000 (quick): enough work that the start is not most of it
    for _ in range(max(1, sizes.billing_runs - 1)):
        one.append(cli_billing_run(seeded(count), 1)[0])
        two.append(cli_billing_run(seeded(count), 2)[0])
    speedup = statistics.median(one) / statistics.median(two)
    report.add(f"billing run ({kind})", f"licensing billing-run, {count:,} licences, --workers 2", f"{statistics.median(two):.1f} s",
               f"{speedup:.2f}x faster than one process ({statistics.median(one):.1f} s)", ">= 1.6x", met=speedup >= 1.6)
    small, large = sizes.scale
    small_seconds, small_memory = cli_billing_run(seeded(small), 1)
    large_seconds, large_memory = cli_billing_run(seeded(large), 1)
    report.add(f"billing run ({kind})", f"licensing billing-run, {large:,} licences against {small:,}", f"{large_seconds:.1f} s",
               f"{large_seconds / small_seconds:.1f}x the time ({small_seconds:.1f} s)", "<= 11x", met=large_seconds / small_seconds <= 11)
    report.add(f"billing run ({kind})", f"peak memory, {large:,} licences against {small:,}", f"{large_memory / 1024:.0f} MiB",
               f"{large_memory / small_memory:.2f}x ({small_memory / 1024:.0f} MiB)", "<= 1.2x", met=large_memory / small_memory <= 1.2)


# ----------------------------------------------------------------------------- 2. consumption


def seed_grants(database: Database, *, grants: int = 1000, credits: str = "1000") -> tuple[int, list[int]]:
    """An account with ``grants`` grants spread over 3 business units; returns (account, units)."""
    with database.write() as session:
        account = Account(name="Busy hospital", email="accounts@hospital.test", currency="EUR", created_at=SETUP)
        session.add(account)
        session.flush()
        units = [BusinessUnit(account_id=account.id, name=name, created_at=SETUP) for name in ("Cardiology", "Neurology", "Radiology")]
        session.add_all(units)
        session.flush()
        account = lock(session, Account, account.id, "account")
        create_grants(session, {account.id: account}, [
            NewGrant(account_id=account.id, credits=Decimal(credits), value=Decimal(credits), valid_from=GRANTS_VALID_FROM,
                     expires_at=GRANTS_EXPIRE + timedelta(days=n % 60), business_unit_id=units[n % 3].id,
                     source_type="bench", source_id=str(n))
            for n in range(grants)
        ], actor="bench", at=SETUP)
        return account.id, [unit.id for unit in units]


def bench_consumption_service(report: Report, databases: Databases, kind: str, sizes: Sizes) -> None:
    database = Database(databases.fresh(kind))
    account_id, units = seed_grants(database)
    latencies = []
    for n in range(sizes.consumptions):
        started = time.perf_counter()
        with database.write() as session:
            consume(session, account_id, credits=Decimal("0.50"), business_unit_id=units[n % 3], now=NOW, actor="bench")
        latencies.append(time.perf_counter() - started)
    database.dispose()
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    report.add(f"consumption ({kind})", f"{sizes.consumptions:,} consumptions, service layer", f"p50 {p50 * 1000:.2f} ms",
               f"p99 {p99 * 1000:.2f} ms, {len(latencies) / sum(latencies):,.0f}/s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(command: list[str], environment: dict, ready: str):
    """A server process started with ``command``, once ``ready`` (a URL) answers 200."""
    import httpx

    server = subprocess.Popen(command, env=os.environ | environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError(f"{' '.join(command[:3])} stopped: {server.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(ready, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{' '.join(command[:3])} did not start")
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass(frozen=True)
class Load:
    """One endpoint driven by wrk: a name, its URL and a Lua script (method, headers, body)."""

    name: str
    url: str
    script: Path


def load(workdir: Path, name: str, url: str, method: str = "GET", body: str | None = None, key: str | None = None) -> Load:
    lines = [f'wrk.method = "{method}"']
    if key:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {key}"')
    if body is not None:
        lines += ['wrk.headers["Content-Type"] = "application/json"', f"wrk.body = '{body}'"]
    script = workdir / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n")
    return Load(name, url, script)


def wrk_rate(target: Load, seconds: int) -> float:
    """Requests per second wrk reaches on ``target`` (2 threads, 16 connections); any answer
    other than 2xx fails the run. A request may wait up to 30 s (wrk's default, 2 s, counted a
    SQLite floor's request queued behind its busy handler as a socket error)."""
    output = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--timeout", "30s", "-s", str(target.script), target.url],
        check=True, capture_output=True, text=True,
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"{target.name}: some requests failed:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def wrk_rounds(loads: list[Load], seconds: int, rounds: int) -> dict[str, list[float]]:
    """Each load in turn for ``seconds``, ``rounds`` times (after one warm-up slice each): slices
    close in time see the same machine (a shared VM's speed drifts over seconds)."""
    for target in loads:
        wrk_rate(target, 1)
    rates: dict[str, list[float]] = {target.name: [] for target in loads}
    for _ in range(rounds):
        for target in loads:
            rates[target.name].append(wrk_rate(target, seconds))
    return rates


def paired(rates: dict[str, list[float]], ours: str, floor: str) -> float:
    """The median over rounds of our slice against the floor's slice of the same round."""
    return statistics.median(mine / theirs for mine, theirs in zip(rates[ours], rates[floor], strict=True))


def bench_http(report: Report, databases: Databases, kind: str, sizes: Sizes) -> None:
    """``POST /accounts/{id}/consumptions`` and ``GET /accounts/{id}`` of ``licensing serve`` (one
    worker on SQLite, two on PostgreSQL) against the floors of ``scripts/bench_floor.py`` served by
    the same uvicorn with as many workers, all driven by wrk."""
    from bench_floor import create_tables

    if shutil.which("wrk") is None:
        print(f"  http ({kind}): not measured: wrk is not installed (scripts/bench installs Debian's package when run as root)")
        return
    workers = 1 if kind == "sqlite" else 2
    url = databases.fresh(kind)
    database = Database(url)
    account_id, units = seed_grants(database)
    with database.write() as session:
        _key, secret = create_api_key(session, name="bench", role="billing", at=SETUP)
    database.dispose()
    floor_url = databases.fresh(kind)
    create_tables(floor_url)
    ours_port, floor_port = free_port(), free_port()
    ours, floor = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{floor_port}"
    workdir = databases.workdir
    body = f'{{"credits": "0.01", "business_unit_id": "{units[0]:d}"}}'
    floor_body = '{"credits": "0.01", "business_unit_id": "1"}'
    loads = [
        load(workdir, "stack-post", f"{floor}/stack/accounts/1/debit", "POST", floor_body, secret),
        load(workdir, "ours-post", f"{ours}/api/v1/accounts/{account_id}/consumptions", "POST", body, secret),
        load(workdir, "raw-post", f"{floor}/raw/accounts/1/debit", "POST", floor_body, secret),
        load(workdir, "stack-get", f"{floor}/stack/accounts/1", key=secret),
        load(workdir, "ours-get", f"{ours}/api/v1/accounts/{account_id}", key=secret),
    ]
    if sizes is FULL:  # the other floors, for the record
        loads += [load(workdir, "raw-model-post", f"{floor}/raw-model/accounts/1/debit", "POST", floor_body, secret),
                  load(workdir, "async-core-post", f"{floor}/async-core/accounts/1/debit", "POST", floor_body, secret)]
    licensing = [str(Path(sys.executable).parent / "licensing"), "serve", "--no-scheduler", "--port", str(ours_port), "--workers", str(workers)]
    uvicorn = [sys.executable, "-m", "uvicorn", "bench_floor:app", "--app-dir", "scripts", "--port", str(floor_port),
               "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    with (
        served(licensing, {"LICENSING_DATABASE_URL": url}, f"{ours}/health"),
        served(uvicorn, {"BENCH_FLOOR_DATABASE_URL": floor_url}, f"{floor}/stack/accounts/1"),
    ):
        rates = wrk_rounds(loads, sizes.wrk_seconds, sizes.wrk_rounds)
    median = {name: statistics.median(values) for name, values in rates.items()}
    style = f"{workers} worker{'s' if workers > 1 else ''}, wrk -t2 -c16"
    post = paired(rates, "ours-post", "stack-post")
    report.add(f"http ({kind})", f"POST consumptions, {style}", f"{median['ours-post']:,.0f} req/s",
               f"{post:.0%} of the stack floor ({median['stack-post']:,.0f}/s)", ">= 75%", met=post >= 0.75)
    raw = paired(rates, "ours-post", "raw-post")
    report.add(f"http ({kind})", "POST consumptions against the raw async floor", f"{median['ours-post']:,.0f} req/s",
               f"{raw:.0%} of the raw floor ({median['raw-post']:,.0f}/s)", ">= 40% (stretch)", met=raw >= 0.40)
    get = paired(rates, "ours-get", "stack-get")
    report.add(f"http ({kind})", f"GET an account, {style}", f"{median['ours-get']:,.0f} req/s",
               f"{get:.0%} of the stack's bare GET ({median['stack-get']:,.0f}/s)", ">= 75%", met=get >= 0.75)
    for name, what in (("raw-model-post", "async route, raw driver, body model"), ("async-core-post", "async route, SQLAlchemy Core, body model")):
        if name in median:
            report.add(f"http ({kind})", f"floor: {what}", f"{median[name]:,.0f} req/s",
                       f"{median[name] / median['stack-post']:.2f}x the stack floor")


# ----------------------------------------------------------------------------- 3. balance


def seed_ledger(database: Database, account_id: int, entries: int) -> None:
    """``entries`` consumption entries of 0.01 credits against the account's grants, written
    directly (the figure measured is the read, not this set-up)."""
    with database.write() as session:
        grants = list(session.execute(text("SELECT id, business_unit_id FROM grants WHERE account_id = :a ORDER BY id"), {"a": account_id}).all())
        step = Decimal("0.01")
        chunk = 50_000
        for start in range(0, entries, chunk):
            rows = []
            for n in range(start, min(entries, start + chunk)):
                grant_id, unit_id = grants[n % len(grants)]
                rows.append({"account_id": account_id, "grant_id": grant_id, "business_unit_id": unit_id, "kind": "consume",
                             "credits": -step, "balance_after": Decimal(0), "source_type": "bench", "source_id": "0",
                             "actor": "bench", "occurred_at": SETUP + timedelta(seconds=n), "recorded_at": SETUP + timedelta(seconds=n),
                             "value": Decimal(0)})
            insert_rows(session, LedgerEntry.__table__, rows)
        per_grant = step * (entries // len(grants))
        session.execute(text("UPDATE grants SET remaining = remaining - :u, used = used + :u WHERE account_id = :a"),
                        {"u": int(per_grant * 100), "a": account_id})


def summary_latencies(database: Database, account_ids: list[int], calls: int) -> list[float]:
    """Median latency of the summary of each account, the calls interleaved so that neither
    account profits from a warmer cache."""
    timings: dict[int, list[float]] = {account_id: [] for account_id in account_ids}
    for _ in range(calls):
        for account_id in account_ids:
            started = time.perf_counter()
            with database.read() as session:
                credit_summary(session, session.get(Account, account_id), NOW)
            timings[account_id].append(time.perf_counter() - started)
    return [statistics.median(timings[account_id]) for account_id in account_ids]


def bench_balance(report: Report, databases: Databases, kind: str, sizes: Sizes) -> None:
    database = Database(databases.fresh(kind))
    small, _ = seed_grants(database, grants=100)
    big, _ = seed_grants(database, grants=100)
    seed_ledger(database, small, 1_000)
    seed_ledger(database, big, sizes.big_ledger)
    if kind == "postgresql":
        with database.write() as session:
            session.execute(text("ANALYZE"))
    small_latency, big_latency = summary_latencies(database, [small, big], sizes.summary_calls)
    database.dispose()
    ratio = big_latency / small_latency
    report.add(f"balance ({kind})", f"summary, 1,000 vs {sizes.big_ledger:,} ledger entries", f"{big_latency * 1000:.2f} ms",
               f"{ratio:.2f}x the small account ({small_latency * 1000:.2f} ms)", "<= 1.5x", met=ratio <= 1.5)


# ----------------------------------------------------------------------------- report


def one_page_invoice(databases: Databases):
    """The README's one-page sample invoice (``scripts/sample_invoice.py``), approved, as a Document."""
    from sample_invoice import bill_sample

    from licensing.documents.service import load_document

    database = Database(databases.fresh("sqlite"))
    bill_sample(database)
    document = load_document(database, "invoice", 1)
    database.dispose()
    return document


def minimal_invoice_html(document) -> str:
    """The PDF floor: the same invoice as a plain page (its parties, facts, a plain table of its
    lines and its totals in one font, no styles beyond that), with nothing of ours around it."""
    from html import escape

    def party(who) -> str:
        return "<br>".join(escape(part) for part in (who.name, *who.address_lines, who.country or "", who.tax_id or "") if part)

    rows = "".join(
        f"<tr><td>{line.number}</td><td>{escape(line.description)}</td><td>{line.quantity}</td><td>{line.unit_price}</td>"
        f"<td>{line.tax_rate} %</td><td>{line.net}</td></tr>"
        for line in document.lines
    )
    return (
        "<html><head><style>@page { size: A4; margin: 15mm } body { font-family: 'DejaVu Sans'; font-size: 9pt }</style></head><body>"
        f"<h1>Invoice {escape(document.number or '')}</h1><p>{party(document.seller)}</p><p>{party(document.buyer)}</p>"
        f"<p>Issued {document.issue_date}, due {document.due_date}, {document.currency}</p>"
        f"<table><tr><th>#</th><th>Description</th><th>Quantity</th><th>Unit price</th><th>VAT</th><th>Net</th></tr>{rows}</table>"
        f"<p>Net {document.net}<br>VAT {document.tax}<br>Total due {document.gross}</p><p>{escape(document.payment_terms)}</p>"
        "</body></html>"
    )


def bench_pdf(report: Report, databases: Databases, sizes: Sizes) -> None:
    from weasyprint import HTML

    from licensing.config import get_settings
    from licensing.documents.pdf import document_stylesheet, font_configuration, render_html, render_many, templates_dir
    from licensing.documents.service import pdf_of, xml_of

    document = one_page_invoice(databases)
    html = render_html(document, einvoice=True)
    minimal = minimal_invoice_html(document)
    base_url = templates_dir().resolve().as_uri() + "/"
    stylesheets = document_stylesheet(get_settings())

    fonts = font_configuration()  # the floor gets the same one-per-process fonts as ours (a new one per render costs it 15 %)

    def weasyprint_alone() -> bytes:  # our HTML and stylesheet, without PDF/A-3b and the embedded e-invoice
        return HTML(string=html, base_url=base_url).write_pdf(stylesheets=stylesheets, font_config=fonts)

    def floor_pdf() -> bytes:
        return HTML(string=minimal).write_pdf(font_config=fonts)

    pdf_of(document), weasyprint_alone(), floor_pdf()  # warm (fonts, XSD)
    ours, same, floor = [], [], []
    for _ in range(sizes.pdfs):
        started = time.perf_counter()
        pdf_of(document)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        weasyprint_alone()
        same.append(time.perf_counter() - started)
        started = time.perf_counter()
        floor_pdf()
        floor.append(time.perf_counter() - started)
    median, same_median, floor_median = statistics.median(ours), statistics.median(same), statistics.median(floor)
    report.add("pdf", f"{sizes.pdfs} one-page invoices, PDF/A-3b + e-invoice", f"{median * 1000:.0f} ms per PDF",
               f"{median / floor_median:.2f}x a minimal one-page invoice ({floor_median * 1000:.0f} ms)", "<= 1.5x",
               median / floor_median <= 1.5)
    report.add("pdf", "the same, against WeasyPrint alone on our HTML and CSS", f"{median * 1000:.0f} ms per PDF",
               f"{median / same_median:.2f}x WeasyPrint on the same HTML ({same_median * 1000:.0f} ms)", "<= 1.2x",
               median / same_median <= 1.2)
    if sizes.pdfs < 50:
        return  # a process pool's start-up dominates small batches: the batch figure is for full runs
    workers = os.cpu_count() or 1
    xml = xml_of(document)
    started = time.perf_counter()
    render_many([(document, xml)] * sizes.pdfs, workers=workers)
    batch = time.perf_counter() - started
    report.add("pdf", f"batch of {sizes.pdfs} over {workers} processes", f"{sizes.pdfs / batch:,.1f} PDF/s",
               f"{(sizes.pdfs / batch) / (1 / median):.2f}x one process ({1 / median:,.1f} PDF/s)", "", None)


def machine() -> str:
    model = "unknown processor"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        memory_gib = int(memory.split()[1]) / 1024 / 1024
    except (OSError, StopIteration):
        memory_gib = 0
    return (f"{platform.system()} {platform.release()}, {model}, {os.cpu_count()} cores, {memory_gib:.0f} GiB; "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")


HEADER = """# Benchmarks

Written by `scripts/bench`: a full run (`scripts/bench`) rewrites the first section, a quick run
(`scripts/bench --quick`, small sizes, about 30 seconds) the second; neither touches the other.
Each figure is the median of several runs; each ratio compares with a floor measured in the
same run on the same machine (see `scripts/benchmark.py` for what each floor is, and
`docs/performance.md` for where the time goes).
"""


def write_markdown(report: Report, sizes_name: str, postgres: str | None, path: Path) -> None:
    """Rewrite this run's section of ``path`` (full or quick), keeping the other one."""
    lines = [
        f"<!-- {sizes_name} -->",
        f"## Last {sizes_name} run",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `scripts/bench{' --quick' if sizes_name == 'quick' else ''}`.",
        "",
        f"Machine: {machine()}" + (f"; PostgreSQL {postgres}" if postgres else "; PostgreSQL not measured") + ".",
        "",
        "| part | what | figure | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for figure in report.figures:
        met = "" if figure.met is None else ("yes" if figure.met else "**no**")
        lines.append(f"| {figure.section} | {figure.name} | {figure.value} | {figure.ratio} | {figure.target} | {met} |")
    existing = path.read_text() if path.exists() else ""
    sections = {}
    for name in ("full", "quick"):
        marker = f"<!-- {name} -->"
        if marker in existing:  # a section runs from its marker to the next one
            sections[name] = marker + existing.split(marker, 1)[1].split("<!-- ", 1)[0]
    sections[sizes_name] = "\n".join(lines)
    sections = {name: sections[name] for name in ("full", "quick") if name in sections}
    path.write_text(HEADER + "".join(f"\n{section.strip()}\n" for section in sections.values()))


PER_DATABASE = {
    "billing": (bench_billing, bench_billing_processes),
    "consumption": (bench_consumption_service,),
    "http": (bench_http,),
    "balance": (bench_balance,),
}


def postgres_version(url: str | None) -> str | None:
    if not url:
        return None
    connection = raw_connection(normalise_url(url))
    version = connection.execute("SHOW server_version").fetchone()[0]
    connection.close()
    return version


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: about 30 seconds")
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument("--output", type=Path, help="where to write the table (default: docs/benchmarks.md, for runs of every part)")
    parser.add_argument("--profile", type=Path, help="also profile one SQLite billing run into this file (pyinstrument)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts to run (default: all of {','.join(PARTS)})")
    arguments = parser.parse_args()
    parts = set(arguments.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"unknown part(s): {', '.join(sorted(parts - set(PARTS)))}")
    sizes = QUICK if arguments.quick else FULL
    # The processes this benchmark starts (servers, the billing command) load the engine from
    # bytecode cached on their first start, as on an installed machine (pip compiles at install):
    # with PYTHONDONTWRITEBYTECODE set (as in some CI images) each start compiled the engine and its
    # libraries again, 2.4 s of a 5 s `licensing billing-run`.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    postgres_url = None if arguments.no_postgres else os.environ.get("LICENSING_TEST_POSTGRES_URL")
    kinds = ["sqlite"] + (["postgresql"] if postgres_url else [])
    report = Report()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="licensing-bench-") as workdir:
        databases = Databases(Path(workdir), postgres_url)
        try:
            for part in PARTS:
                if part not in parts:
                    continue
                started = time.perf_counter()
                if part == "pdf":  # the same on any database
                    bench_pdf(report, databases, sizes)
                for kind in kinds if part != "pdf" else []:
                    for bench in PER_DATABASE[part]:
                        bench(report, databases, kind, sizes)
                print(f"  ({part}: {time.perf_counter() - started:.0f} s)", flush=True)
            if arguments.profile:
                profile_billing(databases, sizes, arguments.profile)
        finally:
            databases.drop_all()
    output = arguments.output or (ROOT / "docs" / "benchmarks.md" if parts == set(PARTS) else None)
    if output:
        write_markdown(report, "quick" if arguments.quick else "full", postgres_version(postgres_url), output)
    missed = [figure for figure in report.figures if figure.met is False]
    where = (
        "not written (some parts only; --output to write)"
        if output is None
        else f"written to {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}"
    )
    print(f"{where}; {len(missed)} target(s) missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
