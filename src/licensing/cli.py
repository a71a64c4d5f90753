"""The ``licensing`` command line.

Every mistake ends a command with one line on stderr and a non-zero exit, never a traceback:
exit 2 for bad input or usage, 3 when another scheduler holds an SQLite database, 1 for anything
else. ``main`` (the console script and ``python -m licensing.cli``) turns whatever escapes a
command into that line; ``LICENSING_DEBUG=1`` adds the traceback (without local variables, so
never a secret held in one).

A command that uses the database first says which one on stderr (``database: <URL without its
password>``, with the absolute path of a relative SQLite file), then checks that it can be
reached and is at the latest schema before it does anything. Stdout carries only results, for
scripts (``api-key create``'s last line is the key alone).
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

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

if TYPE_CHECKING:
    from licensing.db import Database

DEBUG_VARIABLE = "LICENSING_DEBUG"

# Plain (click-style) help, not the rich panels: those show every option with a value type,
# flags too (`--approve <bool>`), although a flag takes no value (`--approve true` is refused).
_TYPER = {"no_args_is_help": True, "rich_markup_mode": None, "pretty_exceptions_enable": False}
app = typer.Typer(help="licensing: billing engine for coworking operators.", add_completion=False, **_TYPER)
api_key_app = typer.Typer(help="Manage API keys.", **_TYPER)
app.add_typer(api_key_app, name="api-key")
user_app = typer.Typer(help="Manage the users of the operator console.", **_TYPER)
app.add_typer(user_app, name="user")
invoice_app = typer.Typer(help="Invoice and credit note documents.", **_TYPER)
app.add_typer(invoice_app, name="invoice")
payments_app = typer.Typer(help="Money in: bank statements.", **_TYPER)
app.add_typer(payments_app, name="payments")
export_app = typer.Typer(help="The books as files accounting tools import.", **_TYPER)
app.add_typer(export_app, name="export")
journal_app = typer.Typer(help="The double-entry journal.", **_TYPER)
app.add_typer(journal_app, name="journal")
console = Console(stderr=True, soft_wrap=True)  # messages are not wrapped: logs and scripts read them whole


def _say(line: str) -> None:
    """One line on stderr, as it is (no markup, no highlighting)."""
    console.print(line, markup=False, highlight=False)


def _fail(line: str, code: int = 1) -> NoReturn:
    _say(_scrub(line))
    raise typer.Exit(code)


def _debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no", "off")


# ------------------------------------------------------------------------------------ logging


class _Stderr(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is at each record (a test runner swaps it per command)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _OneLine(logging.Formatter):
    """A record without its traceback, unless LICENSING_DEBUG is set."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and not _debugging():
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
            return f"{super().format(record)} (set {DEBUG_VARIABLE}=1 to see the traceback)"
        return super().format(record)


_HANDLER = "licensing.cli"


