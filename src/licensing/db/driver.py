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
  request), on a pooled connection.

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

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
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
