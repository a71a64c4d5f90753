"""Multi-row inserts at the speed of the database driver.

SQLAlchemy's executemany prepares every parameter set in Python (tens of microseconds a row),
which dominates a billing run that writes hundreds of thousands of rows. ``insert_rows``
compiles the INSERT once, runs each value through its column type's bind processor (so that
``ScaledDecimal`` and ``UTCDateTime`` store exactly what they store everywhere else), and hands
the rows to the driver's own ``executemany``.

On PostgreSQL, a batch of ``COPY_FROM`` rows or more goes in with ``COPY ... FROM STDIN``
(psycopg's copy), several times faster than a multi-row INSERT; fewer rows, and rows written
inside a pipeline (``pipelined``, where COPY is not allowed), use the INSERT.

Ids: on SQLite the write transaction holds the database's write lock, and SQLite gives a new
row the largest rowid plus one, so the rows of one ``executemany`` get consecutive ids ending
at ``last_insert_rowid()``. On PostgreSQL, where sequences are shared by concurrent
transactions, a COPY takes its ids from the table's sequence first (one query for the batch)
and writes them with the rows; a small INSERT gets them from ``INSERT ... RETURNING``. On both,
a single row gets its id from ``INSERT ... RETURNING`` sent on the driver's cursor. A row and
the rows that point to it (a journal entry and its postings: ``insert_with_children``) need no id
back on PostgreSQL: the children read the parent's new id with ``currval`` of its sequence in the
same session, so a booking's journal entry goes into the booking's pipeline; a booking's
consumption takes its id from the sequence with the account's lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, bindparam, literal_column, text
from sqlmodel import Session

from licensing.db import driver


def reading(session: Session) -> Connection:
    """The session's connection for a Core read, after flushing the ORM's pending changes: a
    statement sent through the connection does not autoflush, and would read rows as they were
    before changes the use case has already made through the ORM (an expiry recorded, a grant
    drawn)."""
    session.flush()
    return session.connection()


def insert_new(session: Session, table: Table, rows: list[dict[str, Any]], *, unique: list[str]) -> int:
    """Insert the ``rows`` whose ``unique`` columns are not taken yet (``ON CONFLICT DO NOTHING``,
    so two writers at once never insert one twice); returns how many were inserted."""
    if not rows:
        return 0
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    statement = insert(table).values(rows).on_conflict_do_nothing(index_elements=unique).returning(table.c.id)
    return len(session.execute(statement).all())


COPY_FROM = 50  # rows: below it, COPY's set-up costs more than it saves


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]], *, return_ids: bool = False) -> list[int]:
    """Insert ``rows`` (dicts with the same keys) into ``table``; their ids in order if asked."""
    if not rows:
        return []
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql" and len(rows) >= COPY_FROM and not _in_pipeline(connection):
        return _copy(connection, table, rows, return_ids=return_ids)
    plan = _plan("insert", table, tuple(rows[0]), dialect)
    if return_ids and len(rows) == 1 and (_SQLITE_RETURNING or dialect.name != "sqlite"):
        return [_execute(connection, plan, rows, returning=True)]  # the id in the same statement
    if return_ids and dialect.name != "sqlite":
        statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return list(connection.execute(statement, rows).scalars())
    _execute(connection, plan, rows)
    if not return_ids:
        return []
    last = driver.execute(connection, "SELECT last_insert_rowid()", (), returning=True)
    return list(range(last - len(rows) + 1, last + 1))


def insert_with_children(session: Session, parent: Table, rows: list[dict[str, Any]], child: Table,
                         children: list[list[dict[str, Any]]], *, key: str) -> None:
    """Insert ``rows`` into ``parent`` and, for each, the rows of ``children`` (in the same order)
    into ``child``, their ``key`` column the new parent's id (a journal entry and its postings).

    PostgreSQL, fewer than ``COPY_FROM`` parents: each parent row, then its children with ``key``
    = ``currval`` of the parent's sequence (the id the parent row just took, in this session), in
    a pipeline: no id comes back to wait for, so they cost one round trip together, and none of
    their own inside a booking's pipeline. Otherwise the parents' ids come back from the insert
    (``RETURNING``, or the sequence before a COPY) and the children follow in one batch."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql" or len(rows) >= COPY_FROM:
        ids = insert_rows(session, parent, rows, return_ids=True)
        insert_rows(session, child, [{key: id_} | row for id_, family in zip(ids, children, strict=True) for row in family])
        return
    with pipelined(session):
        for row, family in zip(rows, children, strict=True):
            _execute(connection, _plan("insert", parent, tuple(row), connection.dialect), [row])
            if family:
                plan = _children_plan(child, parent, key, tuple(family[0]), len(family), connection.dialect)
                values = {f"{name}_{index}": value for index, child_row in enumerate(family) for name, value in child_row.items()}
                _execute(connection, plan, [values])


