"""Alembic environment: the schema is ``SQLModel.metadata`` of every table in licensing.models."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import licensing.models  # noqa: F401 - registers every table
from licensing.db import _make_engine, normalise_url
from licensing.db.types import ScaledDecimal, UTCDateTime

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=normalise_url(config.get_main_option("sqlalchemy.url")), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = _make_engine(config.get_main_option("sqlalchemy.url"), immediate=True)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def render_item(type_, obj, autogen_context):
    """Migrations name the storage types, not our Python-side decorators."""
    if type_ == "type" and isinstance(obj, ScaledDecimal):
        return "sa.BigInteger()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
