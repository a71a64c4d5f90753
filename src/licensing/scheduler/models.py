from __future__ import annotations

import datetime as dt

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from licensing.db.types import UTCDateTime


class JobRun(SQLModel, table=True):
    """The last completed run of one scheduled job: after downtime, the next run catches up on
    every scheduled moment missed since ``last_due_at``, once."""

    __tablename__ = "job_runs"

    name: str = Field(primary_key=True, max_length=60)
    # The latest scheduled moment the job has completed for.
    last_due_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_started_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_completed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_error: str | None = Field(default=None, max_length=2000)
    runs: int = 0