@lru_cache(maxsize=32)
def _children_plan(child: Table, parent: Table, key: str, names: tuple[str, ...], count: int, dialect) -> tuple[str, bool, tuple]:
    """``_plan``'s insert of ``count`` rows into ``child`` in one statement (their values named
    ``<column>_<row>``), their ``key`` the id the ``parent`` row inserted last in this session
    took (PostgreSQL's ``currval`` of the parent's sequence)."""
    newest = literal_column(f"currval(pg_get_serial_sequence('{parent.name}', 'id'))")  # our table's name, no user text
    rows = [{key: newest} | {name: bindparam(f"{name}_{index}") for name in names} for index in range(count)]
    compiled = child.insert().values(rows).compile(dialect=dialect)
    order = compiled.positiontup if compiled.positional else [f"{name}_{index}" for index in range(count) for name in names]
    processors = {name: child.c[name].type._cached_bind_processor(dialect) for name in names}
    parameters = tuple((bound, bound, processors[bound.rpartition("_")[0]]) for bound in order)
    return str(compiled), compiled.positional, parameters


def insert_row(session: Session, table: Table, row: dict[str, Any], *, id_: int | None = None) -> int:
    """Insert one row; its id (``id_`` when one was taken from the table's sequence beforehand,
    as a booking takes its consumption's with the account's lock)."""
    if id_ is None:
        [id_] = insert_rows(session, table, [row], return_ids=True)
    else:
        insert_rows(session, table, [row | {"id": id_}])
    return id_


@contextmanager
def pipelined(session: Session) -> Iterator[None]:
    """On PostgreSQL, send the statements of the block without waiting for each answer
    (psycopg's pipeline mode): a booking's writes cost one round trip instead of one each.
    Inside, row counts are unknown, and reading a result (``RETURNING``) waits for everything
    sent before it; an error surfaces at that point or when the block ends. Does nothing on
    SQLite, where there is no round trip to save. Within a pipeline already (a booking's held
    one, ``driver.hold_pipeline``) the statements join it: a pipeline within one would wait at
    its end."""
    connection = session.connection()
    if connection.dialect.name != "postgresql" or _in_pipeline(connection):
        yield
        return
    with connection.connection.driver_connection.pipeline():
        yield


# SQLite answers ``INSERT ... RETURNING`` from 3.35 on (Debian 12 ships 3.40): one statement
# instead of two for a single row whose id is wanted (a booking's consumption, a journal entry).
_SQLITE_RETURNING = sqlite3.sqlite_version_info >= (3, 35)


def update_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Update rows by id: each dict holds ``id`` and the new values (the same keys in every row).
    On PostgreSQL several rows are one statement (``UPDATE ... FROM unnest(<one array per
    column>)``) instead of one statement each: the server plans it once, and inside a booking's
    pipeline an ``executemany`` would open a pipeline of its own and wait twice."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = tuple(rows[0])
    if dialect.name == "postgresql" and len(rows) > 1:
        sql, processors = _unnest_plan(table, names, dialect)
        driver.execute(connection, sql, [_column(rows, name, processor) for name, processor in processors])
        return
    _execute(connection, _plan("update", table, names, dialect), rows)


@lru_cache(maxsize=64)
def _unnest_plan(table: Table, names: tuple[str, ...], dialect) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """PostgreSQL: the update by id of many rows from one array per column (each cast to an array
    of the column's type), and for each column in order its bind processor."""
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    columns = ("id", *(name for name in names if name != "id"))
    # Binary parameters (``%b``): the text form of an array escapes every quote of every element
    # with a regular expression in Python (an approval's seller and buyer JSON: 0.6 s of a
    # 10,000-licence run); the binary form copies the elements as they are.
    arrays = ", ".join(f"%b::{table.c[name].type.compile(dialect=dialect)}[]" for name in columns)
    assignments = ", ".join(f"{quote(name)} = v.{quote(name)}" for name in columns if name != "id")
    sql = f"UPDATE {target} SET {assignments} FROM unnest({arrays}) AS v({', '.join(quote(name) for name in columns)}) WHERE {target}.id = v.id"
    return sql, tuple((name, table.c[name].type._cached_bind_processor(dialect)) for name in columns)


