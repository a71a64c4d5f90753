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

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter
from sqlmodel import select

import licensing.models  # noqa: F401 - every table, so that the jobs' queries resolve their foreign keys
from licensing import clock
from licensing.config import Settings, get_settings
from licensing.db import Database
from licensing.scheduler.jobs import TABLE

log = logging.getLogger("licensing.scheduler")

# Default schedules, in the operator's zone (the jobs themselves: ``scheduler.jobs.TABLE``).
JOBS: dict[str, str] = {name: expression for name, (expression, _job) in TABLE.items()}


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
    if name not in TABLE:
        raise ValueError(f"unknown job {name!r}")
    return TABLE[name][1](database, now, settings or get_settings())


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


# The locks and the loop live in their own modules; importing them from here keeps working.
from licensing.scheduler.locks import ProcessLock, SchedulerAlreadyRunning, job_lock  # noqa: E402
from licensing.scheduler.loop import loop, next_moment, start_in_background  # noqa: E402

__all__ = [
    "JOBS", "JobOutcome", "ProcessLock", "SchedulerAlreadyRunning", "due_jobs", "job_lock", "latest_moment", "loop",
    "next_moment", "run_due", "run_job", "schedules", "start_in_background",
]
