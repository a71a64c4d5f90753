from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from licensing.credits.kinds import KIND_CHECK
from licensing.db.types import Amount, Credits, UTCDateTime


class Grant(SQLModel, table=True):
    """Credits placed in an account (or one of its business units) from one source.

    The counters always satisfy ``credits = remaining + used + held + removed + expired``; they
    are a cache of the ledger entries written against the grant.
    """

    __tablename__ = "grants"
    __table_args__ = (
        CheckConstraint("remaining >= 0", name="grant_remaining_not_negative"),
        CheckConstraint("credits > 0", name="grant_credits_positive"),
        CheckConstraint("credits = remaining + used + held + removed + expired", name="grant_conserved"),
        Index("ix_grants_account_expiry", "account_id", "expires_at"),
        # The grants a booking may draw on, in the order it draws on them (credits/consumption.py):
        # a booking reads the first few instead of sorting every grant of the account; with
        # ``remaining`` last, an account's credits are summed from the index alone (no table rows).
        Index(
            "ix_grants_drawable", "account_id", "expires_at", "valid_from", "id", "remaining",
            postgresql_where=text("remaining > 0"), sqlite_where=text("remaining > 0"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    business_unit_id: int | None = Field(default=None, foreign_key="business_units.id")
    source_type: str = Field(max_length=30)
    source_id: str = Field(max_length=40)
    contract_service_id: int | None = Field(default=None, foreign_key="contract_services.id")
    # The invoice line whose approval granted these credits (credit packs on invoices).
    invoice_line_id: int | None = Field(default=None, foreign_key="invoice_lines.id", index=True)
    credits: Decimal = Field(sa_column=Column(Credits(), nullable=False))
    remaining: Decimal = Field(sa_column=Column(Credits(), nullable=False))
    used: Decimal = Field(default=Decimal("0"), sa_column=Column(Credits(), nullable=False, default=0))
    held: Decimal = Field(default=Decimal("0"), sa_column=Column(Credits(), nullable=False, default=0))
    removed: Decimal = Field(default=Decimal("0"), sa_column=Column(Credits(), nullable=False, default=0))
    expired: Decimal = Field(default=Decimal("0"), sa_column=Column(Credits(), nullable=False, default=0))
    # The service's max_rollover when the grant was made; ``rollover_pending`` until the cap has
    # been applied to the service's earlier grants at ``valid_from`` (SPEC 3).
    rollover_cap: Decimal | None = Field(default=None, sa_column=Column(Credits(), nullable=True))
    rollover_pending: bool = False
    # For a grant made by a transfer: the grant its credits came from.
    origin_grant_id: int | None = Field(default=None, foreign_key="grants.id")
    # Money value of all the granted credits (the line's net); one credit is worth value / credits.
    value: Decimal = Field(sa_column=Column(Amount(), nullable=False))
    currency: str = Field(max_length=3)
    valid_from: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LedgerEntry(SQLModel, table=True):
    """One immutable movement of credits. ``id`` is the recording order."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(KIND_CHECK, name="ledger_kind"),
        Index("ix_ledger_account_id", "account_id", "id"),
        Index("ix_ledger_account_occurred", "account_id", "occurred_at"),
        Index("ix_ledger_source", "source_type", "source_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    grant_id: int | None = Field(default=None, foreign_key="grants.id", index=True)
    business_unit_id: int | None = Field(default=None, foreign_key="business_units.id")
    kind: str = Field(max_length=30)
    credits: Decimal = Field(sa_column=Column(Credits(), nullable=False))
    balance_after: Decimal = Field(sa_column=Column(Credits(), nullable=False))
    # The change of the money value of the grant's outstanding credits (``ledger.value_moved``).
    value: Decimal = Field(default=Decimal("0"), sa_column=Column(Amount(), nullable=False, default=0))
    source_type: str = Field(max_length=30)
    source_id: str = Field(max_length=40)
    actor: str = Field(max_length=200)
    occurred_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    recorded_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Consumption(SQLModel, table=True):
    __tablename__ = "consumptions"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    business_unit_id: int | None = Field(default=None, foreign_key="business_units.id")
    member_id: int | None = Field(default=None, foreign_key="members.id")
    credit_price_id: int | None = Field(default=None, foreign_key="credit_prices.id")
    quantity: Decimal | None = Field(default=None, sa_column=Column(Amount(), nullable=True))
    credits: Decimal = Field(sa_column=Column(Credits(), nullable=False))
    description: str | None = Field(default=None, max_length=2000)
    reference: str | None = Field(default=None, max_length=200)
    occurred_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reversed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # Credits asked for beyond those available, recorded as debt (``allow_overdraft``).
    debt: Decimal = Field(default=Decimal("0"), sa_column=Column(Credits(), nullable=False, default=0))
    # Set when the consumption is the capture of a hold.
    hold_id: int | None = Field(default=None, foreign_key="holds.id")
    actor: str = Field(max_length=200)


class Hold(SQLModel, table=True):
    """Credits reserved for an event at a future moment (SPEC 4)."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("status in ('open', 'captured', 'released')", name="hold_status"),
        Index("ix_holds_open_deadline", "status", "deadline"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    business_unit_id: int | None = Field(default=None, foreign_key="business_units.id")
    member_id: int | None = Field(default=None, foreign_key="members.id")
    credit_price_id: int | None = Field(default=None, foreign_key="credit_prices.id")
    quantity: Decimal | None = Field(default=None, sa_column=Column(Amount(), nullable=True))
    credits: Decimal = Field(sa_column=Column(Credits(), nullable=False))
    description: str | None = Field(default=None, max_length=2000)
    reference: str | None = Field(default=None, max_length=200)
    event_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    deadline: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(default="open", max_length=20)
    consumption_id: int | None = Field(default=None)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    closed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    actor: str = Field(max_length=200)


class Adjustment(SQLModel, table=True):
    """Credits added or deducted by hand, with the reason and who did it (SPEC 5)."""

    __tablename__ = "adjustments"
    __table_args__ = (CheckConstraint("kind in ('add', 'deduct')", name="adjustment_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    business_unit_id: int | None = Field(default=None, foreign_key="business_units.id")
    kind: str = Field(max_length=10)
    credits: Decimal = Field(sa_column=Column(Credits(), nullable=False))
    lifetime: str | None = Field(default=None, max_length=40)
    reason: str = Field(max_length=2000)
    actor: str = Field(max_length=200)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Transfer(SQLModel, table=True):
    """Credits moved between accounts or business units, keeping their expiry and value."""

    __tablename__ = "transfers"

    id: int | None = Field(default=None, primary_key=True)
    from_account_id: int = Field(foreign_key="accounts.id", index=True)
    to_account_id: int = Field(foreign_key="accounts.id", index=True)
    from_business_unit_id: int | None = Field(default=None, foreign_key="business_units.id")
    to_business_unit_id: int | None = Field(default=None, foreign_key="business_units.id")
    credits: Decimal = Field(sa_column=Column(Credits(), nullable=False))
    reason: str = Field(max_length=2000)
    actor: str = Field(max_length=200)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ExpiryNotice(SQLModel, table=True):
    """A ``credits.expiring`` event emitted for one grant at one horizon (days before expiry):
    the unique key makes each notice once."""

    __tablename__ = "expiry_notices"
    __table_args__ = (UniqueConstraint("grant_id", "horizon_days", name="uq_expiry_notice"),)

    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="grants.id")
    horizon_days: int
    credits: Decimal = Field(sa_column=Column(Credits(), nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
