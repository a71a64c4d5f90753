"""Small helpers shared by the use cases: fetch-or-fail and row locks."""

from __future__ import annotations

from functools import lru_cache
from typing import TypeVar

from sqlalchemy import bindparam
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
