"""Fixtures: every database test runs on SQLite and on PostgreSQL.

``scripts/test`` starts a throwaway PostgreSQL cluster and exports
``LICENSING_TEST_POSTGRES_URL``; without it the PostgreSQL half is skipped with the reason.
The schema comes from the Alembic migrations (never ``create_all``): migrated once into a
template per session, then copied per test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from licensing.bootstrap import connect
from licensing.config import get_settings
from licensing.db import Database
from licensing.migrate import upgrade

# The shared helpers assert too (a response's status, a billing run's counts): pytest rewrites
# their asserts as it does a test module's, so that a failure there shows the values.
pytest.register_assert_rewrite("tests.support")

# The suite is an entry point, as the API and the command line are: the parts follow each
# other's events (an approval queues its mail once it has committed).
connect()

POSTGRES_URL = os.environ.get("LICENSING_TEST_POSTGRES_URL")
POSTGRES_SKIP = os.environ.get("LICENSING_TEST_POSTGRES_SKIP") or (
    "LICENSING_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts PostgreSQL"
)
TEMPLATE = f"licensing_template_{os.getpid()}"


def pytest_report_header(config):
    return f"databases: sqlite, postgresql ({POSTGRES_URL or 'skipped: ' + POSTGRES_SKIP})"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE}"))
        connection.execute(text(f"CREATE DATABASE {TEMPLATE}"))
    admin.dispose()
    upgrade(_with_database(POSTGRES_URL, TEMPLATE))
    yield TEMPLATE
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))
    admin.dispose()


def _admin_engine():
    """An engine on ``LICENSING_TEST_POSTGRES_URL`` that creates and drops databases (autocommit)."""
    return create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def new_postgres_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """The URL of a new PostgreSQL database ``<prefix>_<random>``, a copy of ``template`` or empty
    without one; dropped (WITH (FORCE)) on leaving."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}" if template else f"CREATE DATABASE {name}"))
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "licensing.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with new_postgres_database("t", template=request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture
def database(database_url) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture(autouse=True)
def operator_settings(monkeypatch) -> Iterator[None]:
    """Each test starts from the default settings (UTC, no lead time); tests change them with
    ``set_operator_setting``."""
    for name in list(os.environ):
        if name.startswith("LICENSING_") and not name.startswith("LICENSING_TEST_"):
            monkeypatch.delenv(name, raising=False)
    # API tests must not mail from background threads while their database is torn down: the
    # delivery tests call the sender themselves.
    monkeypatch.setenv("LICENSING_MAIL_ON_APPROVAL", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def set_operator_setting(monkeypatch):
    def set_(name: str, value: str) -> None:
        monkeypatch.setenv(f"LICENSING_{name.upper()}", value)
        get_settings.cache_clear()

    return set_


@pytest.fixture
def gc_collections() -> Iterator[list[int]]:
    """The generation of each run of Python's cycle collector from here on (after a full one)."""
    import gc

    seen: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.collect()
    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)


@pytest.fixture
def app(database):
    from licensing.api.app import create_app

    return create_app(database)


@pytest.fixture
def api_keys(database) -> dict[str, str]:
    """One API key secret per role."""
    from licensing import clock
    from licensing.auth.services import create_api_key

    keys = {}
    with database.write() as session:
        for role in ("admin", "billing", "bookings", "read"):
            _key, secret = create_api_key(session, name=f"test-{role}", role=role, at=clock.now())
            keys[role] = secret
    return keys


_WARM_PATHS: list[str] = []


def warm_paths(app) -> list[str]:
    """One GET path per API router, placeholders left in (every app has the same routes: read
    from the first app's OpenAPI document, which takes most of a second to build)."""
    if not _WARM_PATHS:
        warmed = set()
        for path, operations in app.openapi()["paths"].items():
            prefix = "/".join(path.split("/")[:4])
            if "get" in operations and prefix not in warmed:
                warmed.add(prefix)
                _WARM_PATHS.append(path.replace("{", "").replace("}", ""))
    return _WARM_PATHS


@pytest.fixture
def client(app, api_keys):
    """An httpx client on the app, authenticated as ``billing``; ``client.as_role(role)`` for others."""
    from fastapi.testclient import TestClient

    test_client = TestClient(app, headers={"Authorization": f"Bearer {api_keys['billing']}"})
    # FastAPI builds each router's routes on the first request that reaches it; make that happen
    # before a test freezes the clock (freezegun swaps ``datetime`` for its own class).
    # Reads only (every router has one), with placeholders left in the path: nothing is written.
    for path in warm_paths(app):
        test_client.get(path)

    def as_role(role: str | None) -> TestClient:
        headers = {"Authorization": f"Bearer {api_keys[role]}"} if role else {}
        return TestClient(app, headers=headers)

    test_client.as_role = as_role
    return test_client


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch):
    """argon2 at the console's cost (64 MiB, 3 passes) takes about half a second a hash, and the
    console's tests sign in hundreds of times: in this process they hash at the lowest cost.
    (The command line and the browser tests' server run as processes of their own, at full cost.)"""
    from argon2 import PasswordHasher

    from licensing.web import users

    monkeypatch.setattr(users, "hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def console(app, database):
    """``console(role)``: a browser-less client signed in to the console as a new user of that role
    (``tests/support/console.py``): ``.get(path)``, ``.submit(path, form)`` with the CSRF token."""
    from tests.support.console import signed_in

    made = {}

    def sign_in(role: str = "admin"):
        if role not in made:
            made[role] = signed_in(app, database, role)
        return made[role]

    return sign_in
