"""The command line never shows a traceback (issue 12): every mistake is one line on stderr and a
non-zero exit (2 for bad input or usage, 1 otherwise), after the line that says which database
the command uses.

Most commands run in this process through ``licensing.cli.run`` (the console script's body);
those that check what a real process prints (logging, ``python -m licensing.cli``) run as
subprocesses.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from licensing.config import get_settings
from licensing.migrate import head_revision, upgrade
from licensing.scheduler import JOBS
from tests import factories
from tests.conftest import POSTGRES_SKIP, POSTGRES_URL, new_postgres_database


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """stderr after the line naming the database."""
        lines = self.stderr.strip().splitlines()
        assert lines and lines[0].startswith("database: "), self.stderr
        return lines[1:]


@pytest.fixture
def cli(monkeypatch, capsys):
    """``cli(*arguments, url=...)``: the command line, in this process."""
    from licensing import cli
    from licensing.db import get_database

    urls = set()

    def run(*arguments: str, url: str, **environment: str) -> Result:
        monkeypatch.setenv("LICENSING_DATABASE_URL", url)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        urls.add(url)
        capsys.readouterr()
        code = cli.run(list(arguments))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    yield run
    for url in urls:
        get_database(url).dispose()


def licensing_process(*arguments: str, url: str, cwd: Path | None = None, **environment: str) -> Result:
    """``python -m licensing.cli ...`` as its own process."""
    result = subprocess.run(
        [sys.executable, "-m", "licensing.cli", *arguments], capture_output=True, text=True, timeout=300, cwd=cwd,
        env=os.environ | {"LICENSING_DATABASE_URL": url, **environment},
    )
    return Result(result.returncode, result.stdout, result.stderr)


def closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    """A database without any table: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    with new_postgres_database("t_empty") as url:
        yield url


DATABASE_COMMANDS = [
    ["api-key", "create", "--name", "ops", "--role", "admin"],
    ["api-key", "list"],
    ["api-key", "revoke", "1"],
    ["billing-run"],
    ["invoice", "pdf", "INV-2027-000001"],
    ["scheduler", "--once"],
    ["migrate"],
    ["demo"],
]


def assert_one_line(result: Result, code: int, *expected: str) -> str:
    assert result.code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    (line,) = result.lines
    for part in expected:
        assert part in line, line
    return line


# ------------------------------------------------------------------------------- unreachable


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_an_unreachable_database_is_one_line_and_exit_1(cli, tmp_path, command):
    port = closed_port()
    down = cli(*command, url=f"postgresql://licensing:hunter2@127.0.0.1:{port}/licensing")
    line = assert_one_line(
        down, 1, f"the database at postgresql+psycopg://licensing:***@127.0.0.1:{port}/licensing cannot be reached", "Connection refused"
    )
    assert "hunter2" not in down.stderr and len(line) < 300

    missing = tmp_path / "no" / "such" / "folder"
    folder = cli(*command, url=f"sqlite:///{missing / 'licensing.db'}")
    assert_one_line(folder, 1, "cannot be opened", f"the folder {missing} does not exist")
    assert not (tmp_path / "no").exists()


def test_an_unreachable_database_is_one_line_in_a_process_of_its_own(tmp_path):
    """The console script's path end to end: ``python -m licensing.cli``, no traceback, no
    SQLAlchemy background lines."""
    result = licensing_process("api-key", "create", "--name", "ops", "--role", "admin", url=f"postgresql://postgres@127.0.0.1:{closed_port()}/x")
    assert_one_line(result, 1, "cannot be reached: connection failed")
    assert len(result.stderr.splitlines()) == 2


# ------------------------------------------------------------------------------- schema


@pytest.mark.parametrize("command", [command for command in DATABASE_COMMANDS if command[0] not in ("migrate", "demo")], ids=" ".join)
def test_a_database_without_schema_says_to_migrate(cli, empty_database_url, command):
    result = cli(*command, url=empty_database_url)

    line = assert_one_line(result, 1, "has no schema: run `licensing migrate`")
    assert line.startswith("the database at ")
    assert "key_hash" not in result.stderr and "lk_" not in result.stderr
    if empty_database_url.startswith("sqlite"):
        assert not Path(empty_database_url.removeprefix("sqlite:///")).exists(), "no empty file left behind"


def test_a_database_without_schema_says_to_migrate_in_a_process_of_its_own(tmp_path):
    """``api-key create`` on a database without tables once printed a traceback with the key's hash."""
    empty = tmp_path / "empty.db"
    empty.touch()
    result = licensing_process("api-key", "create", "--name", "ops", "--role", "admin", url=f"sqlite:///{empty}")
    assert_one_line(result, 1, f"the database at sqlite:///{empty} has no schema: run `licensing migrate`")
    assert "key_hash" not in result.stderr


@pytest.mark.parametrize("command", [["api-key", "list"], ["billing-run"], ["scheduler", "--once"]], ids=" ".join)
def test_an_older_schema_says_to_migrate(cli, empty_database_url, command):
    upgrade(empty_database_url, "0002")

    result = cli(*command, url=empty_database_url)

    assert_one_line(result, 1, f"has an older schema (revision 0002; this version of licensing needs {head_revision()}): run `licensing migrate`")