@lru_cache(maxsize=256)
def _plan(kind: str, table: Table, names: tuple[str, ...], dialect) -> tuple[str, bool, tuple[tuple[str, str, Any], ...]]:
    """The SQL of an insert or update-by-id with these columns, compiled once, and for each
    parameter in order: (parameter name, row key, bind processor or None)."""
    if kind == "insert":
        compiled = table.insert().compile(dialect=dialect, column_keys=list(names))
        keys = {name: name for name in names}
    else:
        values = [name for name in names if name != "id"]
        statement = table.update().where(table.c.id == bindparam("row_id")).values({name: bindparam(name) for name in values})
        compiled = statement.compile(dialect=dialect)
        keys = {name: name for name in values} | {"row_id": "id"}
    order = compiled.positiontup if compiled.positional else list(keys)
    parameters = tuple((name, keys[name], table.c[keys[name]].type._cached_bind_processor(dialect)) for name in order)
    return str(compiled), compiled.positional, parameters


def _in_pipeline(connection: Connection) -> bool:
    from psycopg import pq

    return connection.connection.driver_connection.info.pipeline_status != pq.PipelineStatus.OFF


def _copy(connection: Connection, table: Table, rows: list[dict[str, Any]], *, return_ids: bool) -> list[int]:
    """``COPY`` the rows into ``table`` (PostgreSQL), values converted as ``_execute`` converts
    them; with ``return_ids``, ids taken from the table's sequence first and written with them."""
    names = tuple(rows[0])
    dialect = connection.dialect
    columns = [_column(rows, name, table.c[name].type._cached_bind_processor(dialect)) for name in names]
    ids: list[int] = [row["id"] for row in rows] if "id" in names else []
    if return_ids and "id" not in names:
        ids = sorted(connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
            {"table": table.name, "count": len(rows)},
        ).scalars())
        names, columns = (*names, "id"), [*columns, ids]
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    cursor = connection.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {dialect.identifier_preparer.format_table(table)} ({quoted}) FROM STDIN") as copy:
        for row in zip(*columns, strict=True):
            copy.write_row(row)
    cursor.close()
    return ids if return_ids else []


def _execute(connection, plan, rows: list[dict[str, Any]], *, returning: bool = False) -> Any:
    """Run the plan for ``rows``; with ``returning`` (one row), the new row's id."""
    sql, positional, parameters = plan
    if len(rows) == 1:  # a booking's rows: one at a time, each value converted once anyway
        row = rows[0]
        picked = [row[key] if processor is None else processor(row[key]) for _name, key, processor in parameters]
        values: list[Any] = [tuple(picked) if positional else dict(zip([p[0] for p in parameters], picked, strict=True))]
    else:
        # Column by column: pick the values at C speed, and convert each distinct value of a
        # column once (a batch repeats the same instants, rates and zeros thousands of times).
        columns = [_column(rows, key, processor) for _name, key, processor in parameters]
        if positional:
            values = list(zip(*columns, strict=True))
        else:
            names = [name for name, _key, _processor in parameters]
            values = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    # On the driver's cursor (``db.driver``): the values are in storage form already.
    if returning:
        # PostgreSQL's INSERT without the id compiles with ``RETURNING <table>.id`` already.
        returning_sql = sql if " RETURNING " in sql else f"{sql} RETURNING id"
        return driver.execute(connection, returning_sql, values[0], returning=True)
    if len(values) == 1:
        driver.execute(connection, sql, values[0])
    else:
        driver.execute(connection, sql, values, many=True)
    return None


def _column(rows: list[dict[str, Any]], key: str, processor) -> list[Any]:
    """The values of ``key`` in ``rows``, in storage form."""
    picked = list(map(itemgetter(key), rows))
    if processor is None:
        return picked
    try:
        converted = {value: processor(value) for value in set(picked)}
    except TypeError:  # an unhashable value: convert one by one
        return [processor(value) for value in picked]
    return list(map(converted.__getitem__, picked))
