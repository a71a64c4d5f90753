"""Engines and transactions.

* SQLite (the embedded default): WAL journal (checkpointed every 10,000 pages), foreign keys
  on, a busy timeout, and write
  transactions opened with ``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of
  failing (a deferred ``BEGIN`` that later writes fails at once under concurrency). Writers of
  one process queue on a lock of their own first (``Database.write``): SQLite's busy handler
  sleeps 1 to 100 ms between its tries, so threads left to it would sleep while the file is
  free (a server's bookings of one account ran at a third of their speed). ``write(wait=False)``
  does not queue at all: it begins at once or raises ``WriterBusy`` having begun nothing (an
  async route's short write tries it in the event loop, and waits its turn in the thread pool
  only when the writer is taken).
* PostgreSQL (production) through psycopg 3: rows are locked with ``SELECT ... FOR UPDATE``. A
  booking keeps its connection in pipeline mode until its end (``driver.hold_pipeline``):
  ``Database.write`` then sends the ``COMMIT`` with its writes, in one round trip.

Use cases take a ``Session`` that is already inside a transaction; callers (API, CLI,
scheduler) open it with ``Database.write()`` or ``Database.read()``. What must happen only once
a change is committed (sending the mail of an approved document now) is registered with
``after_commit`` inside the transaction, whoever opened it; what must be written last in it (the
journal entries of the credits a use case moved) with ``before_commit``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DataError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlmodel import Session, create_engine

from licensing.db import driver
from licensing.errors import LicensingError

log = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 here."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _make_engine(url: str, *, immediate: bool) -> Engine:
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            # As many as the server's threads (FastAPI runs sync routes on 40): a connection
            # opened beyond the pool is closed again after its request, and opening one (with
            # its pragmas) costs more than the query.
            pool_size=40,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            # Let SQLAlchemy's begin event emit BEGIN itself (pysqlite's own is deferred).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection):
            if immediate and _AT_ONCE.get():
                _begin_at_once(connection)
            else:
                driver.execute(connection, "BEGIN IMMEDIATE" if immediate else "BEGIN", ())  # on the cursor: every transaction does it

        return engine
    # No pre-ping: it would cost a round trip per transaction; stale connections are recycled.
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)
    driver.watch_pipelines(engine)
    return engine


class WriterBusy(Exception):
    """``Database.write(wait=False)`` found SQLite's writer taken (by another thread of this
    process or by another process): nothing was begun, nothing written."""


# Set while ``Database.write(wait=False)`` begins its transaction (read by the ``begin`` event).
_AT_ONCE: ContextVar[bool] = ContextVar("licensing_write_at_once", default=False)


def _begin_at_once(connection) -> None:
    """``BEGIN IMMEDIATE`` without SQLite's busy handler: another process's write transaction
    makes it fail at once (``WriterBusy``) instead of waiting up to the busy timeout. In WAL mode
    nothing after ``BEGIN IMMEDIATE`` waits on another connection, so this is the only wait."""
    driver.execute(connection, "PRAGMA busy_timeout=0", ())
    try:
        driver.execute(connection, "BEGIN IMMEDIATE", ())
    except OperationalError as error:
        if getattr(error.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
            raise WriterBusy("another write transaction holds the SQLite database") from error
        raise
    finally:
        driver.execute(connection, f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}", ())


class Database:
    """One database: a writer engine and a reader engine (the same one on PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.writer = _make_engine(self.url, immediate=True)
        self.is_sqlite = self.writer.dialect.name == "sqlite"
        self.reader = _make_engine(self.url, immediate=False) if self.is_sqlite else self.writer
        # SQLite: one writer at a time anyway; this process's writers wait here, woken as soon
        # as the one before them ends (reentrant: a nested write waits on SQLite, as before).
        self._writers = threading.RLock() if self.is_sqlite else None

    @contextmanager
    def write(self, *, wait: bool = True) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back on any error. Once it
        has committed, the hooks registered with ``after_commit`` run (none after a rollback).

        ``wait=False`` (SQLite): begin at once or raise ``WriterBusy``, never queue behind another
        writer (on PostgreSQL a transaction never waits to begin; its row locks wait as ever)."""
        at_once = _AT_ONCE.set(not wait)
        try:
            with self._one_writer(wait), Session(self.writer, expire_on_commit=False, info={"database": self}) as session:
                with session.begin():
                    try:
                        yield session
                        for hook in session.info.pop(BEFORE_COMMIT, {}).values():
                            hook(session)
                        session.flush()
                        driver.release_pipeline(session, commit=True)  # a booking's COMMIT with its writes
                    except BaseException as error:
                        driver.release_pipeline(session, error=error)
                        raise
                hooks = session.info.pop(AFTER_COMMIT, {})
        finally:
            _AT_ONCE.reset(at_once)
        for name, hook in hooks.items():
            try:
                hook()
            except Exception:  # noqa: BLE001 - the change is committed; the hook's work is retried by its job
                log.exception("after-commit hook %s failed", name)

    @contextmanager
    def _one_writer(self, wait: bool = True) -> Iterator[None]:
        if self._writers is None:
            yield
            return
        if not wait:
            if not self._writers.acquire(blocking=False):
                raise WriterBusy("another write transaction of this process holds the SQLite database")
        elif not self._writers.acquire(timeout=WRITER_TIMEOUT_SECONDS):
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
        try:
            yield
        finally:
            self._writers.release()

    def analyze_new(self, tables: list[str]) -> list[str]:
        """PostgreSQL: ``ANALYZE`` those of ``tables`` that have never been analysed; returns them.

        A bulk writer (the billing run) calls it after its first batch. Until autovacuum comes
        round (a minute or more), a table without statistics is planned as if each condition kept a
        fixed share of its rows, and a batch's ``IN`` list of a few hundred ids looked cheaper as a
        scan of the whole table than as that many index look-ups: each batch read every line,
        grant and service the run had written so far, a quadratic run. Statistics taken from a
        first batch give the columns' distinct fractions, which stay true as the tables grow.
        SQLite plans from its indexes without statistics: nothing to do there."""
        if self.is_sqlite:
            return []
        from sqlalchemy import text

        with self.writer.connect() as connection:
            never = connection.execute(
                text("SELECT relname FROM pg_class WHERE relname = ANY(:tables) AND relkind = 'r' AND reltuples < 0 "
                     "AND relnamespace = to_regnamespace(current_schema())::oid ORDER BY relname"),
                {"tables": list(tables)},
            ).scalars().all()
            for table in never:
                connection.execute(text(f"ANALYZE {self.writer.dialect.identifier_preparer.quote(table)}"))
            connection.commit()
        return list(never)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.reader, expire_on_commit=False) as session, session.begin():
            yield session

    def forget_connections(self) -> None:
        """In a forked process: drop the pooled connections inherited from the parent without
        closing them (they are the parent's), so that this process opens its own."""
        self.writer.dispose(close=False)
        if self.reader is not self.writer:
            self.reader.dispose(close=False)

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()


AFTER_COMMIT = "licensing.after_commit"
WRITER_TIMEOUT_SECONDS = 30  # as SQLite's busy timeout
BUSY_TIMEOUT_MS = 30_000  # SQLite's own busy handler, as long
# A booking writes some twenty pages (seven tables and their indexes): with SQLite's default of
# 1,000 pages the WAL was copied back into the database every 50 bookings or so, each time the
# same hot pages (the account, its grants, the indexes' last leaves) and an fsync. At 10,000
# pages (a WAL of up to 40 MB) a booking's commit costs 0.1-0.2 ms less on average
# (docs/decisions.md).
WAL_CHECKPOINT_PAGES = 10_000
BEFORE_COMMIT = "licensing.before_commit"


def before_commit(session: Session, name: str, hook: Callable[[Session], None]) -> None:
    """Run ``hook(session)`` at the end of the transaction of ``session``, in it, just before it
    commits (once per ``name``; in the order registered): work gathered over the whole use case
    (the journal entries of the credits it moved). An error there rolls everything back."""
    session.info.setdefault(BEFORE_COMMIT, {}).setdefault(name, hook)


def after_commit(session: Session, name: str, hook: Callable[[Database], None]) -> None:
    """Run ``hook(database)`` once the transaction of ``session`` commits (once per ``name`` and
    transaction), if it was opened by ``Database.write``. Hooks do what a job would otherwise do
    later (so a failing hook is logged, never raised: the commit stands)."""
    database = session.info.get("database")
    if database is not None:
        session.info.setdefault(AFTER_COMMIT, {}).setdefault(name, lambda: hook(database))


@lru_cache
def get_database(url: str | None = None) -> Database:
    from licensing.config import get_settings

    return Database(url or get_settings().database_url)


def describe_failure(error: Exception) -> str:
    """What went wrong with one piece of a batch (a licence billed or renewed), in words an
    operator can act on."""
    if isinstance(error, LicensingError):
        return error.detail
    if isinstance(error, OverflowError) or isinstance(getattr(error, "orig", None), OverflowError):
        return f"a date or amount beyond what the engine can count with ({error.__class__.__name__}: {str(error).splitlines()[0]})"
    if isinstance(error, DataError):
        return f"a value beyond what the database columns hold ({str(error.orig).splitlines()[0]})"
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no detail'}"


def is_outage(error: Exception) -> bool:
    """Whether the error says that the database cannot be reached (down, restarting, its
    connections dropped, its pool exhausted, SQLite's file locked or missing): nothing about the
    request or the data. A billing run stops on it rather than marking every licence failed; the
    API answers 503 ``database_unavailable``."""
    import psycopg

    if isinstance(getattr(error, "orig", None), OverflowError):
        return False
    return isinstance(error, OperationalError | InterfaceError | DisconnectionError | SQLAlchemyTimeoutError | psycopg.OperationalError)
