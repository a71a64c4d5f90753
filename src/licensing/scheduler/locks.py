"""Who may run a job: one scheduler per SQLite database, one process per job on PostgreSQL.

* On PostgreSQL a job runs under a session-level advisory lock (``pg_try_advisory_lock``), so
  one process runs it while the others skip it; the use cases' own unique keys (lines, notices,
  deliveries) remain the last line of defence.
* On SQLite a scheduler holds an exclusive lock file next to the database for its whole life:
  a second one refuses to start, with a message saying why.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from licensing.db import Database


class SchedulerAlreadyRunning(RuntimeError):
    pass


@contextmanager
def job_lock(database: Database, name: str) -> Iterator[bool]:
    """On PostgreSQL, a session advisory lock per job (other schedulers skip the job while it is
    held). On SQLite, the scheduler's lock file already excludes other schedulers."""
    if database.is_sqlite:
        yield True
        return
    key = int.from_bytes(hashlib.sha256(f"licensing:job:{name}".encode()).digest()[:8], "big", signed=True)
    with database.writer.connect() as connection:
        acquired = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        connection.commit()
        try:
            yield bool(acquired)
        finally:
            if acquired:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()


class ProcessLock:
    """On SQLite, one scheduler per database: an exclusive lock on ``<database>.scheduler.lock``,
    held for the scheduler's life (released by the system if the process dies)."""

    def __init__(self, database: Database) -> None:
        self.path: Path | None = None
        self._file = None
        if database.is_sqlite:
            location = database.url.split("///", 1)[-1] if "///" in database.url else ""
            if location and location != ":memory:":
                self.path = Path(location).with_name(Path(location).name + ".scheduler.lock")

    def acquire(self) -> None:
        if self.path is None:
            return
        self._file = open(self.path, "a+")  # noqa: SIM115 - held for the scheduler's life
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            self._file = None
            raise SchedulerAlreadyRunning(
                f"another scheduler ({holder}) is running on this SQLite database ({self.path.with_suffix('').with_suffix('')}); "
                "SQLite runs one scheduler at a time: stop it first (or run `licensing serve --no-scheduler` beside it), "
                "or use PostgreSQL to run several"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}")
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
