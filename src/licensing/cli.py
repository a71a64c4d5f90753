"""The ``licensing`` command line."""

from __future__ import annotations

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


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Option(help="who or what uses the key")],
    role: Annotated[str, typer.Option(help="admin, billing, bookings or read")],
) -> None:
    """Print a new API key (the last line is the key alone)."""
    from licensing.auth.services import create_api_key
    from licensing.errors import LicensingError

    try:
        with _database().write() as session:
            key, secret = create_api_key(session, name=name, role=role, at=clock.now())
    except LicensingError as error:
        console.print(f"[red]{error.detail}[/red]")
        raise typer.Exit(2) from None
    typer.echo(f"created API key {key.id} named {key.name!r} with role {key.role}; it is shown only once:")
    typer.echo(secret)


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