def test_a_schema_newer_than_this_version_is_refused_even_by_migrate(cli, empty_database_url):
    upgrade(empty_database_url)
    engine = create_engine(empty_database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    for command in (["migrate"], ["api-key", "list"]):
        assert_one_line(cli(*command, url=empty_database_url), 1, "has schema revision 9999, which this version of licensing does not know")


def test_migrate_says_what_it_did(cli, empty_database_url, tmp_path):
    head = head_revision()

    created = cli("migrate", url=empty_database_url)
    assert (created.code, created.stdout) == (0, f"created the schema (revision {head})\n"), created.stderr
    again = cli("migrate", url=empty_database_url)
    assert (again.code, again.stdout) == (0, f"the schema is already at the latest revision ({head})\n"), again.stderr

    older = f"sqlite:///{tmp_path / 'older.db'}"
    upgrade(older, "0002")
    upgraded = cli("migrate", url=older)
    assert (upgraded.code, upgraded.stdout) == (0, f"upgraded from 0002 to {head}\n"), upgraded.stderr


# ------------------------------------------------------------------------------- demo


def test_demo_migrates_a_new_database_and_refuses_one_with_data(cli, empty_database_url):
    first = cli("demo", url=empty_database_url)

    assert first.code == 0, first.stderr
    assert first.stdout.splitlines()[0] == f"created the schema (revision {head_revision()})"
    assert first.stdout.splitlines()[-1].startswith("demo space loaded: 2 accounts, 2 licences")
    listed = cli("api-key", "list", url=empty_database_url)
    assert (listed.code, listed.stdout) == (0, "no API keys\n")

    second = cli("demo", url=empty_database_url)
    assert_one_line(second, 1, "the database already holds accounts: the demo only fills an empty database")


def test_demo_refuses_a_database_with_a_catalogue_only(cli, database, database_url):
    factories.credit_pack(database)

    assert_one_line(cli("demo", url=database_url), 1, "the database already holds products")


# ------------------------------------------------------------------------------- which database


def test_commands_say_which_database_they_use(tmp_path):
    url = "sqlite:///./licensing.db"
    migrated = licensing_process("migrate", url=url, cwd=tmp_path)
    assert migrated.code == 0, migrated.stderr
    assert migrated.stderr == f"database: sqlite:///./licensing.db ({tmp_path / 'licensing.db'})\n"

    created = licensing_process("api-key", "create", "--name", "ops", "--role", "admin", url=url, cwd=tmp_path)

    assert created.code == 0, created.stderr
    assert created.stderr == f"database: sqlite:///./licensing.db ({tmp_path / 'licensing.db'})\n"
    secret = created.stdout.splitlines()[-1]
    assert re.fullmatch(r"\S+", secret) and created.stdout.startswith("created API key 1 named 'ops'")


def test_a_postgresql_database_is_named_without_its_password(cli, database, database_url):
    if database.is_sqlite:
        pytest.skip("PostgreSQL URLs carry passwords")
    with_password = database_url.replace("postgres@", "postgres:not-the-password@", 1)

    result = cli("api-key", "list", url=with_password)

    assert result.code == 0, result.stderr
    assert result.stderr == f"database: {database_url.replace('postgres@', 'postgres:***@', 1)}\n"


# ------------------------------------------------------------------------------- flags


def test_boolean_options_are_flags(cli, database, database_url):
    for command, flag in ((["billing-run"], "--approve"), (["scheduler"], "--once"), (["serve"], "--no-scheduler")):
        shown = cli(*command, "--help", url=database_url)
        assert shown.code == 0
        (line,) = [line for line in shown.stdout.splitlines() if line.strip().startswith(flag)]
        assert "<bool>" not in shown.stdout and re.match(rf"\s+{flag}\s{{2,}}\w", line), shown.stdout

    refused = cli("billing-run", "--approve", "true", url=database_url)
    assert (refused.code, refused.stdout) == (2, "")
    assert refused.stderr == "Got unexpected extra argument(s) (true) (see `licensing billing-run --help`)\n"

    acme = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, acme.id, date(2026, 1, 1))
    factories.service(database, licence.id, desk.id, from_date=date(2026, 1, 1))
    billed = cli("billing-run", "--as-of", "2026-01-01", "--approve", url=database_url)
    assert (billed.code, billed.stdout) == (0, "billing run as of 2026-01-01: 1 invoices created, 1 approved\n"), billed.stderr


def test_a_usage_mistake_is_one_line_and_exit_2(cli, database_url):
    misspelt = cli("billing-run", "--aprove", url=database_url)
    assert (misspelt.code, misspelt.stdout) == (2, "")
    assert misspelt.stderr == "No such option: --aprove (Possible options: --approve) (see `licensing billing-run --help`)\n"

    bad_date = cli("billing-run", "--as-of", "yesterday", url=database_url)
    assert (bad_date.code, bad_date.stderr) == (2, "--as-of 'yesterday' is not a date (YYYY-MM-DD)\n")


