"""Create or upgrade the schema with Alembic (``licensing migrate``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config

from licensing.db import normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(database_url).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The latest revision this version of licensing knows."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def revision_of(connection) -> str | None:
    """The Alembic revision the database is at (None: no schema, not even the version table)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def current_revision(database_url: str) -> str | None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(normalise_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return revision_of(connection)
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class Upgrade:
    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.before == self.after:
            latest = "the latest revision" if self.after == head_revision() else "revision"
            return f"the schema is already at {latest} ({self.after})"
        if self.before is None:
            return f"created the schema (revision {self.after})"
        return f"upgraded from {self.before} to {self.after}"


def upgrade(database_url: str, revision: str = "head") -> Upgrade:
    """Upgrade to ``revision`` and say what was done (the revision before and after)."""
    before = current_revision(database_url)
    command.upgrade(alembic_config(database_url), revision)
    return Upgrade(before, current_revision(database_url))
