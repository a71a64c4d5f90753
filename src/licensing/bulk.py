"""Multi-row inserts at the speed of the database driver.

SQLAlchemy's executemany prepares every parameter set in Python (tens of microseconds a row),
which dominates a billing run that writes hundreds of thousands of rows. ``insert_rows``
compiles the INSERT once, runs each value through its column type's bind processor (so that
``ScaledDecimal`` and ``UTCDateTime`` store exactly what they store everywhere else), and hands
the rows to the driver's own ``executemany``.

Ids: on SQLite the write transaction holds the database's write lock, and SQLite gives a new
row the largest rowid plus one, so the rows of one ``executemany`` get consecutive ids ending
at ``last_insert_rowid()``. On PostgreSQL, where sequences are shared by concurrent
transactions, the ids come from ``INSERT ... RETURNING`` (SQLAlchemy's insertmanyvalues).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, text
from sqlmodel import Session


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]], *, return_ids: bool = False) -> list[int]:
    """Insert ``rows`` (dicts with the same keys) into ``table``; their ids in order if asked."""
    if not rows:
        return []
    connection = session.connection()
    dialect = connection.dialect
    if return_ids and dialect.name != "sqlite":
        statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return list(connection.execute(statement, rows).scalars())
    names = list(rows[0])
    compiled = table.insert().compile(dialect=dialect, column_keys=names)
    convert = _converters(table, names, dialect)
    if compiled.positional:
        order = [(name, convert[name]) for name in compiled.positiontup]
        parameters: list[Any] = [tuple(row[name] if conversion is None else conversion(row[name]) for name, conversion in order) for row in rows]
    else:
        parameters = [{name: value if (conversion := convert[name]) is None else conversion(value) for name, value in row.items()} for row in rows]
    connection.exec_driver_sql(str(compiled), parameters)
    if not return_ids:
        return []
    last = connection.execute(text("SELECT last_insert_rowid()")).scalar_one()
    return list(range(last - len(rows) + 1, last + 1))


def update_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Update rows by id: each dict holds ``id`` and the new values (the same keys in every row)."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = [name for name in rows[0] if name != "id"]
    statement = table.update().where(table.c.id == bindparam("row_id")).values({name: bindparam(name) for name in names})
    compiled = statement.compile(dialect=dialect)
    convert = _converters(table, names, dialect)
    convert["row_id"] = None
    keyed = [(name, "id" if name == "row_id" else name, convert[name]) for name in (compiled.positiontup if compiled.positional else [*names, "row_id"])]
    if compiled.positional:
        parameters: list[Any] = [tuple(row[key] if conversion is None else conversion(row[key]) for _name, key, conversion in keyed) for row in rows]
    else:
        parameters = [{name: row[key] if conversion is None else conversion(row[key]) for name, key, conversion in keyed} for row in rows]
    connection.exec_driver_sql(str(compiled), parameters)


def _converters(table: Table, names: list[str], dialect) -> dict[str, Any]:
    """Per column, its type's bind processor, remembering the values it has seen: a batch
    repeats the same instants, rates and zeros thousands of times."""
    converters: dict[str, Any] = {}
    for name in names:
        processor = table.c[name].type._cached_bind_processor(dialect)
        converters[name] = None if processor is None else _memoised(processor)
    return converters


def _memoised(processor):
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            result = seen[value] = processor(value)
            return result
        except TypeError:  # unhashable
            return processor(value)

    return convert