# ------------------------------------------------------------------------------- scheduler


def test_scheduler_once_prints_each_result_once(database, database_url, tmp_path):
    """Bills, approves and mails an invoice (its PDF and e-invoice made by factur-x, which logs
    INFO lines): each job's outcome is printed once, on stdout, and nothing is logged."""
    acme = factories.account(database, address="12 Harbour Road\n75011 Paris", country="FR")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    licence = factories.licence(database, acme.id, date(2026, 9, 1), date(2026, 11, 30), auto_renew=True, auto_approve=True)
    factories.service(database, licence.id, pack.id, from_date=date(2026, 9, 1), to_date=date(2026, 11, 30))

    result = licensing_process(
        "scheduler", "--once", url=database_url,
        LICENSING_MAIL_ON_APPROVAL="true", LICENSING_MAIL_OUTBOX=str(tmp_path / "outbox"),
    )

    assert result.code == 0, result.stdout + result.stderr
    assert [line.split(":", 1)[0] for line in result.stdout.splitlines()] == list(JOBS)
    assert re.search(r"^deliveries: [1-9]\d* mails sent", result.stdout, re.MULTILINE), result.stdout
    assert result.lines == [], result.stderr  # no log lines: neither licensing's INFO nor factur-x's


# ------------------------------------------------------------------------------- serve


def test_billing_run_with_several_workers_needs_postgresql_and_bills_every_licence_once(cli, database, database_url):
    from tests import factories

    desk = factories.plain_service(database)
    for n in range(5):
        licence = factories.licence(database, factories.account(database, name=f"Member {n}").id, date(2027, 1, 1))
        factories.service(database, licence.id, desk.id)

    result = cli("billing-run", "--as-of", "2027-01-01", "--approve", "--workers", "2", url=database_url)

    if database.is_sqlite:
        assert (result.code, result.stdout) == (2, "")
        assert result.stderr == f"--workers 2 needs PostgreSQL: the database at {database_url} is SQLite, which takes one writer at a time\n"
        return
    assert result.code == 0, result.stderr
    assert result.stdout == "billing run as of 2027-01-01: 5 invoices created, 5 approved\n"


def test_serve_with_several_workers_needs_postgresql(cli, database, database_url, monkeypatch):
    import uvicorn

    import licensing.scheduler

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda *arguments, **options: served.append((arguments, options)))
    monkeypatch.setattr(licensing.scheduler, "start_in_background", lambda *_: pytest.fail("no scheduler in the workers"))

    result = cli("serve", "--workers", "3", "--port", "8123", url=database_url)

    if database.is_sqlite:
        assert (result.code, result.stdout, served) == (2, "", [])
        assert result.stderr == f"--workers 3 needs PostgreSQL: the database at {database_url} is SQLite, which one process serves\n"
        return
    assert result.code == 0, result.stderr
    assert served == [(("licensing.api.app:create_app",), {"factory": True, "host": "127.0.0.1", "port": 8123, "workers": 3, "log_level": "info"})]
    assert result.lines == [
        "operator console: http://127.0.0.1:8123/console   member portal: http://127.0.0.1:8123/portal   API docs: http://127.0.0.1:8123/docs",
        "no console user yet: create one with `licensing user create --email you@example.com --role admin`",
        "the scheduler does not run in the workers: run it as its own process, `licensing scheduler`",
    ]


def test_serve_refuses_zero_workers(cli, database_url):
    result = cli("serve", "--workers", "0", url=database_url)
    assert (result.code, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1 and "--workers" in result.stderr


# ------------------------------------------------------------------------------- the last resort


def test_an_unexpected_error_is_one_line_unless_debugging(cli, database_url, monkeypatch):
    import licensing.auth.services

    def broken(_session):
        raise RuntimeError("the index is corrupt\nsecret detail on the second line")

    monkeypatch.setattr(licensing.auth.services, "list_api_keys", broken)

    result = cli("api-key", "list", url=database_url)

    assert (result.code, result.stdout) == (1, "")
    assert result.lines == ["internal error: RuntimeError: the index is corrupt (set LICENSING_DEBUG=1 to see the traceback)"]

    debugging = cli("api-key", "list", url=database_url, LICENSING_DEBUG="1")

    assert debugging.code == 1
    assert "Traceback (most recent call last)" in debugging.stderr and "secret detail" in debugging.stderr
    assert debugging.stderr.splitlines()[-1] == "internal error: RuntimeError: the index is corrupt"


def test_a_refused_request_is_its_detail(cli, database_url, monkeypatch):
    import licensing.invoicing.billing
    from licensing.errors import Conflict

    def refused(*_arguments, **_options):
        raise Conflict("another billing run holds the batch")

    monkeypatch.setattr(licensing.invoicing.billing, "run_billing", refused)

    assert_one_line(cli("billing-run", url=database_url), 1, "another billing run holds the batch")
