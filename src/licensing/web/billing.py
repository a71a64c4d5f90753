"""A billing run started from the console: the billing use case (``invoicing.billing.run_billing``)
in a thread of its own, its progress kept for the page that shows it.

One run at a time per application; the page polls ``progress`` (HTMX) until it is finished."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import date, datetime

from fastapi import FastAPI

from licensing import clock
from licensing.db import Database
from licensing.invoicing.billing import BillingRunResult, run_billing

log = logging.getLogger("licensing.console")


@dataclass(slots=True)
class BillingProgress:
    as_of: date
    approve: bool
    actor: str
    started_at: datetime
    done: int = 0
    total: int | None = None
    finished_at: datetime | None = None
    result: BillingRunResult | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def percent(self) -> int:
        if not self.total:
            return 0 if self.running else 100
        return round(100 * self.done / self.total)


class RunAlreadyGoing(Exception):
    pass


_start_lock = threading.Lock()


def latest(app: FastAPI) -> BillingProgress | None:
    """The console's latest billing run in this process (running or finished), if any."""
    return getattr(app.state, "console_billing_run", None)


def start(app: FastAPI, database: Database, *, as_of: date, approve: bool, actor: str) -> BillingProgress:
    """Start a billing run in a thread; refused while another console run is going."""
    with _start_lock:
        current = latest(app)
        if current is not None and current.running:
            raise RunAlreadyGoing()
        progress = BillingProgress(as_of=as_of, approve=approve, actor=actor, started_at=clock.now())
        app.state.console_billing_run = progress

    def advance(done: int, total: int) -> None:
        progress.done, progress.total = done, total

    def work() -> None:
        try:
            progress.result = run_billing(database, as_of=as_of, now=progress.started_at, actor=actor, approve_all=approve, progress=advance)
        except Exception as error:  # noqa: BLE001 - shown on the page and logged
            log.exception("billing run from the console failed")
            progress.error = f"{type(error).__name__}: {error}"
        finally:
            progress.finished_at = clock.now()

    threading.Thread(target=work, name="console-billing-run", daemon=True).start()
    return progress
