"""The ``licensing`` command line."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from licensing import clock
from licensing.config import get_settings

app = typer.Typer(help="licensing: billing engine for coworking operators.", no_args_is_help=True, add_completion=False)
api_key_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")
invoice_app = typer.Typer(help="Invoice and credit note documents.", no_args_is_help=True)
app.add_typer(invoice_app, name="invoice")
console = Console(stderr=True, soft_wrap=True)  # messages are not wrapped: logs and scripts read them whole


@app.callback()
def check_settings() -> None:
    """Every setting is checked before any command runs: a bad one stops the command with a line
    naming it (exit 2), instead of a failure later, in the middle of the work."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from licensing.config import setting_errors

    get_settings.cache_clear()
    try:
        get_settings()
        from licensing.scheduler import schedules

        schedules()
    except ValidationError as error:
        for line in setting_errors(error):
            console.print(f"invalid setting {line}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except (SettingsError, ValueError) as error:
        console.print(f"invalid setting: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def _database():
    from licensing.db import get_database

    return get_database(get_settings().database_url)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from licensing.migrate import upgrade

    upgrade(get_settings().database_url)
    console.print("database is at the latest schema")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    no_scheduler: Annotated[bool, typer.Option("--no-scheduler", help="do not run the scheduled jobs in this process")] = False,
) -> None:
    """Serve the HTTP API (with the scheduler unless --no-scheduler)."""
    import uvicorn

    from licensing.api.app import create_app

    application = create_app(_database())
    if not no_scheduler:
        from licensing.scheduler import SchedulerAlreadyRunning, start_in_background

        try:
            start_in_background(_database())
        except SchedulerAlreadyRunning as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(3) from None
    uvicorn.run(application, host=host, port=port, log_level="info")


@app.command()
def scheduler(
    once: Annotated[bool, typer.Option("--once", help="run every job whose scheduled moment has passed since its last run, then exit")] = False,
) -> None:
    """Run the scheduled jobs (billing, renewals, expiry, notices, holds, mail, webhooks)."""
    import logging
    import signal
    import threading

    from licensing.scheduler import (
        ProcessLock,
        SchedulerAlreadyRunning,
        loop,
        run_due,
        schedules,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    try:
        schedules()
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    database = _database()
    lock = ProcessLock(database)
    try:
        lock.acquire()
    except SchedulerAlreadyRunning as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(3) from None
    try:
        if once:
            failed = False
            for outcome in run_due(database):
                if outcome.skipped:
                    typer.echo(f"{outcome.name}: skipped (another scheduler is running it)")
                elif outcome.error:
                    failed = True
                    typer.echo(f"{outcome.name}: FAILED: {outcome.error}")
                else:
                    typer.echo(f"{outcome.name}: {outcome.summary}")
            if failed:
                raise typer.Exit(1)
            return
        stop = threading.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, lambda *_: stop.set())
        console.print("scheduler running (Ctrl-C to stop)")
        loop(database, stop)
    finally:
        lock.release()


@app.command("billing-run")
def billing_run(
    as_of: Annotated[str | None, typer.Option("--as-of", help="bill what is due up to this date (YYYY-MM-DD); default today")] = None,
    approve: Annotated[bool, typer.Option("--approve", help="approve every invoice generated")] = False,
) -> None:
    """Generate the due invoices, with a progress bar."""
    from licensing.invoicing.billing import run_billing

    now = clock.now()
    try:
        day = date.fromisoformat(as_of) if as_of else clock.local_date(now, get_settings().zone)
    except ValueError:
        console.print(f"[red]--as-of {as_of!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    with Progress(TextColumn("billing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("billing", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = run_billing(_database(), as_of=day, now=now, actor="cli", approve_all=approve, progress=advance)
    typer.echo(f"billing run as of {result.as_of}: {result.invoices_created} invoices created, {result.invoices_approved} approved")
    for failure in result.failed:
        console.print(f"licence {failure.licence_id} was not billed: {failure.error}", markup=False, highlight=False)
    if result.failed:
        console.print(f"{len(result.failed)} licences were not billed; the next run tries them again", markup=False, highlight=False)
        raise typer.Exit(1)


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Option(help="who or what uses the key")],
    role: Annotated[str, typer.Option(help="admin, billing, bookings or read")],
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="the instant the key stops working (RFC 3339 with an offset, e.g. 2027-12-31T23:59:59+01:00)")
    ] = None,
    account_ids: Annotated[
        list[str] | None, typer.Option("--account-id", help="limit a bookings or read key to this account (repeat for several)")
    ] = None,
) -> None:
    """Print a new API key (the last line is the key alone)."""
    from licensing.auth.services import create_api_key

    expiry = _instant_option(expires_at, "--expires-at") if expires_at is not None else None
    with _api_key_errors():
        with _database().write() as session:
            key, secret = create_api_key(session, name=name, role=role, at=clock.now(), expires_at=expiry, account_ids=account_ids or None)
    limits = "".join(
        [f", expiring at {key.expires_at.isoformat()}" if key.expires_at else "", f", limited to accounts {key.account_ids}" if key.account_ids else ""]
    )
    typer.echo(f"created API key {key.id} named {key.name!r} with role {key.role}{limits}; it is shown only once:")
    typer.echo(secret)


