"""The credit engine's invariants under random sequences of grants, consumptions, reversals,
clock advances and expiry sweeps (SPEC 4, 5, 7).

A small model of the SPEC rules runs alongside the engine: it chooses the grants a consumption
must draw on (earliest expiry first, never-expiring last, ties by valid_from then id; a unit's
consumption may use its unit's and unrestricted grants, no-unit consumptions only unrestricted),
and what expires. After every step the database must agree with the model and with itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import func, select

from licensing.accounts.models import Account
from licensing.accounts.services import create_account, create_business_unit
from licensing.credits.balance import credit_summary, summary_from_ledger
from licensing.credits.consumption import consume, reverse_consumption
from licensing.credits.expiry import sweep_expiries
from licensing.credits.grants import create_grant
from licensing.credits.models import Consumption, Grant, LedgerEntry
from licensing.db.repository import lock
from licensing.errors import InsufficientCredits

START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
ZERO = Decimal(0)
UNITS = (None, "Cardiology", "Neurology")

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("12.00"), places=2)


@dataclass
class ModelGrant:
    id: int
    unit: str | None
    credits: Decimal
    valid_from: datetime
    expires_at: datetime | None
    remaining: Decimal
    used: Decimal = ZERO
    expired: Decimal = ZERO

    def expired_by(self, moment: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= moment

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and not self.expired_by(moment)


@dataclass
class ModelConsumption:
    id: int
    draws: list[tuple[int, Decimal]]
    reversed: bool = False


@dataclass
class Model:
    grants: dict[int, ModelGrant] = field(default_factory=dict)
    consumptions: list[ModelConsumption] = field(default_factory=list)

    def record_due_expiries(self, now: datetime) -> None:
        for grant in self.grants.values():
            if grant.expired_by(now) and grant.remaining > 0:
                grant.expired += grant.remaining
                grant.remaining = ZERO

    def eligible(self, unit: str | None, moment: datetime, now: datetime) -> list[ModelGrant]:
        """Grants a booking for ``moment`` made at ``now`` draws on: valid at the moment, and not
        expired by now (a late booking finds credits expired since its moment gone)."""
        grants = [
            grant for grant in self.grants.values()
            if grant.valid_at(moment) and not grant.expired_by(now) and grant.remaining > 0 and grant.unit in {None, unit}
        ]
        return sorted(grants, key=lambda g: (g.expires_at is None, g.expires_at or START, g.valid_from, g.id))

    def unrecorded_breakage(self, now: datetime) -> Decimal:
        return sum((grant.remaining for grant in self.grants.values() if grant.expired_by(now)), ZERO)


class CreditMachine(RuleBasedStateMachine):
    def __init__(self, database) -> None:
        super().__init__()
        self.database = database
        self.now = START
        self.model = Model()
        with database.write() as session:
            account = create_account(session, name="Invariant Ltd", email="billing@invariant.test", currency="EUR", at=START)
            self.account_id = account.id
            self.unit_ids = {None: None}
            for name in UNITS[1:]:
                self.unit_ids[name] = create_business_unit(session, account.id, name=name, at=START).id

    # -- steps -----------------------------------------------------------------------------

    @rule(
        credits=amounts,
        valid_in_hours=st.sampled_from([0, 0, 0, 5, 30]),
        lifetime_hours=st.sampled_from([None, 6, 24, 48, 100]),
        unit=st.sampled_from(UNITS),
    )
    def grant(self, credits, valid_in_hours, lifetime_hours, unit):
        valid_from = self.now + timedelta(hours=valid_in_hours)
        expires_at = None if lifetime_hours is None else valid_from + timedelta(hours=lifetime_hours)
        with self.database.write() as session:
            account = lock(session, Account, self.account_id, "account")
            row = create_grant(
                session, account, credits=credits, value=credits * 10, valid_from=valid_from, expires_at=expires_at,
                business_unit_id=self.unit_ids[unit], source_type="test", source_id=1, actor="machine", at=self.now,
            )
            grant_id = row.id
        self.model.grants[grant_id] = ModelGrant(grant_id, unit, credits, valid_from, expires_at, remaining=credits)

    @rule(credits=amounts, unit=st.sampled_from(UNITS), hours=st.sampled_from([0, 0, 0, -2, -7, -30, 3, 26]))
    def consume(self, credits, unit, hours):
        """A booking now, late (its moment hours ago: credits that expired since are gone) or
        ahead (credits valid by then count, those expiring before it do not)."""
        moment = self.now + timedelta(hours=hours)
        eligible = self.model.eligible(unit, moment, self.now)
        available = sum((grant.remaining for grant in eligible), ZERO)
        if available < credits:
            before = self.snapshot()
            with pytest.raises(InsufficientCredits) as raised, self.database.write() as session:
                consume(
                    session, self.account_id, credits=credits, business_unit_id=self.unit_ids[unit], occurred_at=moment,
                    now=self.now, actor="machine",
                )
            assert raised.value.extra == {"credits_requested": f"{credits:.2f}", "credits_available": f"{available:.2f}"}
            assert self.snapshot() == before, "a refused consumption changed something"
            return

        expected = []
        left = credits
        for grant in eligible:
            if left <= 0:
                break
            take = min(grant.remaining, left)
            expected.append((grant.id, take))
            left -= take
        with self.database.write() as session:
            consumption, draws = consume(
                session, self.account_id, credits=credits, business_unit_id=self.unit_ids[unit], occurred_at=moment,
                now=self.now, actor="machine",
            )
            consumption_id = consumption.id
        assert [(draw.grant_id, draw.credits) for draw in draws] == expected

        self.model.record_due_expiries(self.now)
        for grant_id, take in expected:
            self.model.grants[grant_id].remaining -= take
            self.model.grants[grant_id].used += take
        self.model.consumptions.append(ModelConsumption(consumption_id, expected))

    @precondition(lambda self: self.model.consumptions)
    @rule(pick=st.integers(min_value=0, max_value=10_000))
    def reverse(self, pick):
        consumption = self.model.consumptions[pick % len(self.model.consumptions)]
        if consumption.reversed:
            before = self.snapshot()
        with self.database.write() as session:
            row, draws = reverse_consumption(session, consumption.id, now=self.now, actor="machine")
            assert row.reversed_at is not None
        assert [(draw.grant_id, draw.credits) for draw in draws] == consumption.draws
        if consumption.reversed:
            assert self.snapshot() == before, "reversing a reversed consumption changed something"
            return

        self.model.record_due_expiries(self.now)
        for grant_id, credits in consumption.draws:
            grant = self.model.grants[grant_id]
            grant.remaining += credits
            grant.used -= credits
            if grant.expired_by(self.now):  # returned after expiry: expires at once
                grant.expired += grant.remaining
                grant.remaining = ZERO
        consumption.reversed = True

    @rule(hours=st.sampled_from([1, 3, 6, 12, 24, 49]))
    def advance_clock(self, hours):
        self.now += timedelta(hours=hours)

    @rule()
    def sweep(self):
        sweep_expiries(self.database, now=self.now)
        self.model.record_due_expiries(self.now)

    # -- reading the database ----------------------------------------------------------------

    def snapshot(self):
        with self.database.read() as session:
            account = session.get(Account, self.account_id)
            grants = session.exec(select(Grant).where(Grant.account_id == self.account_id).order_by(Grant.id)).all()
            entries = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == self.account_id).order_by(LedgerEntry.id)).all()
            consumptions = session.exec(select(func.count()).select_from(Consumption).where(Consumption.account_id == self.account_id)).one()
            return (
                account.balance,
                [(g.id, g.remaining, g.used, g.held, g.removed, g.expired) for g in grants],
                [(e.id, e.kind, e.grant_id, e.credits, e.balance_after) for e in entries],
                consumptions,
            )

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def the_database_agrees_with_itself_and_with_the_rules(self):
        with self.database.read() as session:
            account = session.get(Account, self.account_id)
            grants = session.exec(select(Grant).where(Grant.account_id == self.account_id).order_by(Grant.id)).all()
            entries = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == self.account_id).order_by(LedgerEntry.id)).all()
            summary = credit_summary(session, account, self.now)
            folded = summary_from_ledger(session, account, self.now)

        # each grant: never negative, conserved, and as the rules say
        for grant in grants:
            assert grant.remaining >= 0, grant
            assert grant.credits == grant.remaining + grant.used + grant.held + grant.removed + grant.expired, grant
            expected = self.model.grants[grant.id]
            assert (grant.remaining, grant.used, grant.expired) == (expected.remaining, expected.used, expected.expired), grant.id
        assert sorted(grant.id for grant in grants) == sorted(self.model.grants)

        # the summary from the grants' counters equals the fold over the ledger, figure by figure
        assert summary == folded

        # and matches the rules: grants valid now count, pending ones are listed, expired ones vanish
        valid = [grant for grant in self.model.grants.values() if grant.valid_at(self.now)]
        pending = sorted(
            (grant for grant in self.model.grants.values()
             if grant.valid_from > self.now and not grant.expired_by(self.now) and grant.remaining > 0),  # a booking ahead may empty one
            key=lambda grant: (grant.valid_from, grant.id),
        )
        assert summary.total.granted == sum((grant.credits for grant in valid), ZERO)
        assert summary.total.remaining == sum((grant.remaining for grant in valid), ZERO)
        assert summary.total.used == sum((grant.used for grant in valid), ZERO)
        assert (summary.total.held, summary.total.removed, summary.total.debt) == (ZERO, ZERO, ZERO)
        assert summary.pending == [(grant.id, grant.remaining, grant.valid_from) for grant in pending]
        for unit in UNITS[1:]:
            figures = next(figures for unit_id, _name, figures in summary.business_units if unit_id == self.unit_ids[unit])
            assert figures.remaining == sum((grant.remaining for grant in valid if grant.unit == unit), ZERO)
        assert summary.unrestricted.remaining == sum((grant.remaining for grant in valid if grant.unit is None), ZERO)

        # the running balance: each balance_after is the running total in recording order
        running = ZERO
        for entry in entries:
            running += entry.credits
            assert entry.balance_after == running, entry
        # credits are conserved: the whole ledger sums to what remains on the grants
        assert running == sum((grant.remaining for grant in grants), ZERO)
        assert (entries[-1].balance_after if entries else ZERO) == account.balance
        # the remaining credits of unexpired grants (valid or pending), plus expiries due but not yet
        # recorded (nothing has touched the account since the clock passed them)
        unexpired = sum((grant.remaining for grant in self.model.grants.values() if not grant.expired_by(self.now)), ZERO)
        pending_credits = sum((credits for _id, credits, _at in summary.pending), ZERO)
        assert unexpired == summary.total.remaining + pending_credits
        assert account.balance == unexpired + self.model.unrecorded_breakage(self.now)

    @invariant()
    def once_due_expiries_are_recorded_the_balance_is_remaining_plus_pending(self):
        if self.model.unrecorded_breakage(self.now) != 0:
            return
        with self.database.read() as session:
            account = session.get(Account, self.account_id)
            summary = credit_summary(session, account, self.now)
        unexpired = sum((grant.remaining for grant in self.model.grants.values() if not grant.expired_by(self.now)), ZERO)
        pending_credits = sum((credits for _id, credits, _at in summary.pending), ZERO)
        assert account.balance == unexpired == summary.total.remaining + pending_credits - summary.total.debt


def test_credits_stay_conserved_and_consistent_under_any_sequence_of_operations(database):
    run_state_machine_as_test(
        lambda: CreditMachine(database),
        settings=settings(
            max_examples=25, stateful_step_count=15, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
