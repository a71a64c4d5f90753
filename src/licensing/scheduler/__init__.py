"""The scheduler (SPEC 9, issue "scheduler and outbox"): which use case to call when.

Jobs are cron expressions in the operator's time zone (``JOBS``, overridable with the setting
``LICENSING_SCHEDULE``). Each job only calls a use case whose work is decided by the data
(lines not yet billed, grants not yet expired, notices not yet emitted, mails not yet sent),
so a job that runs twice does nothing twice, and one run after downtime does all the missed
work once: the billing run bills everything due up to today, the sweep expires everything due
by now.

* ``job_runs`` records, per job, the latest scheduled moment it completed. A job is due when a
  scheduled moment has passed since then (``--once`` runs exactly those, then exits); a job
  that has never run is due at its latest scheduled moment.
* Several schedulers on one PostgreSQL database share the work: a job runs under a
  session-level advisory lock (``pg_try_advisory_lock``), so one process runs it while the
  others skip it; the use cases' own unique keys (lines, notices, deliveries) remain the last
  line of defence. On SQLite, a scheduler holds an exclusive lock file next to the database
  for its whole life: a second one refuses to start, with a message saying why.
* A job that fails is logged and recorded (``last_error``) and tried again at its next
  moment; work already committed (one batch, one account, one mail at a time) stays done.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from croniter import croniter
from sqlalchemy import text
from sqlmodel import select

import licensing.models  # noqa: F401 - every table, so that the jobs' queries resolve their foreign keys
from licensing import clock
from licensing.config import Settings, get_settings
from licensing.db import Database

log = logging.getLogger("licensing.scheduler")

# Default schedules, in the operator's zone (seconds, when given, are the sixth field).
JOBS: dict[str, str] = {
    "renewals": "50 0 * * *",
    "billing-run": "0 1 * * *",
    "expiry-sweep": "5 * * * *",
    "expiry-notices": "15 1 * * *",
    "hold-deadlines": "*/5 * * * *",
    "deliveries": "* * * * *",
    "webhooks": "* * * * * */5",
}


class SchedulerAlreadyRunning(RuntimeError):
    pass


def schedules(settings: Settings | None = None) -> dict[str, str]:
    settings = settings or get_settings()
    unknown = set(settings.schedule) - set(JOBS)
    if unknown:
        raise ValueError(f"LICENSING_SCHEDULE names unknown jobs: {', '.join(sorted(unknown))} (jobs: {', '.join(JOBS)})")
    merged = JOBS | settings.schedule
    for name, expression in merged.items():
        if not croniter.is_valid(expression):
            raise ValueError(f"the schedule of job {name!r} is not a cron expression: {expression!r}")
    return merged


def run_job(database: Database, name: str, now: datetime, settings: Settings | None = None) -> str:
    """Run one job's use case at ``now``; returns a line for the log."""
    settings = settings or get_settings()
    if name == "billing-run":
        from licensing.invoicing.billing import run_billing

        result = run_billing(database, as_of=clock.local_date(now, settings.zone), now=now, actor="scheduler", settings=settings)
        failed = "".join(f"; licence {failure.licence_id} not billed: {failure.error}" for failure in result.failed)
        return f"{result.invoices_created} invoices created, {result.invoices_approved} approved{failed}"
    if name == "renewals":
        from licensing.licences.renewal import renew_due_licences

        renewals = renew_due_licences(database, today=clock.local_date(now, settings.zone), now=now)
        failed = "".join(f"; licence {licence_id} not renewed: {error}" for licence_id, error in renewals.failed)
        return f"{renewals.renewed} licences renewed{failed}"
    if name == "expiry-sweep":
        from licensing.credits.expiry import sweep_expiries

        return f"{sweep_expiries(database, now=now)} grants expired (rollover cuts recorded)"
    if name == "expiry-notices":
        from licensing.credits.notices import emit_expiry_notices

        return f"{emit_expiry_notices(database, now=now, settings=settings)} expiry notices"
    if name == "hold-deadlines":
        from licensing.credits.holds import settle_hold_deadlines

        return f"{settle_hold_deadlines(database, now=now, settings=settings)} holds settled"
    if name == "deliveries":
        from licensing.documents.delivery import send_due

        run = send_due(database, now=now, settings=settings)
        return f"{run.sent} mails sent, {run.retried} to retry, {run.failed} failed"
    if name == "webhooks":
        from licensing.webhooks.background import send_in_background
        from licensing.webhooks.services import fan_out

        # Only the fan-out runs in the job: the POSTs go to a background sender (one per process
        # and database), so that a slow receiver never delays the jobs after this one.
        fanned = fan_out(database, now=now)
        return f"{fanned} webhook deliveries queued; {send_in_background(database, now=now, settings=settings)}"
    raise ValueError(f"unknown job {name!r}")


@dataclass(frozen=True, slots=True)
class JobOutcome:
    name: str
    due_at: datetime
    summary: str | None = None
    error: str | None = None
    skipped: bool = False  # another scheduler holds the job


def latest_moment(expression: str, now: datetime, settings: Settings) -> datetime:
    """The latest scheduled moment at or before ``now`` (aware, UTC)."""
    local = now.astimezone(settings.zone)
    return croniter(expression, local + timedelta(microseconds=1)).get_prev(datetime).astimezone(UTC)


def due_jobs(database: Database, now: datetime, settings: Settings | None = None) -> list[tuple[str, datetime]]:
    """(job, latest scheduled moment) of every job with a moment passed since its last run."""
    from licensing.scheduler.models import JobRun

    settings = settings or get_settings()
    with database.read() as session:
        last = {run.name: run.last_due_at for run in session.exec(select(JobRun)).all()}
    due = []
    for name, expression in schedules(settings).items():
        moment = latest_moment(expression, now, settings)
        if last.get(name) is None or moment > last[name]:
            due.append((name, moment))
    return due


def run_due(
    database: Database, *, now: datetime | None = None, settings: Settings | None = None, only: set[str] | None = None,
    on_outcome: Callable[[JobOutcome], None] | None = None,
) -> list[JobOutcome]:
    """Run every job that is due (in the order of ``JOBS``), once each; the ``--once`` of the
    command line and each tick of the long-running loop."""
    from licensing.scheduler.models import JobRun

    settings = settings or get_settings()
    outcomes = []
    for name, moment in due_jobs(database, now or clock.now(), settings):
        if only is not None and name not in only:
            continue
        with job_lock(database, name) as acquired:
            if not acquired:
                outcome = JobOutcome(name, moment, skipped=True)
            else:
                started = now or clock.now()
                with database.write() as session:
                    run = session.get(JobRun, name)
                    if run is not None and run.last_due_at is not None and run.last_due_at >= moment:
                        continue  # another scheduler completed it meanwhile
                    if run is None:
                        run = JobRun(name=name)
                    run.last_started_at = started
                    session.add(run)
                try:
                    summary = run_job(database, name, started, settings)
                except Exception as error:  # noqa: BLE001 - recorded, retried at its next moment
                    log.exception("job %s failed", name)
                    outcome = JobOutcome(name, moment, error=f"{type(error).__name__}: {error}"[:2000])
                    with database.write() as session:
                        run = session.get(JobRun, name)
                        run.last_error = outcome.error
                        session.add(run)
                else:
                    outcome = JobOutcome(name, moment, summary=summary)
                    with database.write() as session:
                        run = session.get(JobRun, name)
                        run.last_due_at, run.last_completed_at, run.last_error = moment, now or clock.now(), None
                        run.runs += 1
                        session.add(run)
                    log.info("%s: %s", name, summary)
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    return outcomes


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
