"""The one delivery worker: what leaves the engine after a commit, sent at least once.

Two channels use it: approved documents by e-mail (``documents.delivery``, rows of
``deliveries``) and events by webhook (``webhooks.services``, rows of ``webhook_deliveries``).
A row of either is an outbound message with ``status`` (``pending`` until it arrived or was
given up on), ``attempts``, ``last_error``, ``next_attempt_at`` and ``claimed_until``. ``work``
sends the due rows of a channel one at a time, in three steps:

1. **Claim** one due row (pending, ``next_attempt_at <= now``, no live claim) in a short write
   transaction of its own: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that
   concurrent workers take different rows; SQLite's write lock serialises the claims. The claim
   is a lease (``claimed_until``), committed before anything is sent: a worker that crashed
   leaves the row to be claimed again once the lease runs out. The channel's ``prepare`` reads,
   in that transaction, what sending needs (and may stamp the row, as the mail's Message-ID).
2. **Send** outside any transaction (``send``). An exception, or a ``Failure`` returned, is a
   failed attempt; the channel's log says why.
3. **Record** the outcome in a second short transaction: done (the channel's ``done`` status,
   ``on_done`` adds its columns and events; a row another worker finished meanwhile is left
   alone), or a failure counted: ``last_error`` kept, the next attempt pushed back by the
   channel's ``retry_delay``, ``failed`` after ``max_attempts``. A failure is counted only by
   the worker whose lease is still the row's.

``start`` runs a channel's work in a thread, at most one per database and channel, so that a
use case or a scheduler tick never waits for a mail server or a receiver.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, or_, select

from licensing.db import Database
from licensing.db.repository import lock

LAST_ERROR_LENGTH = 2000  # the columns' length


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt, in the words the row keeps (``last_error``)."""

    error: str
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class Run:
    done: int = 0  # arrived (sent, delivered)
    retried: int = 0  # failed this run, to be tried again
    failed: int = 0  # given up on this run (status ``failed``)


@dataclass(frozen=True, kw_only=True)
class Channel:
    """What one kind of outbound row needs of the worker."""

    name: str  # for the log and the sender threads
    table: type  # the rows' model: id, status, attempts, last_error, next_attempt_at, claimed_until
    done: str  # the status of a row that arrived
    log: logging.Logger
    max_attempts: int
    retry_delay: Callable[[int], timedelta]  # the wait after the n-th failed attempt
    lease_until: Callable[[datetime], datetime]  # a claim made at that moment runs out then
    prepare: Callable[[Session, Any], Any]  # in the claim's transaction: what ``send`` needs
    send: Callable[[Any, datetime], Any]  # outside any transaction: an outcome, or a Failure
    on_done: Callable[[Session, Any, Any, Any, datetime], None]  # (session, row, job, outcome, now)
    on_failure: Callable[[Any, Failure], None] = lambda _row, _failure: None
    order: tuple = ()  # the order due rows are taken in (after their ids)
    filters: tuple = ()  # more conditions a due row meets
    describe_row: Callable[[Any], str] = field(default=lambda row: str(row.id))


def describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def due(table: type, now: datetime) -> list:
    """The conditions of a row that is due at ``now``."""
    return [
        table.status == "pending",
        table.next_attempt_at <= now,
        or_(col(table.claimed_until).is_(None), col(table.claimed_until) <= now),
    ]


def due_count(database: Database, table: type, now: datetime, *filters) -> int:
    with database.read() as session:
        return session.exec(select(func.count()).select_from(table).where(*due(table, now), *filters)).one()


