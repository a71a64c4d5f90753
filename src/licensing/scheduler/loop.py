"""The long-running scheduler: a loop that runs the due jobs and sleeps until the next moment."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from croniter import croniter

from licensing import clock
from licensing.config import Settings, get_settings
from licensing.db import Database
from licensing.scheduler import run_due, schedules
from licensing.scheduler.locks import ProcessLock

log = logging.getLogger("licensing.scheduler")


def next_moment(now: datetime, settings: Settings) -> datetime:
    local = now.astimezone(settings.zone)
    return min(croniter(expression, local).get_next(datetime) for expression in schedules(settings).values()).astimezone(UTC)


def loop(database: Database, stop: threading.Event, settings: Settings | None = None) -> None:
    """Run due jobs until ``stop`` is set, sleeping until the next scheduled moment."""
    settings = settings or get_settings()
    while not stop.is_set():
        try:
            run_due(database, settings=settings)
        except Exception:  # noqa: BLE001 - the loop never dies: the next tick tries again
            log.exception("scheduler tick failed")
        wait = (next_moment(clock.now(), settings) - clock.now()).total_seconds()
        stop.wait(min(max(wait, 0.2), 30))


def start_in_background(database: Database) -> threading.Event:
    """The in-process scheduler of ``licensing serve`` (refuses, like a second ``licensing
    scheduler``, when another scheduler holds an SQLite database)."""
    lock = ProcessLock(database)
    lock.acquire()
    stop = threading.Event()

    def run() -> None:
        try:
            loop(database, stop)
        finally:
            lock.release()

    threading.Thread(target=run, name="licensing-scheduler", daemon=True).start()
    return stop
