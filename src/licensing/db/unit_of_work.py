"""The unit of work: one use case, one transaction, opened here and not by routes or commands.

``run(database, use_case)`` opens ``Database.write()`` and calls ``use_case(session)`` in it:

* the transaction is the use case's: it commits when the use case returns and rolls back on
  any error (nothing is written by a refused request);
* ORM changes are flushed before any Core statement reads (``db.bulk.reading``), so a use case
  may mix the ORM and multi-row statements;
* what must happen only once the change is committed (the mail of an approved document, through
  the events it recorded) runs after the commit (``db.after_commit``), never after a rollback;
* with an ``idempotency`` guard, the outcome of an earlier identical request is replayed, or this
  one's is stored in the same transaction. Two requests racing with the same key: the loser's
  insert fails on the guard's own unique key, and it is run once more (replaying the winner's
  outcome). Any other ``IntegrityError`` is the use case's failure, never retried.

Long-running use cases (the billing run, the expiry sweep, delivery) open one unit of work per
step themselves (a batch, an account, a claim), with the same ``Database.write()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from licensing.db import Database
from licensing.errors import IdempotencyConflict

T = TypeVar("T")


class Idempotency(Protocol[T]):
    def replay(self, session: Session) -> T | None:
        """The stored outcome of the same request, or None (a different request with the same
        key raises ``IdempotencyConflict``)."""

    def remember(self, session: Session, outcome: T) -> None:
        """Store the outcome, in the use case's transaction."""

    def lost_race(self, error: IntegrityError) -> bool:
        """Whether the error is the guard's own unique key (a concurrent request won)."""


def run(
    database: Database, use_case: Callable[[Session], T], *, idempotency: Idempotency[T] | None = None, wait: bool = True
) -> T:
    """``wait=False``: begin at once or raise ``db.WriterBusy`` (see ``Database.write``)."""
    if idempotency is None:
        with database.write(wait=wait) as session:
            return use_case(session)
    for _attempt in range(2):
        try:
            with database.write(wait=wait) as session:
                stored = idempotency.replay(session)
                if stored is not None:
                    return stored
                outcome = use_case(session)
                idempotency.remember(session, outcome)
            return outcome
        except IntegrityError as error:
            if not idempotency.lost_race(error):
                raise  # any other constraint is the use case's own failure, not a race on the key
    raise IdempotencyConflict("a request with this Idempotency-Key is being processed; retry")
