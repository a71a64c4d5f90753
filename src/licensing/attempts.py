"""What mail delivery and webhook delivery share: counting a failed attempt on a claimed row
(``attempts``, ``last_error``, ``claimed_until``, ``status``, ``next_attempt_at``) and naming
the error."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

LAST_ERROR_LENGTH = 2000  # the columns' length


def describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def count_failure(row, *, error: str, now: datetime, max_attempts: int, retry_delay: Callable[[int], timedelta]) -> str:
    """One more failed attempt on ``row``, released from its claim: ``failed`` after
    ``max_attempts``, else due again after ``retry_delay(attempts)``. Returns the new status."""
    row.attempts += 1
    row.last_error = error[:LAST_ERROR_LENGTH]
    row.claimed_until = None
    if row.attempts >= max_attempts:
        row.status = "failed"
    else:
        row.next_attempt_at = now + retry_delay(row.attempts)
    return row.status