def work(
    database: Database, channel: Channel, *, now: datetime, limit: int = 100, budget: timedelta | None = None,
    only: Iterable[int] | None = None,
) -> Run:
    """Send up to ``limit`` due rows of the channel (only those of ``only`` when given), one at
    a time: claim, send, record. With a ``budget``, no row is claimed once the run has lasted
    that long."""
    only = sorted(set(only)) if only is not None else None
    if only == []:
        return Run()
    done = retried = failed = 0
    started = time.monotonic()

    def current() -> datetime:
        # ``now`` moved on by the time this run has taken: leases (and webhook signatures) are
        # stamped with the moment of the attempt, late in a long run too, while tests that pass
        # ``now`` stay in control of the clock.
        return now + timedelta(seconds=time.monotonic() - started)

    for _ in range(limit):
        if budget is not None and time.monotonic() - started >= budget.total_seconds():
            break
        claim = _claim(database, channel, now=now, lease_until=channel.lease_until(current()), only=only)
        if claim is None:
            break
        row, job = claim
        try:
            outcome = channel.send(job, current())
        except Exception as error:  # noqa: BLE001 - any failure to send is recorded and retried
            channel.log.warning("%s %s failed: %s", channel.name, channel.describe_row(row), describe(error))
            outcome = Failure(describe(error))
        if isinstance(outcome, Failure):
            status = _record_failure(database, channel, row, outcome, now=now)
            failed += status == "failed"
            retried += status == "pending"
        else:
            done += _record_done(database, channel, row, job, outcome, now=now)
    return Run(done=done, retried=retried, failed=failed)


def _claim(database: Database, channel: Channel, *, now: datetime, lease_until: datetime, only: list[int] | None) -> tuple[Any, Any] | None:
    table = channel.table
    with database.write() as session:
        statement = (
            select(table).where(*due(table, now), *channel.filters).order_by(*channel.order, table.id).limit(1).with_for_update(skip_locked=True)
        )
        if only is not None:
            statement = statement.where(col(table.id).in_(only))
        row = session.exec(statement).first()
        if row is None:
            return None
        row.claimed_until = lease_until
        job = channel.prepare(session, row)
        session.add(row)
    return row, job


def _record_done(database: Database, channel: Channel, claimed, job, outcome, *, now: datetime) -> int:
    with database.write() as session:
        row = lock(session, channel.table, claimed.id, channel.name)
        if row.status == channel.done:  # another worker took it over after our lease ran out, and finished it
            return 0
        # It did arrive: done, even if it was given up on meanwhile.
        row.status, row.claimed_until = channel.done, None
        row.attempts += 1
        channel.on_done(session, row, job, outcome, now)
        session.add(row)
    return 1


def _record_failure(database: Database, channel: Channel, claimed, failure: Failure, *, now: datetime) -> str | None:
    """The row's status after the failure, or None when it is no longer ours to count."""
    with database.write() as session:
        row = lock(session, channel.table, claimed.id, channel.name)
        if row.status != "pending" or row.claimed_until != claimed.claimed_until:
            return None
        channel.on_failure(row, failure)
        row.attempts += 1
        row.last_error = failure.error[:LAST_ERROR_LENGTH]
        row.claimed_until = None
        if row.attempts >= channel.max_attempts:
            row.status = "failed"
        else:
            row.next_attempt_at = now + channel.retry_delay(row.attempts)
        session.add(row)
        return row.status


# -- in the background ------------------------------------------------------------------------

_lock = threading.Lock()
_threads: dict[tuple[str, str], tuple[threading.Thread, list[bool]]] = {}  # (database URL, channel name) -> sender, "go again"


def start(
    database: Database, name: str, first: Callable[[], None], *, again: Callable[[], None] | None = None, daemon: bool,
) -> tuple[threading.Thread, bool]:
    """Run ``first`` in a thread, at most one per database and channel ``name``: (the thread,
    whether it was started now). A call while one is at work starts nothing; with ``again``, it
    makes that thread run ``again`` once more when it is done (what was committed meanwhile is
    not left for the scheduler). The callables log their own errors."""
    key = (database.url, name)
    with _lock:
        running = _threads.get(key)
        if running is not None and running[0].is_alive():
            if again is not None:
                running[1][0] = True
            return running[0], False
        flag = [False]

        def run() -> None:
            step = first
            while True:
                step()
                with _lock:
                    if again is None or not flag[0]:
                        del _threads[key]
                        return
                    flag[0], step = False, again

        thread = threading.Thread(target=run, name=f"licensing-{name}", daemon=daemon)
        _threads[key] = (thread, flag)
        thread.start()
    return thread, True


def wait(database: Database | None = None, timeout: int | None = None) -> bool:
    """Wait up to ``timeout`` seconds each for the senders of ``database`` (or every sender);
    whether none is still at work."""
    with _lock:
        threads = [thread for (url, _name), (thread, _flag) in _threads.items() if database is None or url == database.url]
    for thread in threads:
        thread.join(timeout)
    return not any(thread.is_alive() for thread in threads)
