"""Small helpers shared by the use cases: fetch-or-fail, row locks, rows read on the driver as ORM objects."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import bindparam
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, col, select

from licensing.errors import NotFound, UnknownReference

Model = TypeVar("Model", bound=SQLModel)

# Ids are BIGINTs: their decimal digits number at most 18 here (so that every one fits).
ID_DIGITS = 18


def parse_id(value: int | str | None) -> int | None:
    """The id ``value`` names (an int, or ASCII digits that fit an id), else None. Every id in a
    path, a query, a body or a cursor is read by this."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= ID_DIGITS:
        return int(value)
    return None


def id_filter(value: int | str) -> int:
    """``value`` as an id to compare a column with: -1 (no row's id) when it is not one, so that a
    filter by a malformed id matches nothing."""
    key = parse_id(value)
    return -1 if key is None else key


def get_or_404(session: Session, model: type[Model], id_: int | str | None, what: str) -> Model:
    """The row with this id, or ``NotFound`` (an unknown id in the path is a 404)."""
    row = session.get(model, as_id(id_, what, NotFound))
    if row is None:
        raise NotFound(f"{what} {id_} does not exist")
    return row


def get_reference(session: Session, model: type[Model], id_: int | str | None, field: str) -> Model:
    """The row an id inside a request body names, or ``UnknownReference`` (422)."""
    row = session.get(model, as_id(id_, field, UnknownReference))
    if row is None:
        raise UnknownReference(f"{field} {id_} does not exist", field=field)
    return row


def lock(session: Session, model: type[Model], id_: int | str, what: str) -> Model:
    """Fetch a row with ``SELECT ... FOR UPDATE`` (PostgreSQL; on SQLite the write transaction
    already holds the database's write lock), refreshing any copy the session holds."""
    row = session.exec(_lock_statement(model), params={"id": as_id(id_, what, NotFound)}).one_or_none()
    if row is None:
        raise NotFound(f"{what} {id_} does not exist")
    return row


@lru_cache(maxsize=32)
def _lock_statement(model):
    return (
        select(model)
        .where(model.id == bindparam("id"))  # type: ignore[attr-defined]
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def loaded(session: Session, model: type[Model], row: Any) -> Model:
    """The ORM object of ``row``, a row of ``model``'s table read on the driver (``db.driver.fetch``:
    its columns as attributes), in the session as a query through the ORM with
    ``populate_existing`` would leave it: a new persistent object, or the one the session holds
    with these values as its committed state. Not validated, like any row the ORM loads (it
    comes from the database). For the statement every booking starts with (its account's lock),
    where the ORM's query costs three times the statement."""
    mapper = model.__mapper__  # type: ignore[attr-defined]
    columns, primary_key = _columns_of(model)
    values = {attribute: getattr(row, column) for attribute, column in columns}
    held = session.identity_map.get(mapper.identity_key_from_primary_key(tuple(values[key] for key in primary_key)))
    if held is not None:
        for attribute, value in values.items():
            set_committed_value(held, attribute, value)
        return held
    instance = as_loaded(model, values)
    session.add(instance)
    return instance


def as_loaded(model: type[Model], values: dict[str, Any]) -> Model:
    """A detached ORM object of a row just written with these ``values`` (every column, the id
    included), as the ORM would load it: for presenting what a use case wrote through ``db.bulk``
    without building a validated model again (a tenth of the cost)."""
    instance = model.__mapper__.class_manager.new_instance()  # type: ignore[attr-defined]
    instance.__dict__.update(values)
    make_transient_to_detached(instance)
    return instance


@lru_cache(maxsize=32)
def _columns_of(model) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """(attribute, column) of each column the model maps, and the attributes of its primary key."""
    mapper = model.__mapper__
    columns = tuple((attribute.key, attribute.columns[0].key) for attribute in mapper.column_attrs)
    return columns, tuple(mapper.get_property_by_column(column).key for column in mapper.primary_key)


def patched(row: SQLModel, fields: tuple[str, ...], changes: dict) -> dict:
    """The row's values of ``fields`` with ``changes`` laid over them (other keys ignored): what
    a PATCH would leave, to validate before anything is written."""
    return {key: getattr(row, key) for key in fields} | {key: value for key, value in changes.items() if key in fields}


def apply(row: SQLModel, values: dict) -> None:
    for key, value in values.items():
        setattr(row, key, value)


def lock_all(session: Session, model: type[Model], ids) -> list[Model]:
    """Fetch and lock several rows, in id order (a fixed order, so that two transactions locking
    overlapping sets cannot deadlock)."""
    ids = sorted(set(ids))
    if not ids:
        return []
    statement = (
        select(model)
        .where(col(model.id).in_(ids))  # type: ignore[attr-defined]
        .order_by(model.id)  # type: ignore[attr-defined]
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(session.exec(statement).all())


def lock_rows(session: Session, model: type[Model], ids, *columns) -> list:
    """``lock_all`` as plain rows (no ORM objects: cheaper when a batch only reads them)."""
    ids = sorted(set(ids))
    if not ids:
        return []
    table = model.__table__  # type: ignore[attr-defined]
    statement = select(*(columns or table.c)).where(table.c.id.in_(ids)).order_by(table.c.id).with_for_update()
    return list(session.execute(statement).all())


def as_id(id_: int | str | None, what: str, error: type[NotFound] | type[UnknownReference]) -> int:
    """The id ``id_`` names, or ``error`` (a 404 for a path, a 422 naming the field for a body)."""
    key = parse_id(id_)
    if key is not None:
        return key
    if error is UnknownReference:
        raise UnknownReference(f"{what} {id_!r} does not exist", field=what)
    raise NotFound(f"{what} {id_!r} does not exist")
