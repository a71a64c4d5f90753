"""The hottest statements at the speed of the database driver.

``Connection.execute`` costs 50 to 150 microseconds of Python per statement (an execution
context, events, result metadata) whatever the statement, several times what a small indexed
query costs SQLite itself; a booking runs ten statements and every request reads its API key.
What runs on every request is therefore compiled once per dialect and handed to the DBAPI cursor
of the same connection, in the same transaction:

* ``prepared(statement, dialect)``: a Core ``SELECT`` (or any statement with simple bind
  parameters, no expanding ``IN``) compiled once: its SQL, its parameters in order with their
  types' bind processors and defaults, and its columns' result processors;
* ``fetch(connection, statement, parameters)``: its rows, as named tuples of converted values
  (``ScaledDecimal`` and ``UTCDateTime`` read exactly as through SQLAlchemy);
* ``execute(connection, sql, values)``: SQL already compiled (``db.bulk``'s plans), one row or
  many;
* ``fetch_one_autocommit(engine, ...)``: one read outside any transaction (the API key of a
  request), on a pooled connection;
* ``fetch_together(connection, [(statement, parameters), ...])``: several reads sent at once,
  one wait for all of them inside a held pipeline;
* ``hold_pipeline(session)`` / ``release_pipeline(session)``: PostgreSQL's pipeline mode kept
  from a booking's first statement to its ``COMMIT``, which goes with its writes
  (``Database.write`` releases it).

A driver error is raised as SQLAlchemy's own (``IntegrityError``, ``OperationalError``, ...), as
from any other statement, so the unit of work, the idempotency guard and the 503 on an outage
see the same exceptions. These helpers are a faster way to send a statement, not another way
to change data: the use cases that write still go through ``db.bulk`` and the ORM as before.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable


@dataclass(frozen=True, slots=True)
class Prepared:
    sql: str
    positional: bool
    # Per bind parameter, in the order the SQL takes them: (name, processor or None, default).
    parameters: tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]
    row: type  # a named tuple of the selected columns (empty for a statement that returns none)
    results: tuple[Callable[[Any], Any] | None, ...]


@lru_cache(maxsize=128)
def prepared(statement: Executable, dialect) -> Prepared:
    """``statement`` compiled for ``dialect`` once (statements are module-level constants)."""
    compiled = statement.compile(dialect=dialect)
    binds = compiled.binds
    if any(bind.expanding for bind in binds.values()):
        raise TypeError("an expanding parameter (IN a list) is rendered per call: run this statement through SQLAlchemy")
    order = compiled.positiontup if compiled.positional else list(binds)
    escaped = getattr(compiled, "escaped_bind_names", None) or {}
    parameters = tuple(
        (escaped.get(name, name), binds[name].type._cached_bind_processor(dialect), binds[name].effective_value)
        for name in order
    )
    columns = list(getattr(statement, "selected_columns", ()))
    names = [column.key if column.key.isidentifier() else f"column_{index}" for index, column in enumerate(columns)]
    row = namedtuple("Row", names, rename=True)
    results = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
    return Prepared(str(compiled), compiled.positional, parameters, row, results)


def _values(statement: Prepared, parameters: Mapping[str, Any]) -> tuple | dict:
    values = []
    for name, processor, default in statement.parameters:
        value = parameters.get(name, default)
        values.append(processor(value) if processor is not None and value is not None else value)
    if statement.positional:
        return tuple(values)
    return dict(zip((name for name, _processor, _default in statement.parameters), values, strict=True))


def _rows(statement: Prepared, raw: list) -> list:
    results = statement.results
    make = statement.row._make
    if not any(results):
        return [make(row) for row in raw]
    return [
        make([value if processor is None or value is None else processor(value) for processor, value in zip(results, row, strict=True)])
        for row in raw
    ]


def fetch(connection: Connection, statement: Executable, parameters: Mapping[str, Any]) -> list:
    """The rows of ``statement`` on ``connection`` (in its transaction), converted by the
    columns' types."""
    compiled = prepared(statement, connection.dialect)
    values = _values(compiled, parameters)
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(compiled.sql, values)
        raw = cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(compiled.sql, values, error, connection.dialect.loaded_dbapi.Error) from error
    finally:
        cursor.close()
    return _rows(compiled, raw)


def execute(connection: Connection, sql: str, values: list | tuple | dict, *, many: bool = False, returning: bool = False) -> Any:
    """Run compiled ``sql`` with driver-ready ``values`` (a list of them with ``many``) on
    ``connection``; with ``returning``, the first column of the first row it returns."""
    cursor = connection.connection.dbapi_connection.cursor()
    dbapi = connection.dialect.loaded_dbapi
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
        if returning:
            return cursor.fetchone()[0]
        return None
    except dbapi.Error as error:
        raise DBAPIError.instance(sql, values, error, dbapi.Error) from error
    finally:
        cursor.close()