def _configure_logging(*, service: bool = False) -> None:
    """A short command logs warnings and errors only, one line each. A service (``serve``, the
    long-running ``scheduler``) also logs licensing's own INFO lines, with tracebacks: its log is
    where an operator looks for them. Third-party INFO lines (factur-x, drafthorse, weasyprint)
    never show."""
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if handler.get_name() == _HANDLER]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.set_name(_HANDLER)
    if service:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    else:
        handler.setFormatter(_OneLine("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("licensing").setLevel(logging.INFO if service else logging.NOTSET)


@contextmanager
def _quiet(name: str):
    """Without the log lines of ``name`` (unless LICENSING_DEBUG is set): for a command that says
    the same itself, e.g. each licence not billed, whose log line would repeat it."""
    logger = logging.getLogger(name)
    level = logger.level
    if not _debugging():
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# ------------------------------------------------------------------------------------ settings


@app.callback()
def check_settings() -> None:
    """Every setting is checked before any command runs: a bad one stops the command with a line
    naming it (exit 2), instead of a failure later, in the middle of the work."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from licensing.config import setting_errors

    _configure_logging()
    get_settings.cache_clear()
    try:
        get_settings()
        from licensing.scheduler import schedules

        schedules()
    except ValidationError as error:
        for line in setting_errors(error):
            _say(f"invalid setting {line}")
        raise typer.Exit(2) from None
    except (SettingsError, ValueError) as error:
        _say(f"invalid setting: {error}")
        raise typer.Exit(2) from None


# ------------------------------------------------------------------------------------ the database


def _url() -> str:
    from licensing.db import normalise_url

    return normalise_url(get_settings().database_url)


def _is_sqlite(url: str) -> bool:
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_file(url: str) -> Path | None:
    """The file of an SQLite database (None: PostgreSQL, or SQLite in memory)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:") or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def _shown(url: str) -> str:
    """The URL without its password; a relative SQLite file also with its absolute path."""
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    path = _sqlite_file(url)
    if path is not None and not path.is_absolute():
        shown += f" ({path.absolute()})"
    return shown


def _scrub(text: str) -> str:
    """``text`` without the database password, should a driver's message quote it."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(_url()).password
    except Exception:  # noqa: BLE001 - no settings, no URL: nothing to hide
        return text
    return text.replace(str(password), "***") if password else text


def _first_line(error: BaseException) -> str:
    """The first line of what an error says (a driver's own message rather than SQLAlchemy's
    wrapping, whose later lines quote the statement and its parameters)."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return _scrub(lines[0].strip()[:500]) if lines else type(cause).__name__


def _no_schema(url: str) -> str:
    return f"the database at {_shown(url)} has no schema: run `licensing migrate`"


def _revision(url: str) -> str | None:
    """Connect once (a connection of its own, given up after 10 s on PostgreSQL) and read the
    schema's Alembic revision; an unreachable or unusable database ends the command."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from licensing.db import is_outage
    from licensing.migrate import revision_of

    path = _sqlite_file(url)
    if path is not None and not path.absolute().parent.is_dir():
        _fail(f"the database at {_shown(url)} cannot be opened: the folder {path.absolute().parent} does not exist")
    engine = create_engine(url, poolclass=NullPool, connect_args={} if _is_sqlite(url) else {"connect_timeout": 10})
    try:
        with engine.connect() as connection:
            return revision_of(connection)
    except SQLAlchemyError as error:
        verb = "reached" if is_outage(error) else "used"
        _fail(f"the database at {_shown(url)} cannot be {verb}: {_first_line(error)}")
    finally:
        engine.dispose()


def _check_schema(url: str, revision: str | None, *, latest: bool) -> None:
    from licensing.migrate import head_revision, known_revisions

    if revision is not None and revision not in known_revisions():
        _fail(
            f"the database at {_shown(url)} has schema revision {revision}, which this version of licensing does not know "
            "(a newer version migrated it): use that version or a later one"
        )
    if not latest:
        return
    if revision is None:
        _fail(_no_schema(url))
    head = head_revision()
    if revision != head:
        _fail(
            f"the database at {_shown(url)} has an older schema (revision {revision}; "
            f"this version of licensing needs {head}): run `licensing migrate`"
        )


def _announce() -> str:
    url = _url()
    _say(f"database: {_shown(url)}")
    return url


def _database() -> Database:
    """The database of the settings, once it is known to be reachable and at the latest schema
    (said on stderr first: the default SQLite path is relative to the working directory). The
    parts are connected first (``licensing.bootstrap``): an approval mails its document at once."""
    from licensing.bootstrap import connect
    from licensing.db import get_database

    connect()

    url = _announce()
    path = _sqlite_file(url)
    if path is not None and path.absolute().parent.is_dir() and not path.exists():
        _fail(_no_schema(url))  # and no empty file left behind by connecting to it
    _check_schema(url, _revision(url), latest=True)
    return get_database(get_settings().database_url)


# ------------------------------------------------------------------------------------ commands


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from licensing.migrate import upgrade

    url = _announce()
    _check_schema(url, _revision(url), latest=False)
    typer.echo(str(upgrade(get_settings().database_url)))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, help="worker processes; more than one needs PostgreSQL and runs no scheduler (run `licensing scheduler`)"),
    ] = 1,
    no_scheduler: Annotated[bool, typer.Option("--no-scheduler", help="do not run the scheduled jobs in this process")] = False,
) -> None:
    """Serve the HTTP API (with the scheduler unless --no-scheduler or several workers)."""
    import uvicorn

    if workers > 1 and _is_sqlite(_url()):
        _fail(f"--workers {workers} needs PostgreSQL: the database at {_shown(_url())} is SQLite, which one process serves", 2)
    database = _database()
    _configure_logging(service=True)
    _announce_pages(database, host, port)
    if workers > 1:
        if not no_scheduler:
            _say("the scheduler does not run in the workers: run it as its own process, `licensing scheduler`")
        # Workers are processes of their own: uvicorn imports the app factory in each.
        uvicorn.run("licensing.api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")
        return
    from licensing.api.app import create_app

    application = create_app(database)
    if not no_scheduler:
        from licensing.scheduler import SchedulerAlreadyRunning, start_in_background

        try:
            start_in_background(database)
        except SchedulerAlreadyRunning as error:
            _fail(str(error), 3)
    uvicorn.run(application, host=host, port=port, log_level="info")


def _announce_pages(database: Database, host: str, port: int) -> None:
    """Where the browser's pages are, and how to make the first console user when there is none."""
    from sqlmodel import select

    from licensing.web.models import ConsoleUser

    shown_host = f"[{host}]" if ":" in host else host
    _say(f"operator console: http://{shown_host}:{port}/console   member portal: http://{shown_host}:{port}/portal   API docs: http://{shown_host}:{port}/docs")
    with database.read() as session:
        if session.exec(select(ConsoleUser.id)).first() is None:
            _say("no console user yet: create one with `licensing user create --email you@example.com --role admin`")


@app.command()
def scheduler(
    once: Annotated[bool, typer.Option("--once", help="run every job whose scheduled moment has passed since its last run, then exit")] = False,
) -> None:
    """Run the scheduled jobs (billing, renewals, expiry, notices, holds, mail, webhooks)."""
    import signal
    import threading

    from licensing.scheduler import (
        JobOutcome,
        ProcessLock,
        SchedulerAlreadyRunning,
        loop,
        run_due,
    )

    database = _database()
    # --once prints each outcome on stdout (for cron) and logs only warnings and errors; the
    # long-running scheduler logs its outcomes instead.
    _configure_logging(service=not once)
    lock = ProcessLock(database)
    try:
        lock.acquire()
    except SchedulerAlreadyRunning as error:
        _fail(str(error), 3)
    try:
        if once:
            failed = []

            def report(outcome: JobOutcome) -> None:
                if outcome.skipped:
                    typer.echo(f"{outcome.name}: skipped (another scheduler is running it)")
                elif outcome.error:
                    failed.append(outcome.name)
                    typer.echo(f"{outcome.name}: FAILED: {_scrub(outcome.error.splitlines()[0] if outcome.error else '')}")
                else:
                    typer.echo(f"{outcome.name}: {outcome.summary}")

            run_due(database, on_outcome=report)
            if failed:
                raise typer.Exit(1)
            return
        stop = threading.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, lambda *_: stop.set())
        _say("scheduler running (Ctrl-C to stop)")
        loop(database, stop)
    finally:
        lock.release()


@app.command("billing-run")
def billing_run(
    as_of: Annotated[str | None, typer.Option("--as-of", help="bill what is due up to this date (YYYY-MM-DD); default today")] = None,
    approve: Annotated[bool, typer.Option("--approve", help="approve every invoice generated")] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="processes billing side by side, each claiming batches of licences (PostgreSQL)"),
    ] = 1,
) -> None:
    """Generate the due invoices, with a progress bar."""
    from licensing.bootstrap import connect
    from licensing.invoicing.billing import BillingWorkersFailed, run_billing, run_billing_in_workers

    if workers > 1 and _is_sqlite(_url()):
        _fail(f"--workers {workers} needs PostgreSQL: the database at {_shown(_url())} is SQLite, which takes one writer at a time", 2)
    now = clock.now()
    try:
        day = date.fromisoformat(as_of) if as_of else clock.local_date(now, get_settings().zone)
    except ValueError:
        _fail(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)", 2)
    database = _database()
    # The bar is for a terminal: piped or in cron, stderr carries only the lines below.
    bar = Progress(TextColumn("billing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=not console.is_terminal)
    with _quiet("licensing.billing"), bar as progress:
        task = progress.add_task("billing", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        if workers == 1:
            result = run_billing(database, as_of=day, now=now, actor="cli", approve_all=approve, progress=advance)
        else:
            try:
                result = run_billing_in_workers(
                    database, workers, as_of=day, now=now, actor="cli", approve_all=approve, progress=advance, setup=connect
                )
            except BillingWorkersFailed as error:
                progress.stop()
                _say(f"a billing worker stopped: {error}; {error.result.invoices_created} invoices were created before it did")
                _say("run the same command again: what is billed is not billed twice")
                raise typer.Exit(1) from error
    typer.echo(f"billing run as of {result.as_of}: {result.invoices_created} invoices created, {result.invoices_approved} approved")
    for failure in result.failed:
        _say(f"licence {failure.licence_id} was not billed: {failure.error}")
    if result.failed:
        _say(f"{len(result.failed)} licences were not billed; the next run tries them again")
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
    from licensing.db.unit_of_work import run

    expiry = _instant_option(expires_at, "--expires-at") if expires_at is not None else None
    database = _database()
    with _api_key_errors():
        key, secret = run(
            database,
            lambda session: create_api_key(session, name=name, role=role, at=clock.now(), expires_at=expiry, account_ids=account_ids or None),
        )
    limits = "".join(
        [
            f", expiring at {key.expires_at.isoformat()}" if key.expires_at else "",
            f", limited to accounts {key.account_ids}" if key.account_ids else "",
        ]
    )
    typer.echo(f"created API key {key.id} named {key.name!r} with role {key.role}{limits}; it is shown only once:")
    typer.echo(secret)


@api_key_app.command("list")
def api_key_list() -> None:
    """List the API keys, revoked and expired ones too (never their secrets)."""
    from licensing.auth.services import list_api_keys, status_of

    now = clock.now()
    database = _database()
    with _api_key_errors(), database.read() as session:
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
    from licensing.db.unit_of_work import run

    now = clock.now()
    database = _database()
    with _api_key_errors():
        key = run(database, lambda session: revoke_api_key(session, key_id, at=now))
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
        _fail(f"{option} {value!r} is not an instant with an offset (RFC 3339, e.g. 2027-12-31T23:59:59+01:00)", 2)


@contextmanager
def _api_key_errors():
    """A refused request (exit 2; 1 for an unknown key) or an unusable database: one line on stderr."""
    from sqlalchemy.exc import SQLAlchemyError

    from licensing.errors import LicensingError, NotFound

    try:
        yield
    except LicensingError as error:
        _fail(error.detail, 1 if isinstance(error, NotFound) else 2)
    except SQLAlchemyError as error:
        line, code = explain(error)
        _fail(line, code)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="the user's e-mail address (they sign in with it)")],
    role: Annotated[str, typer.Option(help="admin, billing, bookings or read (the API's roles)")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input (its first line)")] = False,
) -> None:
    """Create a user of the operator console (/console). Without --password-stdin the password
    is asked for twice, without echo."""
    from licensing.db.unit_of_work import run
    from licensing.web.users import create_user

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    database = _database()
    with _api_key_errors():
        user = run(database, lambda session: create_user(session, email=email, role=role, password=password, at=clock.now()))
    typer.echo(f"created console user {user.id} {user.email} with role {user.role}: sign in at /console/login")


@invoice_app.command("pdf")
def invoice_pdf(
    number: Annotated[str, typer.Argument(help="the number of an invoice or credit note, e.g. INV-2027-000001")],
    output: Annotated[str | None, typer.Option("-o", "--output", help="file to write (default: NUMBER.pdf)")] = None,
) -> None:
    """Write the PDF of an invoice or credit note (PDF/A-3b with its e-invoice embedded)."""
    from licensing.documents.service import find_by_number, load_document, pdf_of
    from licensing.errors import LicensingError

    database = _database()
    try:
        with database.read() as session:
            kind, document_id = find_by_number(session, number)
        document = load_document(database, kind, document_id)
    except LicensingError as error:
        _fail(error.detail, 2)
    target = Path(output or document.file_name)
    if not target.absolute().parent.is_dir():
        _fail(f"cannot write {target}: the folder {target.absolute().parent} does not exist", 2)
    target.write_bytes(pdf_of(document))
    typer.echo(f"wrote {target}")


@payments_app.command("import")
def payments_import(file: Annotated[str, typer.Argument(metavar="FILE", help="a camt.053 bank statement (XML)")]) -> None:
    """Import a camt.053 bank statement: credit entries matched to invoices become payments, once each."""
    from licensing.db.unit_of_work import run
    from licensing.errors import LicensingError
    from licensing.invoicing.statements import import_statement

    path = Path(file)
    if not path.is_file():
        _fail(f"{file} is not a file", 2)
    content = path.read_bytes()
    database = _database()
    try:
        result = run(database, lambda session: import_statement(session, content, now=clock.now(), actor="cli"))
    except LicensingError as error:
        _fail(f"{file}: {error.detail} (nothing was recorded)", 2)
    typer.echo(f"{file}: {len(result.matched)} matched, {len(result.unmatched)} unmatched, {result.already_imported} already imported")
    for entry in result.unmatched:
        typer.echo(f"unmatched\t{entry.booked_on}\t{entry.amount} {entry.currency}\t{entry.reference or entry.remittance or '-'}\t{entry.reason}")


@export_app.command("journal")
def export_journal(
    start: Annotated[str, typer.Option("--from", help="first day exported (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option("--to", help="last day exported (YYYY-MM-DD)")],
    format: Annotated[str, typer.Option("--format", help="csv, datev, xero, quickbooks or beancount")],  # noqa: A002 - the contract's name
    output: Annotated[str | None, typer.Option("-o", "--output", help="file to write (default: the format's own file name)")] = None,
) -> None:
    """Write the journal entries dated FROM to TO in an export format (docs/accounting.md)."""
    from licensing.books.files import journal_file
    from licensing.credits.expiry import sweep_expiries
    from licensing.errors import LicensingError

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        _fail("--from and --to are dates written YYYY-MM-DD", 2)
    database = _database()
    sweep_expiries(database, now=clock.now())  # expiries post when recorded: record those due first
    try:
        with database.read() as session:
            file = journal_file(session, first, last, format, get_settings())
    except LicensingError as error:
        _fail(error.detail, 2)
    target = Path(output or file.filename)
    if not target.absolute().parent.is_dir():
        _fail(f"cannot write {target}: the folder {target.absolute().parent} does not exist", 2)
    target.write_bytes(file.content)
    typer.echo(f"wrote {target}")


@journal_app.command("rebuild")
def journal_rebuild(
    replace: Annotated[bool, typer.Option("--replace", help="delete the journal there is and post it again (refused after a lock date)")] = False,
) -> None:
    """Build the journal of a database from its invoices, ledger and payments (a database made
    before the journal existed: its entries as they would have posted)."""
    from licensing.db.unit_of_work import run
    from licensing.errors import LicensingError
    from licensing.invoicing.journal import rebuild

    database = _database()
    try:
        posted = run(database, lambda session: rebuild(session, replace=replace))
    except LicensingError as error:
        _fail(error.detail, 2)
    typer.echo(f"posted {posted} journal entries")


@app.command()
def demo() -> None:
    """Fill an empty database with a small realistic space (creating or upgrading its schema first)."""
    from licensing.db import get_database
    from licensing.demo import DatabaseNotEmpty, load_demo
    from licensing.migrate import head_revision, upgrade

    url = _announce()
    revision = _revision(url)
    _check_schema(url, revision, latest=False)
    if revision != head_revision():
        typer.echo(str(upgrade(get_settings().database_url)))
    try:
        summary = load_demo(get_database(get_settings().database_url), now=clock.now())
    except DatabaseNotEmpty as error:
        _fail(error.detail, 1)
    typer.echo(summary)


# ------------------------------------------------------------------------------------ main


def explain(error: BaseException) -> tuple[str, int]:
    """The line and exit code of an error that escaped a command."""
    from licensing.db import is_outage
    from licensing.errors import LicensingError, ValidationFailed

    if isinstance(error, LicensingError):
        return _scrub(error.detail), 2 if isinstance(error, ValidationFailed) else 1
    try:
        url = _url()
    except Exception:  # noqa: BLE001 - settings already checked; a placeholder if not
        url = "sqlite://"
    if _missing_table(error):
        return _no_schema(url), 1
    if isinstance(error, Exception) and is_outage(error):
        return f"the database at {_shown(url)} cannot be reached: {_first_line(error)}", 1
    if isinstance(error, OSError) and error.filename is not None:
        return _scrub(f"{error.strerror or type(error).__name__}: {error.filename}"), 1
    hint = "" if _debugging() else f" (set {DEBUG_VARIABLE}=1 to see the traceback)"
    return f"internal error: {type(error).__name__}: {_first_line(error)}{hint}", 1


def _missing_table(error: BaseException) -> bool:
    cause = getattr(error, "orig", None)
    if cause is None:
        return False
    try:
        from psycopg.errors import UndefinedTable
    except ImportError:  # pragma: no cover - psycopg is a dependency
        UndefinedTable = ()  # noqa: N806
    return isinstance(cause, UndefinedTable) or str(cause).startswith("no such table")


def _click_exceptions():
    try:
        from typer._click import exceptions  # Typer >= 0.22 carries its own Click
    except ImportError:  # pragma: no cover - older Typer on Click
        from click import exceptions
    return exceptions


def run(args: list[str] | None = None) -> int:
    """Run the command line and return its exit code, every failure said in one line."""
    exceptions = _click_exceptions()
    no_args_is_help = getattr(exceptions, "NoArgsIsHelpError", ())
    try:
        result = app(args=args, prog_name="licensing", standalone_mode=False)
    except no_args_is_help as error:
        error.show()  # the help, on stderr
        return error.exit_code
    except exceptions.UsageError as error:
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        _say(f"{error.format_message()}{hint}")
        return error.exit_code
    except exceptions.ClickException as error:
        _say(error.format_message())
        return error.exit_code
    except (typer.Abort, getattr(exceptions, "Abort", typer.Abort), EOFError):
        _say("aborted")
        return 1
    except Exception as error:  # noqa: BLE001 - the last resort: one line, never a traceback
        if _debugging():
            import traceback

            traceback.print_exception(error)
        line, code = explain(error)
        _say(line)
        return code
    return result if isinstance(result, int) else 0


def main() -> None:
    """The console script ``licensing``."""
    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover
    main()