@api_key_app.command("list")
def api_key_list() -> None:
    """List the API keys, revoked and expired ones too (never their secrets)."""
    from licensing.auth.services import list_api_keys, status_of

    now = clock.now()
    with _api_key_errors():
        with _database().read() as session:
            keys = list_api_keys(session)
    if not keys:
        typer.echo("no API keys")
        return
    typer.echo("\t".join(("id", "name", "role", "status", "created_at", "expires_at", "accounts")))
    for key in keys:
        typer.echo(
            "\t".join((
                str(key.id), key.name, key.role, status_of(key, now), key.created_at.isoformat(),
                key.expires_at.isoformat() if key.expires_at else "-", key.account_ids or "all",
            ))
        )


@api_key_app.command("revoke")
def api_key_revoke(key_id: Annotated[str, typer.Argument(metavar="ID", help="the id of the key (see api-key list)")]) -> None:
    """Revoke an API key: every server refuses it from its next request on."""
    from licensing.auth.services import revoke_api_key

    now = clock.now()
    with _api_key_errors():
        with _database().write() as session:
            key = revoke_api_key(session, key_id, at=now)
    if key.revoked_at == now:
        typer.echo(f"revoked API key {key.id} named {key.name!r}")
    else:
        typer.echo(f"API key {key.id} named {key.name!r} was already revoked at {key.revoked_at.isoformat()}")


def _instant_option(value: str, option: str):
    from datetime import UTC, datetime

    try:
        instant = datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise ValueError
        return instant.astimezone(UTC)
    except (ValueError, OverflowError):
        console.print(f"{option} {value!r} is not an instant with an offset (RFC 3339, e.g. 2027-12-31T23:59:59+01:00)", markup=False, highlight=False)
        raise typer.Exit(2) from None


@contextmanager
def _api_key_errors():
    """A refused request or an unusable database: one line on stderr and a non-zero exit."""
    from sqlalchemy.exc import SQLAlchemyError

    from licensing.errors import LicensingError, NotFound

    try:
        yield
    except LicensingError as error:
        console.print(error.detail, markup=False, highlight=False)
        raise typer.Exit(1 if isinstance(error, NotFound) else 2) from None
    except SQLAlchemyError as error:
        reason = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
        console.print(f"the database cannot be used: {reason} (is it reachable and migrated? see licensing migrate)", markup=False, highlight=False)
        raise typer.Exit(1) from None


@invoice_app.command("pdf")
def invoice_pdf(
    number: Annotated[str, typer.Argument(help="the number of an invoice or credit note, e.g. INV-2027-000001")],
    output: Annotated[str | None, typer.Option("-o", "--output", help="file to write (default: NUMBER.pdf)")] = None,
) -> None:
    """Write the PDF of an invoice or credit note (PDF/A-3b with its e-invoice embedded)."""
    from pathlib import Path

    from licensing.documents.service import find_by_number, load_document, pdf_of
    from licensing.errors import LicensingError

    database = _database()
    try:
        with database.read() as session:
            kind, document_id = find_by_number(session, number)
        document = load_document(database, kind, document_id)
    except LicensingError as error:
        console.print(f"[red]{error.detail}[/red]")
        raise typer.Exit(2) from None
    target = Path(output or document.file_name)
    target.write_bytes(pdf_of(document))
    typer.echo(f"wrote {target}")


@app.command()
def demo() -> None:
    """Fill an empty database with a small realistic space."""
    from licensing.demo import load_demo

    summary = load_demo(_database(), now=clock.now())
    typer.echo(summary)


if __name__ == "__main__":  # pragma: no cover
    app()