def fetch_one_autocommit(engine: Engine, statement: Executable, parameters: Mapping[str, Any]):
    """The one row (or None) of a read that needs no transaction of its own (one statement sees
    one consistent state): on a connection from the pool, returned to it at once (the pool rolls
    back what the driver began). A connection found broken is dropped from the pool."""
    compiled = prepared(statement, engine.dialect)
    values = _values(compiled, parameters)
    dbapi = engine.dialect.loaded_dbapi
    try:
        pooled = engine.raw_connection()
    except dbapi.Error as error:  # the database cannot be reached
        raise DBAPIError.instance(None, None, error, dbapi.Error) from error
    cursor = None
    connection = pooled.dbapi_connection
    # psycopg: no transaction for one read (a BEGIN and a ROLLBACK would be two round trips
    # more); SQLite's connections already run statements outside one until BEGIN.
    switch = getattr(connection, "autocommit", None) is False
    try:
        if switch:
            connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute(compiled.sql, values)
        raw = cursor.fetchmany(2)
    except dbapi.Error as error:
        if engine.dialect.is_disconnect(error, connection, cursor):
            pooled.invalidate(error)
            switch = False
        raise DBAPIError.instance(compiled.sql, values, error, dbapi.Error) from error
    finally:
        if cursor is not None:
            cursor.close()
        if switch:
            connection.autocommit = False
        pooled.close()
    if len(raw) > 1:
        raise ValueError("more than one row where one was expected")
    rows = _rows(compiled, raw)
    return rows[0] if rows else None


def fetch_together(connection: Connection, reads: list[tuple[Executable, Mapping[str, Any]]]) -> list[list]:
    """The rows of each read, in order, all sent before the first answer is read: inside a held
    pipeline (``hold_pipeline``) they cost one wait on the server together; elsewhere one each.
    The server runs them in order, each on the data as the one before it left it (a lock, then
    the rows it guards)."""
    dialect = connection.dialect
    dbapi = dialect.loaded_dbapi
    dbapi_connection = connection.connection.dbapi_connection
    sent = []
    try:
        for statement, parameters in reads:
            compiled = prepared(statement, dialect)
            cursor = dbapi_connection.cursor()
            sent.append((compiled, cursor))
            cursor.execute(compiled.sql, _values(compiled, parameters))
        return [_rows(compiled, cursor.fetchall()) for compiled, cursor in sent]
    except dbapi.Error as error:
        raise DBAPIError.instance(None, None, error, dbapi.Error) from error
    finally:
        for _compiled, cursor in sent:
            cursor.close()


# -- a booking's pipeline ----------------------------------------------------------------------

PIPELINE = "licensing.pipeline"


def hold_pipeline(session: Session) -> None:
    """PostgreSQL: keep the session's connection in pipeline mode until its transaction ends, so
    that a booking waits on the server twice after its ``BEGIN``: once for its reads (the
    account's lock and the first grants, ``fetch_together``), once for its writes and the
    ``COMMIT`` together (``release_pipeline(commit=True)``, from ``Database.write``). The
    account's row lock is then held for one round trip, not three.

    Inside, statements on the driver's cursor are queued and a read waits for its answer (and
    everything sent before it). SQLAlchemy cannot run a statement in pipeline mode (it looks
    for a result's columns and row count before they have come back), so any statement
    SQLAlchemy runs, and the ORM's flush, end the pipeline first (``watch_pipelines``): the rest
    of the transaction runs as usual. An error surfaces at the next read or at the release.
    Does nothing on SQLite."""
    if PIPELINE in session.info:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    pipeline = connection.connection.driver_connection.pipeline()
    pipeline.__enter__()
    connection.info[PIPELINE] = pipeline
    session.info[PIPELINE] = connection


def release_pipeline(session: Session, *, commit: bool = False, error: BaseException | None = None) -> None:
    """End the session's held pipeline (if any): wait for everything sent; with ``commit`` send
    the ``COMMIT`` in the same round trip (the session's own commit then finds the transaction
    committed: psycopg's ``commit()`` does nothing on an idle connection); after ``error`` (the
    block failed) leave quietly, the rollback follows."""
    connection = session.info.pop(PIPELINE, None)
    if connection is not None and not connection.closed:
        _release(connection.info, connection.connection.dbapi_connection, connection.dialect, commit=commit, error=error)


def _release(info: dict, dbapi_connection, dialect, *, commit: bool = False, error: BaseException | None = None) -> None:
    pipeline = info.pop(PIPELINE, None)
    if pipeline is None:
        return
    if error is not None:
        pipeline.__exit__(type(error), error, error.__traceback__)
        return
    dbapi = dialect.loaded_dbapi
    try:
        try:
            if commit:
                cursor = dbapi_connection.cursor()
                cursor.execute("COMMIT")  # an error queued before it may surface here already
                cursor.close()
        except dbapi.Error as failure:
            pipeline.__exit__(type(failure), failure, failure.__traceback__)  # out of pipeline mode; the rollback follows
            raise
        pipeline.__exit__(None, None, None)
    except dbapi.Error as failure:
        raise DBAPIError.instance("COMMIT" if commit else None, None, failure, dbapi.Error) from failure


def watch_pipelines(engine: Engine) -> None:
    """A PostgreSQL engine's guards for held pipelines: a statement run by SQLAlchemy ends the
    pipeline first; a connection never goes back to the pool in pipeline mode."""

    @event.listens_for(engine, "before_cursor_execute")
    def _out_of_pipeline(connection, _cursor, _statement, _parameters, _context, _executemany) -> None:
        if PIPELINE in connection.info:
            _release(connection.info, connection.connection.dbapi_connection, connection.dialect)

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:
        pipeline = record.info.pop(PIPELINE, None)
        if pipeline is not None:  # a transaction ended without Database.write: its rollback is done
            pipeline.__exit__(None, None, None)


@event.listens_for(Session, "before_flush")
def _flush_out_of_pipeline(session: Session, _context, _instances) -> None:
    release_pipeline(session)
