"""Holds, overdraft debt, manual adjustments and transfers (SPEC 4, 5 and 7), through the use
cases and through HTTP (API.md), on SQLite and PostgreSQL.

Every expected value is worked out by hand from SPEC.md, in the default operator zone (UTC)
unless a test sets another. The balance of an account (``balance_after``) is the remaining
credits of its grants not yet expired, valid or pending, less its debt; the summary at a moment
satisfies granted = remaining + used + held + removed over the grants valid then.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlmodel import select

from licensing.accounts.models import Account
from licensing.credits.adjustments import adjust, transfer
from licensing.credits.consumption import Draw, consume, reverse_consumption
from licensing.credits.holds import (
    capture_hold,
    place_hold,
    release_hold,
    settle_hold_deadlines,
)
from licensing.credits.models import Adjustment, Consumption, Hold
from licensing.errors import (
    Conflict,
    CurrencyMismatch,
    HoldNotOpen,
    InsufficientCredits,
    UnknownReference,
    ValidationFailed,
)
from tests import factories
from tests.support import over_http as http_examples
from tests.support.over_http import PROBLEM, call, created
from tests.support.use_cases import (
    bill_and_approve,
    grants_of,
    instant,
    ledger_of,
    monthly_pack_licence,
    summary_at,
)

D = Decimal
ACTOR = "operator@space.test"
SYSTEM = "system"

# Tables a refused operation must leave exactly as they were (the outbox included).
WATCHED_TABLES = ("accounts", "business_units", "grants", "ledger_entries", "consumptions", "holds", "adjustments", "transfers", "events")


# ---------------------------------------------------------------------------------------------
# Helpers: one call per use case, each in its own transaction, as the API and scheduler do.
# ---------------------------------------------------------------------------------------------


def everything(database) -> dict[str, list[tuple]]:
    """Every row of the watched tables, in id order: what a refused operation must not change."""
    with database.read() as session:
        connection = session.connection()
        return {table: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))] for table in WATCHED_TABLES}


def add_credits(database, account_id: int, credits: str, now: datetime, *, lifetime: str | None = None, business_unit_id: int | None = None) -> int:
    """A manual addition; returns the id of the grant it made."""
    with database.write() as session:
        _adjustment, [(grant_id, _credits)] = adjust(
            session, account_id, kind="add", credits=D(credits), reason="Welcome bonus", lifetime=lifetime,
            business_unit_id=business_unit_id, now=now, actor=ACTOR,
        )
    return grant_id


def hold(database, account_id: int, credits: str, event_at: datetime, now: datetime, **values) -> tuple[Hold, list[Draw]]:
    with database.write() as session:
        placed, draws = place_hold(session, account_id, credits=D(credits), event_at=event_at, now=now, actor=ACTOR, **values)
        session.expunge(placed)
    return placed, draws


def capture(database, hold_id: int, now: datetime) -> tuple[Hold, list[Draw]]:
    with database.write() as session:
        captured, draws = capture_hold(session, hold_id, now=now, actor=ACTOR)
        session.expunge(captured)
    return captured, draws


def release(database, hold_id: int, now: datetime) -> tuple[Hold, list[Draw]]:
    with database.write() as session:
        released, draws = release_hold(session, hold_id, now=now, actor=ACTOR)
        session.expunge(released)
    return released, draws


def use(database, account_id: int, credits: str, now: datetime, **values) -> tuple[Consumption, list[Draw]]:
    """Consume ``credits`` now (the booking happens when it is recorded unless ``occurred_at``)."""
    with database.write() as session:
        consumption, draws = consume(session, account_id, credits=D(credits), now=now, actor=ACTOR, **values)
    return consumption, draws


def counters(database, account_id: int) -> list[tuple]:
    """Each grant's (credits, remaining, used, held, removed, expired), in id order."""
    return [(g.credits, g.remaining, g.used, g.held, g.removed, g.expired) for g in grants_of(database, account_id)]


def entries(database, account_id: int) -> list[tuple]:
    """The ledger as (kind, credits, balance_after, grant_id)."""
    return [(e.kind, e.credits, e.balance_after, e.grant_id) for e in ledger_of(database, account_id)]


def figures(summary_figures) -> tuple:
    """(granted, remaining, used, held, removed, debt)."""
    f = summary_figures
    return (f.granted, f.remaining, f.used, f.held, f.removed, f.debt)


def checked_summary(database, account_id: int, at: datetime):
    """The summary at ``at``, after proving that the cached figures equal the fold over the ledger."""
    summary, recomputed = summary_at(database, account_id, at)
    assert summary == recomputed
    total = summary.total
    assert total.granted == total.remaining + total.used + total.held + total.removed
    return summary


def assert_balance_agrees_with_summary(database, account_id: int, now: datetime) -> None:
    """SPEC 7: the last ``balance_after`` (and the account's cached balance) equals the summary's
    remaining plus its pending credits, less debt."""
    summary = checked_summary(database, account_id, now)
    expected = summary.total.remaining + sum((credits for _grant, credits, _valid_from in summary.pending), D(0)) - summary.total.debt
    assert (ledger_of(database, account_id)[-1].balance_after, stored_balance(database, account_id)[0]) == (expected, expected)


def stored_balance(database, account_id: int) -> tuple[Decimal, Decimal]:
    with database.read() as session:
        account = session.get(Account, account_id)
        return account.balance, account.debt


# ---------------------------------------------------------------------------------------------
# Holds
# ---------------------------------------------------------------------------------------------


def test_held_credits_are_not_available_to_a_consumption(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "10", instant("2027-01-10 09:00"))

    placed, draws = hold(database, account.id, "6", event_at=instant("2027-01-20 10:00"), now=instant("2027-01-10 10:00"))

    assert (placed.status, placed.credits, placed.event_at, placed.consumption_id) == ("open", D("6.00"), instant("2027-01-20 10:00"), None)
    assert draws == [Draw(grant, D("6.00"))]
    assert counters(database, account.id) == [(D("10.00"), D("4.00"), D("0.00"), D("6.00"), D("0.00"), D("0.00"))]
    assert entries(database, account.id) == [("adjust_add", D("10.00"), D("10.00"), grant), ("hold", D("-6.00"), D("4.00"), grant)]
    (_added, held) = ledger_of(database, account.id)
    assert (held.source_type, held.source_id, held.actor, held.occurred_at) == ("hold", str(placed.id), ACTOR, instant("2027-01-10 10:00"))
    before = everything(database)

    with pytest.raises(InsufficientCredits) as refusal:
        use(database, account.id, "5", instant("2027-01-10 11:00"))

    assert refusal.value.extra == {"credits_requested": "5.00", "credits_available": "4.00"}
    assert everything(database) == before
    summary = checked_summary(database, account.id, instant("2027-01-10 11:00"))
    assert figures(summary.total) == (D("10.00"), D("4.00"), D("0.00"), D("6.00"), D("0.00"), D("0.00"))
    assert stored_balance(database, account.id) == (D("4.00"), D("0.00"))
    assert_balance_agrees_with_summary(database, account.id, instant("2027-01-10 11:00"))


def test_releasing_a_hold_frees_its_credits_for_a_consumption(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "10", instant("2027-01-10 09:00"))
    placed, _ = hold(database, account.id, "6", event_at=instant("2027-01-20 10:00"), now=instant("2027-01-10 10:00"))

    released, draws = release(database, placed.id, instant("2027-01-12 08:00"))

    assert (released.status, released.closed_at, released.consumption_id) == ("released", instant("2027-01-12 08:00"), None)
    assert draws == [Draw(grant, D("6.00"))]
    assert entries(database, account.id) == [
        ("adjust_add", D("10.00"), D("10.00"), grant),
        ("hold", D("-6.00"), D("4.00"), grant),
        ("hold_release", D("6.00"), D("10.00"), grant),
    ]
    assert counters(database, account.id) == [(D("10.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"))]

    _consumption, consumed = use(database, account.id, "5", instant("2027-01-12 09:00"))

    assert consumed == [Draw(grant, D("5.00"))]
    summary = checked_summary(database, account.id, instant("2027-01-12 09:00"))
    assert figures(summary.total) == (D("10.00"), D("5.00"), D("5.00"), D("0.00"), D("0.00"), D("0.00"))

    # Releasing it again returns it unchanged and writes nothing.
    before = everything(database)
    again, again_draws = release(database, placed.id, instant("2027-01-12 10:00"))
    assert (again.status, again.closed_at, again_draws) == ("released", instant("2027-01-12 08:00"), [Draw(grant, D("6.00"))])
    assert everything(database) == before


def test_a_hold_for_next_month_draws_from_the_grant_valid_then_and_capturing_it_deducts_nothing_more(database):
    account, licence = monthly_pack_licence(database, lifetime="P1M")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    # February's invoice is approved ahead of its period: its credits are pending until Feb 1.
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-01-25 09:00"))
    january, february = (grant.id for grant in grants_of(database, account.id))

    # A booking on Jan 25 for Feb 10: January's credits expire before the event, February's are valid then.
    placed, draws = hold(database, account.id, "4", event_at=instant("2027-02-10 14:00"), now=instant("2027-01-25 10:00"))

    assert draws == [Draw(february, D("4.00"))]
    assert counters(database, account.id) == [
        (D("10.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00")),
        (D("10.00"), D("6.00"), D("0.00"), D("4.00"), D("0.00"), D("0.00")),
    ]
    on_january_25 = checked_summary(database, account.id, instant("2027-01-25 10:00"))
    assert figures(on_january_25.total) == (D("10.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"))
    assert on_january_25.pending == [(february, D("6.00"), instant("2027-02-01 00:00"))]
    assert_balance_agrees_with_summary(database, account.id, instant("2027-01-25 10:00"))  # 16 = 10 + 6 pending

    captured, captured_draws = capture(database, placed.id, instant("2027-02-10 16:00"))

    assert captured_draws == [Draw(february, D("4.00"))]
    assert (captured.status, captured.closed_at) == ("captured", instant("2027-02-10 16:00"))
    with database.read() as session:
        consumption = session.get(Consumption, captured.consumption_id)
    assert (consumption.credits, consumption.occurred_at, consumption.created_at, consumption.hold_id, consumption.debt, consumption.reversed_at) == (
        D("4.00"), instant("2027-02-10 14:00"), instant("2027-02-10 16:00"), placed.id, D("0.00"), None
    )
    # February's remaining is unchanged by the capture: its 4 credits move from held to used.
    assert counters(database, account.id) == [
        (D("10.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("10.00")),
        (D("10.00"), D("6.00"), D("4.00"), D("0.00"), D("0.00"), D("0.00")),
    ]
    assert entries(database, account.id) == [
        ("grant", D("10.00"), D("10.00"), january),
        ("grant", D("10.00"), D("20.00"), february),
        ("hold", D("-4.00"), D("16.00"), february),
        ("expire", D("-10.00"), D("6.00"), january),  # January's breakage, recorded before the capture
        ("hold_release", D("4.00"), D("10.00"), february),
        ("consume", D("-4.00"), D("6.00"), february),
    ]
    consume_entry = ledger_of(database, account.id)[-1]
    assert (consume_entry.source_type, consume_entry.source_id) == ("consumption", str(consumption.id))
    assert stored_balance(database, account.id) == (D("6.00"), D("0.00"))

    before_capture = checked_summary(database, account.id, instant("2027-02-10 15:00"))
    assert figures(before_capture.total) == (D("10.00"), D("6.00"), D("0.00"), D("4.00"), D("0.00"), D("0.00"))
    after_capture = checked_summary(database, account.id, instant("2027-02-10 16:00"))
    assert figures(after_capture.total) == (D("10.00"), D("6.00"), D("4.00"), D("0.00"), D("0.00"), D("0.00"))
    assert_balance_agrees_with_summary(database, account.id, instant("2027-02-10 16:00"))


def test_capturing_a_captured_hold_returns_it_unchanged_and_releasing_it_is_refused(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "10", instant("2027-01-10 09:00"))
    placed, _ = hold(database, account.id, "3", event_at=instant("2027-01-20 10:00"), now=instant("2027-01-10 10:00"))
    captured, _ = capture(database, placed.id, instant("2027-01-20 11:00"))
    before = everything(database)

    again, draws = capture(database, placed.id, instant("2027-01-21 09:00"))

    assert (again.status, again.consumption_id, again.closed_at) == ("captured", captured.consumption_id, instant("2027-01-20 11:00"))
    assert draws == [Draw(grant, D("3.00"))]
    assert everything(database) == before

    with pytest.raises(HoldNotOpen) as refusal:
        release(database, placed.id, instant("2027-01-21 09:00"))
    assert refusal.value.code == "hold_not_open"
    assert everything(database) == before


def test_a_released_hold_cannot_be_captured(database):
    account = factories.account(database)
    add_credits(database, account.id, "10", instant("2027-01-10 09:00"))
    placed, _ = hold(database, account.id, "3", event_at=instant("2027-01-20 10:00"), now=instant("2027-01-10 10:00"))
    release(database, placed.id, instant("2027-01-11 10:00"))
    before = everything(database)

    with pytest.raises(HoldNotOpen):
        capture(database, placed.id, instant("2027-01-20 11:00"))

    assert everything(database) == before


def test_credits_released_after_their_grant_expired_expire_at_once(database):
    account = factories.account(database)
    # Added on Jan 10 with lifetime P1M: expires at 00:00 on Feb 10.
    grant = add_credits(database, account.id, "10", instant("2027-01-10 09:00"), lifetime="P1M")
    placed, _ = hold(database, account.id, "4", event_at=instant("2027-02-05 10:00"), now=instant("2027-01-10 10:00"))
    use(database, account.id, "2", instant("2027-01-12 09:00"))

    release(database, placed.id, instant("2027-02-12 09:00"))

    assert [(e.kind, e.credits, e.balance_after, e.occurred_at, e.recorded_at) for e in ledger_of(database, account.id)] == [
        ("adjust_add", D("10.00"), D("10.00"), instant("2027-01-10 09:00"), instant("2027-01-10 09:00")),
        ("hold", D("-4.00"), D("6.00"), instant("2027-01-10 10:00"), instant("2027-01-10 10:00")),
        ("consume", D("-2.00"), D("4.00"), instant("2027-01-12 09:00"), instant("2027-01-12 09:00")),
        ("expire", D("-4.00"), D("0.00"), instant("2027-02-10 00:00"), instant("2027-02-12 09:00")),
        ("hold_release", D("4.00"), D("4.00"), instant("2027-02-12 09:00"), instant("2027-02-12 09:00")),
        ("expire", D("-4.00"), D("0.00"), instant("2027-02-12 09:00"), instant("2027-02-12 09:00")),
    ]
    assert counters(database, account.id) == [(D("10.00"), D("0.00"), D("2.00"), D("0.00"), D("0.00"), D("8.00"))]
    assert [e.grant_id for e in ledger_of(database, account.id)] == [grant] * 6
    with pytest.raises(InsufficientCredits) as refusal:
        use(database, account.id, "1", instant("2027-02-12 10:00"))
    assert refusal.value.extra == {"credits_requested": "1.00", "credits_available": "0.00"}
    assert_balance_agrees_with_summary(database, account.id, instant("2027-02-12 10:00"))


def test_a_hold_captured_after_its_grant_expired_still_consumes_the_held_credits(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "10", instant("2027-01-10 09:00"), lifetime="P1M")  # expires Feb 10 00:00
    placed, _ = hold(
        database, account.id, "4", event_at=instant("2027-02-05 10:00"), deadline=instant("2027-02-20 00:00"), now=instant("2027-01-10 10:00")
    )

    # The event happened on Feb 5, while the credits were valid; it is captured on Feb 12.
    captured, draws = capture(database, placed.id, instant("2027-02-12 09:00"))

    assert (captured.status, draws) == ("captured", [Draw(grant, D("4.00"))])
    assert [(e.kind, e.credits, e.balance_after, e.occurred_at) for e in ledger_of(database, account.id)] == [
        ("adjust_add", D("10.00"), D("10.00"), instant("2027-01-10 09:00")),
        ("hold", D("-4.00"), D("6.00"), instant("2027-01-10 10:00")),
        ("expire", D("-6.00"), D("0.00"), instant("2027-02-10 00:00")),  # only what was not held
        ("hold_release", D("4.00"), D("4.00"), instant("2027-02-12 09:00")),
        ("consume", D("-4.00"), D("0.00"), instant("2027-02-12 09:00")),
    ]
    assert counters(database, account.id) == [(D("10.00"), D("0.00"), D("4.00"), D("0.00"), D("0.00"), D("6.00"))]
    with database.read() as session:
        assert session.get(Consumption, captured.consumption_id).occurred_at == instant("2027-02-05 10:00")
    # On the day of the event, the ledger alone shows the 4 credits held and 6 remaining.
    on_the_day = checked_summary(database, account.id, instant("2027-02-05 10:00"))
    assert figures(on_the_day.total) == (D("10.00"), D("6.00"), D("0.00"), D("4.00"), D("0.00"), D("0.00"))
    assert_balance_agrees_with_summary(database, account.id, instant("2027-02-12 09:00"))


def test_settling_deadlines_releases_an_open_hold_past_its_deadline_by_default(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "10", instant("2027-01-10 09:00"))
    overdue, _ = hold(
        database, account.id, "3", event_at=instant("2027-01-20 10:00"), deadline=instant("2027-01-21 10:00"), now=instant("2027-01-10 10:00")
    )
    later, _ = hold(
        database, account.id, "2", event_at=instant("2027-01-25 10:00"), deadline=instant("2027-01-26 10:00"), now=instant("2027-01-10 10:00")
    )

    assert settle_hold_deadlines(database, now=instant("2027-01-21 09:59")) == 0
    assert settle_hold_deadlines(database, now=instant("2027-01-22 00:00")) == 1

    with database.read() as session:
        statuses = [(h.id, h.status, h.consumption_id, h.closed_at) for h in session.exec(select(Hold).order_by(Hold.id)).all()]
        consumptions = session.exec(select(Consumption)).all()
    assert statuses == [(overdue.id, "released", None, instant("2027-01-22 00:00")), (later.id, "open", None, None)]
    assert consumptions == []
    assert [(e.kind, e.credits, e.balance_after, e.grant_id, e.source_id, e.actor) for e in ledger_of(database, account.id)][-1] == (
        "hold_release", D("3.00"), D("8.00"), grant, str(overdue.id), SYSTEM
    )
    assert counters(database, account.id) == [(D("10.00"), D("8.00"), D("0.00"), D("2.00"), D("0.00"), D("0.00"))]
    # Settled holds are not settled again.
    before = everything(database)
    assert settle_hold_deadlines(database, now=instant("2027-01-23 00:00")) == 0
    assert everything(database) == before


def test_settling_deadlines_captures_an_open_hold_past_its_deadline_when_the_operator_says_so(database, set_operator_setting):
    set_operator_setting("hold_deadline_policy", "capture")
    account = factories.account(database)
    grant = add_credits(database, account.id, "10", instant("2027-01-10 09:00"))
    overdue, _ = hold(
        database, account.id, "3", event_at=instant("2027-01-20 10:00"), deadline=instant("2027-01-21 10:00"), now=instant("2027-01-10 10:00")
    )
    later, _ = hold(
        database, account.id, "2", event_at=instant("2027-01-25 10:00"), deadline=instant("2027-01-26 10:00"), now=instant("2027-01-10 10:00")
    )

    assert settle_hold_deadlines(database, now=instant("2027-01-22 00:00")) == 1

    with database.read() as session:
        holds = session.exec(select(Hold).order_by(Hold.id)).all()
        (consumption,) = session.exec(select(Consumption)).all()
    assert [(h.id, h.status) for h in holds] == [(overdue.id, "captured"), (later.id, "open")]
    assert holds[0].consumption_id == consumption.id
    assert (consumption.credits, consumption.occurred_at, consumption.created_at, consumption.hold_id, consumption.actor) == (
        D("3.00"), instant("2027-01-20 10:00"), instant("2027-01-22 00:00"), overdue.id, SYSTEM
    )
    assert entries(database, account.id)[-2:] == [("hold_release", D("3.00"), D("8.00"), grant), ("consume", D("-3.00"), D("5.00"), grant)]
    assert counters(database, account.id) == [(D("10.00"), D("5.00"), D("3.00"), D("2.00"), D("0.00"), D("0.00"))]
    summary = checked_summary(database, account.id, instant("2027-01-22 00:00"))
    assert figures(summary.total) == (D("10.00"), D("5.00"), D("3.00"), D("2.00"), D("0.00"), D("0.00"))


def test_a_hold_past_the_credits_eligible_at_the_event_is_refused_and_writes_nothing(database):
    account, licence = monthly_pack_licence(database, lifetime="P1M")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    before = everything(database)

    # January's 10 credits are gone by Feb 10 and February's are not granted yet.
    with pytest.raises(InsufficientCredits) as refusal:
        hold(database, account.id, "1", event_at=instant("2027-02-10 14:00"), now=instant("2027-01-25 10:00"))

    assert refusal.value.extra == {"credits_requested": "1.00", "credits_available": "0.00"}
    assert everything(database) == before


# ---------------------------------------------------------------------------------------------
# Overdraft and debt
# ---------------------------------------------------------------------------------------------


def test_an_overdraft_on_an_empty_account_is_debt_that_the_next_grant_settles_first(database):
    account = factories.account(database)

    consumption, draws = use(database, account.id, "50", instant("2027-01-10 09:00"), allow_overdraft=True)

    assert (draws, consumption.credits, consumption.debt) == ([], D("50.00"), D("50.00"))
    (debt,) = ledger_of(database, account.id)
    assert (debt.kind, debt.credits, debt.balance_after, debt.grant_id, debt.business_unit_id, debt.source_type, debt.source_id) == (
        "debt", D("-50.00"), D("-50.00"), None, None, "consumption", str(consumption.id)
    )
    assert stored_balance(database, account.id) == (D("-50.00"), D("50.00"))
    summary = checked_summary(database, account.id, instant("2027-01-10 09:00"))
    assert figures(summary.total) == (D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("50.00"))
    assert summary.unrestricted.debt == D("50.00")

    grant = add_credits(database, account.id, "100", instant("2027-01-11 09:00"))

    assert entries(database, account.id) == [
        ("debt", D("-50.00"), D("-50.00"), None),
        ("adjust_add", D("100.00"), D("50.00"), grant),
        ("debt_settlement", D("-50.00"), D("50.00"), grant),
    ]
    assert counters(database, account.id) == [(D("100.00"), D("50.00"), D("50.00"), D("0.00"), D("0.00"), D("0.00"))]
    assert stored_balance(database, account.id) == (D("50.00"), D("0.00"))
    summary = checked_summary(database, account.id, instant("2027-01-11 09:00"))
    assert figures(summary.total) == (D("100.00"), D("50.00"), D("50.00"), D("0.00"), D("0.00"), D("0.00"))
    assert_balance_agrees_with_summary(database, account.id, instant("2027-01-11 09:00"))
    # Between the two, the ledger alone still shows the debt.
    between = checked_summary(database, account.id, instant("2027-01-10 12:00"))
    assert figures(between.total) == (D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("50.00"))

    # A debt of 50 and a 100-credit grant leave 50 available.
    before = everything(database)
    with pytest.raises(InsufficientCredits) as refusal:
        use(database, account.id, "50.01", instant("2027-01-11 10:00"))
    assert refusal.value.extra == {"credits_requested": "50.01", "credits_available": "50.00"}
    assert everything(database) == before


def test_an_overdraft_draws_what_is_available_and_records_only_the_shortfall_as_debt(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "10", instant("2027-01-10 09:00"))

    consumption, draws = use(database, account.id, "25", instant("2027-01-10 10:00"), allow_overdraft=True)

    assert (draws, consumption.credits, consumption.debt) == ([Draw(grant, D("10.00"))], D("25.00"), D("15.00"))
    assert entries(database, account.id) == [
        ("adjust_add", D("10.00"), D("10.00"), grant),
        ("consume", D("-10.00"), D("0.00"), grant),
        ("debt", D("-15.00"), D("-15.00"), None),
    ]
    summary = checked_summary(database, account.id, instant("2027-01-10 10:00"))
    # ``used`` counts only credits drawn from grants.
    assert figures(summary.total) == (D("10.00"), D("0.00"), D("10.00"), D("0.00"), D("0.00"), D("15.00"))
    assert_balance_agrees_with_summary(database, account.id, instant("2027-01-10 10:00"))


def test_reversing_an_overdrawn_consumption_before_any_grant_settles_it_cancels_the_debt(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "10", instant("2027-01-10 09:00"))
    consumption, _ = use(database, account.id, "25", instant("2027-01-10 10:00"), allow_overdraft=True)

    with database.write() as session:
        reversed_consumption, draws = reverse_consumption(session, consumption.id, now=instant("2027-01-10 11:00"), actor=ACTOR)

    assert (reversed_consumption.reversed_at, draws) == (instant("2027-01-10 11:00"), [Draw(grant, D("10.00"))])
    assert entries(database, account.id) == [
        ("adjust_add", D("10.00"), D("10.00"), grant),
        ("consume", D("-10.00"), D("0.00"), grant),
        ("debt", D("-15.00"), D("-15.00"), None),
        ("debt", D("15.00"), D("0.00"), None),
        ("consume_reversal", D("10.00"), D("10.00"), grant),
    ]
    assert stored_balance(database, account.id) == (D("10.00"), D("0.00"))
    summary = checked_summary(database, account.id, instant("2027-01-10 11:00"))
    assert figures(summary.total) == (D("10.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"))


def test_an_overdrawn_consumption_whose_debt_a_grant_has_settled_is_not_reversed(database):
    # Assumed from consumption.reverse_consumption (SPEC 4 is silent): once a later grant has
    # settled part of the debt, the reversal is refused and the operator corrects by adjustment.
    account = factories.account(database)
    consumption, _ = use(database, account.id, "15", instant("2027-01-10 10:00"), allow_overdraft=True)
    add_credits(database, account.id, "10", instant("2027-01-10 11:00"))
    before = everything(database)

    with pytest.raises(Conflict) as refusal, database.write() as session:
        reverse_consumption(session, consumption.id, now=instant("2027-01-10 12:00"), actor=ACTOR)

    assert refusal.value.extra == {"debt": "15.00", "debt_outstanding": "5.00"}
    assert everything(database) == before


def test_without_allow_overdraft_an_empty_account_is_still_refused(database):
    account = factories.account(database)
    before = everything(database)

    with pytest.raises(InsufficientCredits) as refusal:
        use(database, account.id, "50", instant("2027-01-10 09:00"))

    assert refusal.value.extra == {"credits_requested": "50.00", "credits_available": "0.00"}
    assert everything(database) == before


def test_an_overdraft_in_a_business_unit_is_that_units_debt_settled_only_by_a_grant_in_that_unit(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    neurology = factories.business_unit(database, account.id, "Neurology")

    consumption, draws = use(database, account.id, "30", instant("2027-01-10 09:00"), business_unit_id=cardiology.id, allow_overdraft=True)

    assert (draws, consumption.debt) == ([], D("30.00"))
    (debt,) = ledger_of(database, account.id)
    assert (debt.kind, debt.credits, debt.balance_after, debt.business_unit_id) == ("debt", D("-30.00"), D("-30.00"), cardiology.id)
    summary = checked_summary(database, account.id, instant("2027-01-10 09:00"))
    assert {unit_id: values.debt for unit_id, _name, values in summary.business_units} == {cardiology.id: D("30.00"), neurology.id: D("0.00")}
    assert (summary.total.debt, summary.unrestricted.debt) == (D("30.00"), D("0.00"))

    # Unrestricted credits and Neurology's do not settle Cardiology's debt.
    pool = add_credits(database, account.id, "100", instant("2027-01-11 09:00"))
    neurology_grant = add_credits(database, account.id, "20", instant("2027-01-11 10:00"), business_unit_id=neurology.id)
    assert stored_balance(database, account.id) == (D("90.00"), D("30.00"))
    # A grant in Cardiology does.
    cardiology_grant = add_credits(database, account.id, "50", instant("2027-01-12 09:00"), business_unit_id=cardiology.id)

    assert [(e.kind, e.credits, e.balance_after, e.grant_id, e.business_unit_id) for e in ledger_of(database, account.id)] == [
        ("debt", D("-30.00"), D("-30.00"), None, cardiology.id),
        ("adjust_add", D("100.00"), D("70.00"), pool, None),
        ("adjust_add", D("20.00"), D("90.00"), neurology_grant, neurology.id),
        ("adjust_add", D("50.00"), D("140.00"), cardiology_grant, cardiology.id),
        ("debt_settlement", D("-30.00"), D("140.00"), cardiology_grant, cardiology.id),
    ]
    assert counters(database, account.id) == [
        (D("100.00"), D("100.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00")),
        (D("20.00"), D("20.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00")),
        (D("50.00"), D("20.00"), D("30.00"), D("0.00"), D("0.00"), D("0.00")),
    ]
    assert stored_balance(database, account.id) == (D("140.00"), D("0.00"))
    summary = checked_summary(database, account.id, instant("2027-01-12 09:00"))
    assert figures(summary.total) == (D("170.00"), D("140.00"), D("30.00"), D("0.00"), D("0.00"), D("0.00"))
    units = {unit_id: figures(values) for unit_id, _name, values in summary.business_units}
    assert units == {
        cardiology.id: (D("50.00"), D("20.00"), D("30.00"), D("0.00"), D("0.00"), D("0.00")),
        neurology.id: (D("20.00"), D("20.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00")),
    }
    # Before the Cardiology grant, the ledger alone shows the unit's debt.
    earlier = checked_summary(database, account.id, instant("2027-01-11 12:00"))
    assert {unit_id: values.debt for unit_id, _name, values in earlier.business_units} == {cardiology.id: D("30.00"), neurology.id: D("0.00")}
    assert_balance_agrees_with_summary(database, account.id, instant("2027-01-12 09:00"))


# ---------------------------------------------------------------------------------------------
# Adjustments
# ---------------------------------------------------------------------------------------------


def test_an_addition_is_a_grant_of_no_value_expiring_at_midnight_a_lifetime_after_today_in_the_operators_zone(database, set_operator_setting):
    set_operator_setting("timezone", "Europe/Paris")
    account = factories.account(database)

    # 2027-01-31 23:30 UTC is already Feb 1 in Paris: Feb 1 + P1M = Mar 1, 00:00 Paris = Feb 28 23:00 UTC.
    with database.write() as session:
        late, [(late_grant, _)] = adjust(
            session, account.id, kind="add", credits=D("12.50"), reason="Goodwill: broken projector", lifetime="P1M",
            now=instant("2027-01-31 23:30"), actor=ACTOR,
        )
    # 2027-01-31 10:00 UTC is Jan 31 in Paris: Jan 31 + P1M = Feb 28 (clamped), 00:00 Paris = Feb 27 23:00 UTC.
    with database.write() as session:
        early, [(early_grant, _)] = adjust(
            session, account.id, kind="add", credits=D("5"), reason="Correction", lifetime="P1M",
            now=instant("2027-01-31 10:00"), actor="someone@space.test",
        )

    with database.read() as session:
        stored = session.exec(select(Adjustment).order_by(Adjustment.id)).all()
    assert [(a.id, a.kind, a.credits, a.lifetime, a.reason, a.actor, a.created_at, a.business_unit_id) for a in stored] == [
        (late.id, "add", D("12.50"), "P1M", "Goodwill: broken projector", ACTOR, instant("2027-01-31 23:30"), None),
        (early.id, "add", D("5.00"), "P1M", "Correction", "someone@space.test", instant("2027-01-31 10:00"), None),
    ]
    grants = grants_of(database, account.id)
    assert [(g.id, g.credits, g.remaining, g.value, g.valid_from, g.expires_at, g.source_type, g.source_id) for g in grants] == [
        (
            late_grant,
            D("12.50"),
            D("12.50"),
            D("0"),
            instant("2027-01-31 23:30"),
            datetime(2027, 2, 28, 23, 0, tzinfo=UTC),
            "adjustment",
            str(late.id),
        ),
        (
            early_grant,
            D("5.00"),
            D("5.00"),
            D("0"),
            instant("2027-01-31 10:00"),
            datetime(2027, 2, 27, 23, 0, tzinfo=UTC),
            "adjustment",
            str(early.id),
        ),
    ]
    assert [(e.kind, e.credits, e.grant_id, e.source_type, e.source_id, e.actor, e.occurred_at) for e in ledger_of(database, account.id)] == [
        ("adjust_add", D("12.50"), late_grant, "adjustment", str(late.id), ACTOR, instant("2027-01-31 23:30")),
        ("adjust_add", D("5.00"), early_grant, "adjustment", str(early.id), "someone@space.test", instant("2027-01-31 10:00")),
    ]


def test_an_addition_without_a_lifetime_never_expires(database):
    account = factories.account(database)

    grant_id = add_credits(database, account.id, "10", instant("2027-01-10 09:00"))

    (grant,) = grants_of(database, account.id)
    assert (grant.id, grant.valid_from, grant.expires_at, grant.value) == (grant_id, instant("2027-01-10 09:00"), None, D("0"))
    summary = checked_summary(database, account.id, instant("2099-01-01 00:00"))
    assert figures(summary.total) == (D("10.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"))


def test_a_deduction_draws_in_consumption_order_and_counts_as_used(database):
    account = factories.account(database)
    two_months = add_credits(database, account.id, "10", instant("2027-01-10 09:00"), lifetime="P2M")  # expires Mar 10
    add_credits(database, account.id, "10", instant("2027-01-10 09:00"))  # never expires: drawn last
    one_month = add_credits(database, account.id, "10", instant("2027-01-10 10:00"), lifetime="P1M")  # expires Feb 10

    with database.write() as session:
        deduction, touched = adjust(
            session, account.id, kind="deduct", credits=D("15"), reason="Double booking refunded twice", now=instant("2027-01-12 09:00"), actor=ACTOR
        )

    assert touched == [(one_month, D("10.00")), (two_months, D("5.00"))]
    assert (deduction.kind, deduction.credits, deduction.reason, deduction.actor) == ("deduct", D("15.00"), "Double booking refunded twice", ACTOR)
    assert [(e.kind, e.credits, e.balance_after, e.grant_id, e.source_type, e.source_id, e.actor) for e in ledger_of(database, account.id)][3:] == [
        ("adjust_deduct", D("-10.00"), D("20.00"), one_month, "adjustment", str(deduction.id), ACTOR),
        ("adjust_deduct", D("-5.00"), D("15.00"), two_months, "adjustment", str(deduction.id), ACTOR),
    ]
    assert counters(database, account.id) == [
        (D("10.00"), D("5.00"), D("5.00"), D("0.00"), D("0.00"), D("0.00")),
        (D("10.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00")),
        (D("10.00"), D("0.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00")),
    ]
    summary = checked_summary(database, account.id, instant("2027-01-12 09:00"))
    assert figures(summary.total) == (D("30.00"), D("15.00"), D("15.00"), D("0.00"), D("0.00"), D("0.00"))


def test_a_deduction_past_the_available_credits_is_refused_and_writes_nothing(database):
    account = factories.account(database)
    add_credits(database, account.id, "10", instant("2027-01-10 09:00"))
    hold(database, account.id, "3", event_at=instant("2027-01-20 10:00"), now=instant("2027-01-10 10:00"))
    before = everything(database)

    with pytest.raises(InsufficientCredits) as refusal, database.write() as session:
        adjust(session, account.id, kind="deduct", credits=D("8"), reason="Correction", now=instant("2027-01-12 09:00"), actor=ACTOR)

    # Held credits are not available to a deduction either.
    assert refusal.value.extra == {"credits_requested": "8.00", "credits_available": "7.00"}
    assert everything(database) == before


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_adjustment_without_a_reason_is_refused(database, reason):
    account = factories.account(database)
    add_credits(database, account.id, "10", instant("2027-01-10 09:00"))
    before = everything(database)

    for kind in ("add", "deduct"):
        with pytest.raises(ValidationFailed) as refusal, database.write() as session:
            adjust(session, account.id, kind=kind, credits=D("1"), reason=reason, now=instant("2027-01-12 09:00"), actor=ACTOR)
        assert refusal.value.extra["errors"] == [{"field": "reason", "message": "a reason is required"}]

    assert everything(database) == before


# ---------------------------------------------------------------------------------------------
# Transfers
# ---------------------------------------------------------------------------------------------


def thirty_credits_for_100_euros(database, account_id: int) -> int:
    """A monthly pack of 30 credits for 100.00 (net), lifetime P2M, billed and approved for January:
    one grant valid from 2027-01-01 00:00, expiring 2027-03-01 00:00, worth 100.00."""
    pack = factories.credit_pack(database, credits="30", lifetime="P2M", price="100.00")
    licence = factories.licence(database, account_id, date(2027, 1, 1), date(2027, 12, 31))
    factories.service(database, licence.id, pack.id, schedule="monthly", from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    (grant,) = grants_of(database, account_id)
    assert (grant.credits, grant.value, grant.valid_from, grant.expires_at) == (
        D("30.00"),
        D("100.00"),
        instant("2027-01-01 00:00"),
        instant("2027-03-01 00:00"),
    )
    return grant.id


def test_a_transfer_between_accounts_keeps_validity_expiry_and_value_per_credit(database):
    source = factories.account(database, name="Acme Ltd")
    target = factories.account(database, name="Acme Subsidiary")
    origin = thirty_credits_for_100_euros(database, source.id)

    with database.write() as session:
        moved, moves = transfer(
            session, from_account_id=source.id, to_account_id=target.id, credits=D("10"), reason="Team moved to the subsidiary",
            now=instant("2027-01-15 10:00"), actor=ACTOR,
        )

    ((from_grant, to_grant, credits),) = moves
    assert (from_grant, credits) == (origin, D("10.00"))
    assert (moved.from_account_id, moved.to_account_id, moved.credits, moved.reason, moved.actor, moved.created_at) == (
        source.id, target.id, D("10.00"), "Team moved to the subsidiary", ACTOR, instant("2027-01-15 10:00")
    )
    (new,) = grants_of(database, target.id)
    # Worth what the move took out of the source grant, to the cent: 100.00 for 30 less 66.67 for 20.
    assert (new.id, new.credits, new.remaining, new.value, new.currency, new.valid_from, new.expires_at, new.business_unit_id) == (
        to_grant, D("10.00"), D("10.00"), D("33.33"), "EUR", instant("2027-01-01 00:00"), instant("2027-03-01 00:00"), None
    )
    assert (new.source_type, new.source_id, new.origin_grant_id) == ("transfer", str(moved.id), origin)
    assert counters(database, source.id) == [(D("30.00"), D("20.00"), D("0.00"), D("0.00"), D("10.00"), D("0.00"))]
    assert grants_of(database, source.id)[0].value == D("100.00")

    assert [(e.kind, e.credits, e.balance_after, e.grant_id, e.source_type, e.source_id, e.actor) for e in ledger_of(database, source.id)] == [
        ("grant", D("30.00"), D("30.00"), origin, "invoice_line", grants_of(database, source.id)[0].source_id, ACTOR),
        ("transfer_out", D("-10.00"), D("20.00"), origin, "transfer", str(moved.id), ACTOR),
    ]
    assert [(e.kind, e.credits, e.balance_after, e.grant_id, e.source_type, e.source_id, e.actor) for e in ledger_of(database, target.id)] == [
        ("transfer_in", D("10.00"), D("10.00"), to_grant, "transfer", str(moved.id), ACTOR),
    ]
    source_summary = checked_summary(database, source.id, instant("2027-01-15 10:00"))
    assert figures(source_summary.total) == (D("30.00"), D("20.00"), D("0.00"), D("0.00"), D("10.00"), D("0.00"))
    target_summary = checked_summary(database, target.id, instant("2027-01-15 10:00"))
    assert figures(target_summary.total) == (D("10.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"))
    assert target_summary.expiring == []  # Mar 1 is more than 30 days after Jan 15

    # The moved credits are the target's to use, and still expire on Mar 1.
    assert_balance_agrees_with_summary(database, source.id, instant("2027-01-15 10:00"))
    assert_balance_agrees_with_summary(database, target.id, instant("2027-01-15 10:00"))
    _consumption, draws = use(database, target.id, "10", instant("2027-02-28 23:59"))
    assert draws == [Draw(to_grant, D("10.00"))]


def test_credits_transferred_into_an_account_in_debt_settle_the_debt_first(database):
    source = factories.account(database, name="Acme Ltd")
    target = factories.account(database, name="Acme Subsidiary")
    origin = thirty_credits_for_100_euros(database, source.id)
    use(database, target.id, "4", instant("2027-01-12 09:00"), allow_overdraft=True)

    with database.write() as session:
        _moved, [(_from, new, _credits)] = transfer(
            session, from_account_id=source.id, to_account_id=target.id, credits=D("10"), reason="Cover the overdraft",
            now=instant("2027-01-15 10:00"), actor=ACTOR,
        )

    assert entries(database, target.id) == [
        ("debt", D("-4.00"), D("-4.00"), None),
        ("transfer_in", D("10.00"), D("6.00"), new),
        ("debt_settlement", D("-4.00"), D("6.00"), new),
    ]
    assert counters(database, target.id) == [(D("10.00"), D("6.00"), D("4.00"), D("0.00"), D("0.00"), D("0.00"))]
    assert counters(database, source.id) == [(D("30.00"), D("20.00"), D("0.00"), D("0.00"), D("10.00"), D("0.00"))]
    assert grants_of(database, source.id)[0].id == origin
    summary = checked_summary(database, target.id, instant("2027-01-15 10:00"))
    assert figures(summary.total) == (D("10.00"), D("6.00"), D("4.00"), D("0.00"), D("0.00"), D("0.00"))
    assert_balance_agrees_with_summary(database, target.id, instant("2027-01-15 10:00"))


def test_a_transfer_between_business_units_moves_each_draw_with_its_own_expiry_and_value(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    neurology = factories.business_unit(database, account.id, "Neurology")
    origin = thirty_credits_for_100_euros(database, account.id)  # unrestricted, expires Mar 1
    bonus = add_credits(database, account.id, "10", instant("2027-01-10 09:00"))  # unrestricted, never expires

    with database.write() as session:
        to_cardiology, moves = transfer(
            session, from_account_id=account.id, to_account_id=account.id, to_business_unit_id=cardiology.id, credits=D("35"),
            reason="Cardiology budget", now=instant("2027-01-15 10:00"), actor=ACTOR,
        )

    moved_paid, moved_bonus = (to for _from, to, _credits in moves)
    assert moves == [(origin, moved_paid, D("30.00")), (bonus, moved_bonus, D("5.00"))]
    assert [(g.id, g.business_unit_id, g.credits, g.value, g.valid_from, g.expires_at, g.origin_grant_id) for g in grants_of(database, account.id)][
        2:
    ] == [
        (moved_paid, cardiology.id, D("30.00"), D("100.00"), instant("2027-01-01 00:00"), instant("2027-03-01 00:00"), origin),
        (moved_bonus, cardiology.id, D("5.00"), D("0"), instant("2027-01-10 09:00"), None, bonus),
    ]
    assert entries(database, account.id)[2:] == [
        ("transfer_out", D("-30.00"), D("10.00"), origin),
        ("transfer_out", D("-5.00"), D("5.00"), bonus),
        ("transfer_in", D("30.00"), D("35.00"), moved_paid),
        ("transfer_in", D("5.00"), D("40.00"), moved_bonus),
    ]
    summary = checked_summary(database, account.id, instant("2027-01-15 10:00"))
    assert figures(summary.total) == (D("75.00"), D("40.00"), D("0.00"), D("0.00"), D("35.00"), D("0.00"))
    assert figures(summary.unrestricted) == (D("40.00"), D("5.00"), D("0.00"), D("0.00"), D("35.00"), D("0.00"))
    assert {unit_id: figures(values) for unit_id, _name, values in summary.business_units} == {
        cardiology.id: (D("35.00"), D("35.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00")),
        neurology.id: (D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00")),
    }
    assert to_cardiology.to_business_unit_id == cardiology.id

    # From a unit, only that unit's grants are drawn: Cardiology holds 35, not 35 + 5 unrestricted.
    before = everything(database)
    with pytest.raises(InsufficientCredits) as refusal, database.write() as session:
        transfer(
            session, from_account_id=account.id, to_account_id=account.id, from_business_unit_id=cardiology.id,
            to_business_unit_id=neurology.id, credits=D("36"), reason="Neurology budget", now=instant("2027-01-16 10:00"), actor=ACTOR,
        )
    assert refusal.value.extra == {"credits_requested": "36.00", "credits_available": "35.00"}
    assert everything(database) == before

    with database.write() as session:
        _to_neurology, moves = transfer(
            session, from_account_id=account.id, to_account_id=account.id, from_business_unit_id=cardiology.id,
            to_business_unit_id=neurology.id, credits=D("31"), reason="Neurology budget", now=instant("2027-01-16 10:00"), actor=ACTOR,
        )
    assert [(origin_id, credits) for origin_id, _new, credits in moves] == [(moved_paid, D("30.00")), (moved_bonus, D("1.00"))]
    assert [(g.business_unit_id, g.credits, g.value, g.expires_at) for g in grants_of(database, account.id)][4:] == [
        (neurology.id, D("30.00"), D("100.00"), instant("2027-03-01 00:00")),
        (neurology.id, D("1.00"), D("0"), None),
    ]
    assert counters(database, account.id)[0] == (
        D("30.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("30.00"),
        D("0.00"),
    )  # the unrestricted pool untouched
    assert counters(database, account.id)[1] == (D("10.00"), D("5.00"), D("0.00"), D("0.00"), D("5.00"), D("0.00"))
    checked_summary(database, account.id, instant("2027-01-16 10:00"))


def test_a_transfer_between_accounts_of_different_currencies_is_refused(database):
    source = factories.account(database, name="Acme Ltd")
    target = factories.account(database, name="Acme UK", currency="GBP")
    add_credits(database, source.id, "10", instant("2027-01-10 09:00"))
    before = everything(database)

    with pytest.raises(CurrencyMismatch) as refusal, database.write() as session:
        transfer(
            session, from_account_id=source.id, to_account_id=target.id, credits=D("5"), reason="Move", now=instant("2027-01-15 10:00"), actor=ACTOR
        )

    assert refusal.value.code == "currency_mismatch"
    assert everything(database) == before


def test_a_transfer_to_the_place_it_comes_from_is_refused(database):
    account = factories.account(database)
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    add_credits(database, account.id, "10", instant("2027-01-10 09:00"))
    add_credits(database, account.id, "10", instant("2027-01-10 09:00"), business_unit_id=cardiology.id)
    before = everything(database)

    for unit in (None, cardiology.id):
        with pytest.raises(ValidationFailed), database.write() as session:
            transfer(
                session, from_account_id=account.id, to_account_id=account.id, from_business_unit_id=unit, to_business_unit_id=unit,
                credits=D("5"), reason="Move", now=instant("2027-01-15 10:00"), actor=ACTOR,
            )

    assert everything(database) == before


def test_a_transfer_of_more_credits_than_the_source_holds_is_refused_and_writes_nothing(database):
    source = factories.account(database, name="Acme Ltd")
    target = factories.account(database, name="Acme Subsidiary")
    thirty_credits_for_100_euros(database, source.id)
    add_credits(database, target.id, "5", instant("2027-01-10 09:00"))
    before = everything(database)

    with pytest.raises(InsufficientCredits) as refusal, database.write() as session:
        transfer(
            session,
            from_account_id=source.id,
            to_account_id=target.id,
            credits=D("30.01"),
            reason="Move",
            now=instant("2027-01-15 10:00"),
            actor=ACTOR,
        )

    assert refusal.value.extra == {"credits_requested": "30.01", "credits_available": "30.00"}
    assert everything(database) == before


def test_a_transfer_naming_a_unit_of_another_account_is_refused(database):
    source = factories.account(database, name="Acme Ltd")
    target = factories.account(database, name="Acme Subsidiary")
    elsewhere = factories.business_unit(database, source.id, "Cardiology")
    add_credits(database, source.id, "10", instant("2027-01-10 09:00"))
    before = everything(database)

    with pytest.raises(UnknownReference) as refusal, database.write() as session:
        transfer(
            session, from_account_id=source.id, to_account_id=target.id, to_business_unit_id=elsewhere.id, credits=D("5"),
            reason="Move", now=instant("2027-01-15 10:00"), actor=ACTOR,
        )

    assert refusal.value.extra["errors"][0]["field"] == "to_business_unit_id"
    assert everything(database) == before


# ---------------------------------------------------------------------------------------------
# Through HTTP
# ---------------------------------------------------------------------------------------------

BILLING_ACTOR = "api-key:test-billing"
BOOKINGS_ACTOR = "api-key:test-bookings"


@pytest.fixture
def api(client):
    """The billing client, once FastAPI has resolved its routes: under freezegun ``datetime`` is
    a fake class that pydantic refuses, so one unfrozen request (a 404) resolves them all first."""
    assert client.get("/api/v1/no-such-resource").status_code == 404
    return client


def post(client, path: str, moment: str, body: dict | None = None):
    return call(client, "POST", path, moment, json=body if body is not None else {})


def get(client, path: str, moment: str, **params) -> dict:
    response = call(client, "GET", path, moment, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def new_account(api, name: str = "Acme Ltd", currency: str = "EUR") -> str:
    return created(api, "/api/v1/accounts", {"name": name, "email": "billing@acme.test", "currency": currency})["id"]


def new_unit(api, account_id: str, name: str) -> str:
    return created(api, f"/api/v1/accounts/{account_id}/business-units", {"name": name})["id"]


def added(api, account_id: str, credits: str, moment: str, **values) -> str:
    """A manual addition through the API; returns the grant it made."""
    body = {"kind": "add", "credits": credits, "reason": "Welcome bonus", **values}
    response = post(api, f"/api/v1/accounts/{account_id}/adjustments", moment, body)
    assert response.status_code == 201, response.text
    (grant,) = response.json()["grants"]
    return grant["grant_id"]


def problem_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def ledger_rows(api, account_id: str, moment: str) -> list[tuple]:
    return [(e["kind"], e["credits"], e["balance_after"], e["grant_id"]) for e in get(api, f"/api/v1/accounts/{account_id}/ledger", moment)["items"]]


def totals(summary: dict) -> tuple:
    return tuple(summary[name] for name in ("granted", "remaining", "used", "held", "removed", "debt"))


def summary_now(api, account_id: str, moment: str) -> dict:
    return get(api, f"/api/v1/accounts/{account_id}/credits", moment)


def test_http_a_hold_makes_credits_unavailable_until_it_is_released(api, database):
    account_id = new_account(api)
    grant_id = added(api, account_id, "10", "2027-01-10T09:00:00Z")
    bookings = api.as_role("bookings")

    response = post(bookings, f"/api/v1/accounts/{account_id}/holds", "2027-01-10T10:00:00Z",
                    {"credits": "6", "event_at": "2027-01-20T11:00:00+01:00", "reference": "booking-42"})

    assert response.status_code == 201, response.text
    placed = response.json()
    assert (placed["status"], placed["credits"], placed["event_at"], placed["reference"], placed["consumption_id"]) == (
        "open", "6.00", "2027-01-20T10:00:00+00:00", "booking-42", None
    )
    assert placed["draws"] == [{"grant_id": grant_id, "credits": "6.00"}]
    before = everything(database)
    refusal = problem_of(
        post(bookings, f"/api/v1/accounts/{account_id}/consumptions", "2027-01-10T11:00:00Z", {"credits": "5"}), 409, "insufficient_credits"
    )
    assert (refusal["credits_requested"], refusal["credits_available"]) == ("5.00", "4.00")
    assert everything(database) == before
    assert totals(summary_now(api, account_id, "2027-01-10T11:00:00Z")) == ("10.00", "4.00", "0.00", "6.00", "0.00", "0.00")

    response = post(bookings, f"/api/v1/holds/{placed['id']}/release", "2027-01-11T09:00:00Z")

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["closed_at"]) == ("released", "2027-01-11T09:00:00+00:00")
    entries_seen = get(api, f"/api/v1/accounts/{account_id}/ledger", "2027-01-11T09:00:00Z")["items"]
    assert [(e["kind"], e["credits"], e["balance_after"], e["grant_id"], e["actor"], e["source"]) for e in entries_seen] == [
        ("adjust_add", "10.00", "10.00", grant_id, BILLING_ACTOR, {"type": "adjustment", "id": entries_seen[0]["source"]["id"]}),
        ("hold", "-6.00", "4.00", grant_id, BOOKINGS_ACTOR, {"type": "hold", "id": placed["id"]}),
        ("hold_release", "6.00", "10.00", grant_id, BOOKINGS_ACTOR, {"type": "hold", "id": placed["id"]}),
    ]
    response = post(bookings, f"/api/v1/accounts/{account_id}/consumptions", "2027-01-11T10:00:00Z", {"credits": "5"})
    assert response.status_code == 201, response.text
    assert response.json()["draws"] == [{"grant_id": grant_id, "credits": "5.00"}]
    assert totals(summary_now(api, account_id, "2027-01-11T10:00:00Z")) == ("10.00", "5.00", "5.00", "0.00", "0.00", "0.00")


def test_http_capturing_a_hold_consumes_at_the_event_and_a_captured_hold_cannot_be_released(api, database):
    account_id = new_account(api)
    grant_id = added(api, account_id, "10", "2027-01-10T09:00:00Z")
    bookings = api.as_role("bookings")
    placed = created(bookings, f"/api/v1/accounts/{account_id}/holds", {"credits": "3", "event_at": "2027-01-20T10:00:00Z"}, "2027-01-10T10:00:00Z")
    assert placed["deadline"] == "2027-01-21T10:00:00+00:00"  # event_at + 24 hours by default

    response = post(bookings, f"/api/v1/holds/{placed['id']}/capture", "2027-01-20T12:00:00Z")

    assert response.status_code == 200, response.text
    captured = response.json()
    assert (captured["status"], captured["closed_at"], captured["draws"]) == (
        "captured", "2027-01-20T12:00:00+00:00", [{"grant_id": grant_id, "credits": "3.00"}]
    )
    consumption = get(api, f"/api/v1/consumptions/{captured['consumption_id']}", "2027-01-20T12:00:00Z")
    assert (consumption["credits"], consumption["occurred_at"], consumption["hold_id"], consumption["debt"], consumption["draws"]) == (
        "3.00", "2027-01-20T10:00:00+00:00", placed["id"], "0.00", [{"grant_id": grant_id, "credits": "3.00"}]
    )
    assert ledger_rows(api, account_id, "2027-01-20T12:00:00Z") == [
        ("adjust_add", "10.00", "10.00", grant_id),
        ("hold", "-3.00", "7.00", grant_id),
        ("hold_release", "3.00", "10.00", grant_id),
        ("consume", "-3.00", "7.00", grant_id),
    ]
    assert totals(summary_now(api, account_id, "2027-01-20T12:00:00Z")) == ("10.00", "7.00", "3.00", "0.00", "0.00", "0.00")
    before = everything(database)

    again = post(bookings, f"/api/v1/holds/{placed['id']}/capture", "2027-01-21T09:00:00Z")
    assert again.status_code == 200, again.text
    assert again.json() == captured
    problem_of(post(bookings, f"/api/v1/holds/{placed['id']}/release", "2027-01-21T09:00:00Z"), 409, "hold_not_open")
    assert everything(database) == before
    assert get(api, f"/api/v1/holds/{placed['id']}", "2027-01-21T09:00:00Z") == captured


def test_http_billing_may_overdraw_an_empty_account_and_the_next_grant_settles_the_debt(api, database):
    account_id = new_account(api)

    response = post(api, f"/api/v1/accounts/{account_id}/consumptions", "2027-01-10T09:00:00Z", {"credits": "50", "allow_overdraft": True})

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["credits"], body["draws"], body["debt"]) == ("50.00", [], "50.00")
    (debt,) = get(api, f"/api/v1/accounts/{account_id}/ledger", "2027-01-10T09:00:00Z")["items"]
    assert (debt["kind"], debt["credits"], debt["balance_after"], debt["grant_id"], debt["source"]) == (
        "debt", "-50.00", "-50.00", None, {"type": "consumption", "id": body["id"]}
    )
    summary = summary_now(api, account_id, "2027-01-10T09:00:00Z")
    assert totals(summary) == ("0.00", "0.00", "0.00", "0.00", "0.00", "50.00")
    assert summary["unrestricted"]["debt"] == "50.00"

    grant_id = added(api, account_id, "100", "2027-01-11T09:00:00Z")

    assert ledger_rows(api, account_id, "2027-01-11T09:00:00Z") == [
        ("debt", "-50.00", "-50.00", None),
        ("adjust_add", "100.00", "50.00", grant_id),
        ("debt_settlement", "-50.00", "50.00", grant_id),
    ]
    assert totals(summary_now(api, account_id, "2027-01-11T09:00:00Z")) == ("100.00", "50.00", "50.00", "0.00", "0.00", "0.00")
    (grant,) = get(api, f"/api/v1/accounts/{account_id}/grants", "2027-01-11T09:00:00Z")["items"]
    assert (grant["credits"], grant["remaining"], grant["used"]) == ("100.00", "50.00", "50.00")
    before = everything(database)
    refusal = problem_of(
        post(api, f"/api/v1/accounts/{account_id}/consumptions", "2027-01-11T10:00:00Z", {"credits": "50.01"}), 409, "insufficient_credits"
    )
    assert refusal["credits_available"] == "50.00"
    assert everything(database) == before
    summary, recomputed = summary_at(database, int(account_id), instant("2027-01-11 10:00"))
    assert summary == recomputed


def test_http_the_bookings_role_may_not_overdraw(api, database):
    account_id = new_account(api)
    bookings = api.as_role("bookings")
    before = everything(database)

    problem_of(
        post(bookings, f"/api/v1/accounts/{account_id}/consumptions", "2027-01-10T09:00:00Z", {"credits": "50", "allow_overdraft": True}),
        403,
        "forbidden",
    )
    assert everything(database) == before

    # Without allow_overdraft there is still no silent overdraft, for any role.
    for client in (bookings, api):
        refusal = problem_of(
            post(client, f"/api/v1/accounts/{account_id}/consumptions", "2027-01-10T09:00:00Z", {"credits": "50"}), 409, "insufficient_credits"
        )
        assert (refusal["credits_requested"], refusal["credits_available"]) == ("50.00", "0.00")
    assert everything(database) == before


def test_http_adjustments_add_and_deduct_credits_with_a_reason_and_an_actor(api, database):
    account_id = new_account(api)

    response = post(api, f"/api/v1/accounts/{account_id}/adjustments", "2027-01-31T10:00:00Z",
                    {"kind": "add", "credits": "12.50", "reason": "Goodwill: broken projector", "lifetime": "P1M"})

    assert response.status_code == 201, response.text
    addition = response.json()
    assert (addition["kind"], addition["credits"], addition["reason"], addition["lifetime"], addition["actor"], addition["created_at"]) == (
        "add", "12.50", "Goodwill: broken projector", "P1M", BILLING_ACTOR, "2027-01-31T10:00:00+00:00"
    )
    (grant,) = get(api, f"/api/v1/accounts/{account_id}/grants", "2027-01-31T10:00:00Z")["items"]
    # Jan 31 + P1M = Feb 28 (clamped): the credits stop at 00:00 on Feb 28.
    assert (grant["id"], grant["credits"], grant["value"], grant["valid_from"], grant["expires_at"], grant["source"]) == (
        addition["grants"][0]["grant_id"], "12.50", "0.00", "2027-01-31T10:00:00+00:00", "2027-02-28T00:00:00+00:00",
        {"type": "adjustment", "id": addition["id"]},
    )
    forever = added(api, account_id, "10", "2027-01-31T11:00:00Z")
    assert get(api, f"/api/v1/accounts/{account_id}/grants", "2027-01-31T11:00:00Z")["items"][1]["expires_at"] is None
    before = everything(database)

    refusal = problem_of(post(api, f"/api/v1/accounts/{account_id}/adjustments", "2027-02-01T09:00:00Z",
                              {"kind": "deduct", "credits": "22.51", "reason": "Correction"}), 409, "insufficient_credits")
    assert (refusal["credits_requested"], refusal["credits_available"]) == ("22.51", "22.50")
    assert everything(database) == before

    response = post(
        api, f"/api/v1/accounts/{account_id}/adjustments", "2027-02-01T09:00:00Z", {"kind": "deduct", "credits": "15", "reason": "Correction"}
    )

    assert response.status_code == 201, response.text
    assert response.json()["grants"] == [{"grant_id": grant["id"], "credits": "12.50"}, {"grant_id": forever, "credits": "2.50"}]
    entries_seen = get(api, f"/api/v1/accounts/{account_id}/ledger", "2027-02-01T09:00:00Z", kind="adjust_deduct")["items"]
    assert [(e["credits"], e["balance_after"], e["grant_id"], e["actor"]) for e in entries_seen] == [
        ("-12.50", "10.00", grant["id"], BILLING_ACTOR), ("-2.50", "7.50", forever, BILLING_ACTOR)
    ]
    assert totals(summary_now(api, account_id, "2027-02-01T09:00:00Z")) == ("22.50", "7.50", "15.00", "0.00", "0.00", "0.00")


@pytest.mark.parametrize("role", ["bookings", "read"])
def test_http_only_billing_may_adjust_or_transfer(api, database, role):
    account_id = new_account(api)
    other_id = new_account(api, "Acme Subsidiary")
    added(api, account_id, "10", "2027-01-10T09:00:00Z")
    caller = api.as_role(role)
    before = everything(database)

    problem_of(
        post(caller, f"/api/v1/accounts/{account_id}/adjustments", "2027-01-10T10:00:00Z", {"kind": "add", "credits": "5", "reason": "Bonus"}),
        403,
        "forbidden",
    )
    problem_of(post(caller, "/api/v1/transfers", "2027-01-10T10:00:00Z",
                    {"from_account_id": account_id, "to_account_id": other_id, "credits": "5", "reason": "Move"}), 403, "forbidden")

    assert everything(database) == before


def test_http_transfers_between_accounts_and_business_units(api, database):
    source_id = new_account(api, "Acme Ltd")
    target_id = new_account(api, "Acme Subsidiary")
    pack_id = created(api, "/api/v1/products", {"kind": "credit_pack", "name": "30 credits", "price": "100.00", "currency": "EUR",
                                               "tax_rate": "20", "credits": "30", "lifetime": "P2M"})["id"]
    licence_id = http_examples.licence(api, source_id)
    http_examples.service(api, licence_id, pack_id, "monthly", "2027-01-01", "2027-12-31")
    http_examples.bill_and_approve(api, licence_id, "2027-01-01", "2027-01-01T00:00:00Z")
    (origin,) = get(api, f"/api/v1/accounts/{source_id}/grants", "2027-01-01T00:00:00Z")["items"]

    response = post(api, "/api/v1/transfers", "2027-01-15T10:00:00Z",
                    {"from_account_id": source_id, "to_account_id": target_id, "credits": "10", "reason": "Team moved"})

    assert response.status_code == 201, response.text
    moved = response.json()
    ((move),) = moved["moves"]
    assert (moved["from_account_id"], moved["to_account_id"], moved["credits"], moved["reason"], moved["actor"]) == (
        source_id, target_id, "10.00", "Team moved", BILLING_ACTOR
    )
    assert (move["from_grant_id"], move["credits"]) == (origin["id"], "10.00")
    (new,) = get(api, f"/api/v1/accounts/{target_id}/grants", "2027-01-15T10:00:00Z")["items"]
    assert (new["id"], new["credits"], new["remaining"], new["value"], new["valid_from"], new["expires_at"], new["source"]) == (
        move["to_grant_id"], "10.00", "10.00", "33.33", "2027-01-01T00:00:00+00:00", "2027-03-01T00:00:00+00:00",
        {"type": "transfer", "id": moved["id"]},
    )
    assert ledger_rows(api, source_id, "2027-01-15T10:00:00Z") == [
        ("grant", "30.00", "30.00", origin["id"]),
        ("transfer_out", "-10.00", "20.00", origin["id"]),
    ]
    assert ledger_rows(api, target_id, "2027-01-15T10:00:00Z") == [("transfer_in", "10.00", "10.00", new["id"])]
    assert totals(summary_now(api, source_id, "2027-01-15T10:00:00Z")) == ("30.00", "20.00", "0.00", "0.00", "10.00", "0.00")

    # Between business units of one account.
    cardiology = new_unit(api, target_id, "Cardiology")
    response = post(api, "/api/v1/transfers", "2027-01-16T10:00:00Z",
                    {"from_account_id": target_id, "to_account_id": target_id, "to_business_unit_id": cardiology, "credits": "4", "reason": "Budget"})
    assert response.status_code == 201, response.text
    ((move),) = response.json()["moves"]
    summary = summary_now(api, target_id, "2027-01-16T10:00:00Z")
    assert totals(summary["unrestricted"]) == ("10.00", "6.00", "0.00", "0.00", "4.00", "0.00")
    (unit,) = summary["business_units"]
    assert (unit["business_unit_id"], unit["granted"], unit["remaining"]) == (cardiology, "4.00", "4.00")
    assert get(api, f"/api/v1/accounts/{target_id}/grants", "2027-01-16T10:00:00Z")["items"][1]["value"] == "13.33"
    before = everything(database)

    # From a unit only that unit's grants are drawn: Cardiology has 4, the pool's 6 do not count.
    refusal = problem_of(
        post(
            api,
            "/api/v1/transfers",
            "2027-01-16T11:00:00Z",
            {"from_account_id": target_id, "from_business_unit_id": cardiology, "to_account_id": source_id, "credits": "5", "reason": "Back"},
        ),
        409,
        "insufficient_credits",
    )
    assert (refusal["credits_requested"], refusal["credits_available"]) == ("5.00", "4.00")
    # Too many credits from an account.
    refusal = problem_of(
        post(
            api,
            "/api/v1/transfers",
            "2027-01-16T11:00:00Z",
            {"from_account_id": source_id, "to_account_id": target_id, "credits": "20.01", "reason": "Move"},
        ),
        409,
        "insufficient_credits",
    )
    assert (refusal["credits_requested"], refusal["credits_available"]) == ("20.01", "20.00")
    # The same place to the same place.
    problem_of(post(api, "/api/v1/transfers", "2027-01-16T11:00:00Z",
                    {"from_account_id": target_id, "to_account_id": target_id, "credits": "1", "reason": "Nowhere"}), 422, "validation_error")
    problem_of(post(api, "/api/v1/transfers", "2027-01-16T11:00:00Z",
                    {"from_account_id": target_id, "to_account_id": target_id, "from_business_unit_id": cardiology,
                     "to_business_unit_id": cardiology, "credits": "1", "reason": "Nowhere"}), 422, "validation_error")
    assert everything(database) == before


def test_http_a_transfer_between_currencies_is_refused_as_a_currency_mismatch(api, database):
    source_id = new_account(api, "Acme Ltd")
    target_id = new_account(api, "Acme UK", currency="GBP")
    added(api, source_id, "10", "2027-01-10T09:00:00Z")
    before = everything(database)

    response = post(
        api, "/api/v1/transfers", "2027-01-10T10:00:00Z", {"from_account_id": source_id, "to_account_id": target_id, "credits": "5", "reason": "Move"}
    )

    problem_of(response, 409, "currency_mismatch")
    assert everything(database) == before


# ---------------------------------------------------------------------------------------------
# Bad input on the new endpoints: 4xx problem+json, nothing written
# ---------------------------------------------------------------------------------------------


def scene(api) -> dict[str, str]:
    """Two EUR accounts with 10 credits each, a unit and a member of the first, a unit of the
    second, an open hold on the first."""
    first = new_account(api, "Acme Ltd")
    second = new_account(api, "Acme Subsidiary")
    added(api, first, "10", "2027-01-10T09:00:00Z")
    added(api, second, "10", "2027-01-10T09:00:00Z")
    member_id = created(api, f"/api/v1/accounts/{first}/members", {"name": "Ada Lovelace", "email": "ada@acme.test"})["id"]
    placed = created(api, f"/api/v1/accounts/{first}/holds", {"credits": "1", "event_at": "2027-01-20T10:00:00Z"}, "2027-01-10T10:00:00Z")
    return {"first": first, "second": second, "unit": new_unit(api, first, "Cardiology"), "other_unit": new_unit(api, second, "Sales"),
            "member": member_id, "hold": placed["id"]}


UNKNOWN = "999999"
HOLD = {"credits": "2", "event_at": "2027-01-20T10:00:00Z"}
ADDITION = {"kind": "add", "credits": "2", "reason": "Bonus"}
TRANSFER = {"credits": "2", "reason": "Move"}

BAD_REQUESTS = [
    # (what, path, body, status, code); {first}, {second}, {unit}, {other_unit}, {member}, {hold} come from the scene.
    ("hold on an unknown account", "/accounts/999999/holds", HOLD, 404, "not_found"),
    ("hold on an account id that is not one", "/accounts/abc/holds", HOLD, 404, "not_found"),
    ("hold in an unknown unit", "/accounts/{first}/holds", HOLD | {"business_unit_id": UNKNOWN}, 422, "unknown_reference"),
    ("hold in another account's unit", "/accounts/{first}/holds", HOLD | {"business_unit_id": "{other_unit}"}, 422, "unknown_reference"),
    ("hold for an unknown member", "/accounts/{first}/holds", HOLD | {"member_id": UNKNOWN}, 422, "unknown_reference"),
    ("hold of zero credits", "/accounts/{first}/holds", HOLD | {"credits": "0"}, 422, "validation_error"),
    ("hold of negative credits", "/accounts/{first}/holds", HOLD | {"credits": "-1"}, 422, "validation_error"),
    ("hold of credits with three places", "/accounts/{first}/holds", HOLD | {"credits": "1.234"}, 422, "validation_error"),
    ("hold of credits as a JSON number", "/accounts/{first}/holds", HOLD | {"credits": 2}, 422, "validation_error"),
    ("hold without credits", "/accounts/{first}/holds", {"event_at": "2027-01-20T10:00:00Z"}, 422, "validation_error"),
    ("hold with an event_at without offset", "/accounts/{first}/holds", HOLD | {"event_at": "2027-01-20T10:00:00"}, 422, "validation_error"),
    ("hold without event_at", "/accounts/{first}/holds", {"credits": "2"}, 422, "validation_error"),
    ("hold with a deadline before the event", "/accounts/{first}/holds", HOLD | {"deadline": "2027-01-20T09:00:00Z"}, 422, "validation_error"),
    ("hold with an unknown field", "/accounts/{first}/holds", HOLD | {"allow_overdraft": True}, 422, "validation_error"),
    ("capture of an unknown hold", "/holds/999999/capture", {}, 404, "not_found"),
    ("release of an unknown hold", "/holds/999999/release", {}, 404, "not_found"),
    ("capture of a hold id that is not one", "/holds/abc/capture", {}, 404, "not_found"),
    ("adjustment of an unknown account", "/accounts/999999/adjustments", ADDITION, 404, "not_found"),
    ("adjustment in an unknown unit", "/accounts/{first}/adjustments", ADDITION | {"business_unit_id": UNKNOWN}, 422, "unknown_reference"),
    (
        "adjustment in another account's unit",
        "/accounts/{first}/adjustments",
        ADDITION | {"business_unit_id": "{other_unit}"},
        422,
        "unknown_reference",
    ),
    ("adjustment of zero credits", "/accounts/{first}/adjustments", ADDITION | {"credits": "0"}, 422, "validation_error"),
    ("adjustment of negative credits", "/accounts/{first}/adjustments", ADDITION | {"credits": "-1"}, 422, "validation_error"),
    ("adjustment of credits with three places", "/accounts/{first}/adjustments", ADDITION | {"credits": "1.234"}, 422, "validation_error"),
    ("deduction of zero credits", "/accounts/{first}/adjustments", ADDITION | {"kind": "deduct", "credits": "0"}, 422, "validation_error"),
    ("adjustment of an unknown kind", "/accounts/{first}/adjustments", ADDITION | {"kind": "multiply"}, 422, "validation_error"),
    ("adjustment without a reason", "/accounts/{first}/adjustments", {"kind": "add", "credits": "2"}, 422, "validation_error"),
    ("adjustment with an empty reason", "/accounts/{first}/adjustments", ADDITION | {"reason": ""}, 422, "validation_error"),
    ("adjustment with a blank reason", "/accounts/{first}/adjustments", ADDITION | {"reason": "   "}, 422, "validation_error"),
    ("deduction with a blank reason", "/accounts/{first}/adjustments", ADDITION | {"kind": "deduct", "reason": "   "}, 422, "validation_error"),
    ("addition with a lifetime of hours", "/accounts/{first}/adjustments", ADDITION | {"lifetime": "PT24H"}, 422, "validation_error"),
    ("addition with a lifetime of zero", "/accounts/{first}/adjustments", ADDITION | {"lifetime": "P0D"}, 422, "validation_error"),
    ("addition with a lifetime that is not a duration", "/accounts/{first}/adjustments", ADDITION | {"lifetime": "P1X"}, 422, "validation_error"),
    ("deduction with a lifetime", "/accounts/{first}/adjustments", ADDITION | {"kind": "deduct", "lifetime": "P1M"}, 422, "validation_error"),
    (
        "transfer from an unknown account",
        "/transfers",
        TRANSFER | {"from_account_id": UNKNOWN, "to_account_id": "{second}"},
        422,
        "unknown_reference",
    ),
    ("transfer to an unknown account", "/transfers", TRANSFER | {"from_account_id": "{first}", "to_account_id": UNKNOWN}, 422, "unknown_reference"),
    (
        "transfer from an unknown unit",
        "/transfers",
        TRANSFER | {"from_account_id": "{first}", "from_business_unit_id": UNKNOWN, "to_account_id": "{second}"},
        422,
        "unknown_reference",
    ),
    (
        "transfer from another account's unit",
        "/transfers",
        TRANSFER | {"from_account_id": "{first}", "from_business_unit_id": "{other_unit}", "to_account_id": "{second}"},
        422,
        "unknown_reference",
    ),
    (
        "transfer to another account's unit",
        "/transfers",
        TRANSFER | {"from_account_id": "{first}", "to_account_id": "{second}", "to_business_unit_id": "{unit}"},
        422,
        "unknown_reference",
    ),
    (
        "transfer of zero credits",
        "/transfers",
        TRANSFER | {"from_account_id": "{first}", "to_account_id": "{second}", "credits": "0"},
        422,
        "validation_error",
    ),
    (
        "transfer of negative credits",
        "/transfers",
        TRANSFER | {"from_account_id": "{first}", "to_account_id": "{second}", "credits": "-1"},
        422,
        "validation_error",
    ),
    (
        "transfer of credits with three places",
        "/transfers",
        TRANSFER | {"from_account_id": "{first}", "to_account_id": "{second}", "credits": "1.234"},
        422,
        "validation_error",
    ),
    ("transfer without a reason", "/transfers", {"from_account_id": "{first}", "to_account_id": "{second}", "credits": "2"}, 422, "validation_error"),
    (
        "transfer with a blank reason",
        "/transfers",
        TRANSFER | {"from_account_id": "{first}", "to_account_id": "{second}", "reason": "  "},
        422,
        "validation_error",
    ),
    ("transfer without a target", "/transfers", TRANSFER | {"from_account_id": "{first}"}, 422, "validation_error"),
    ("overdraft of zero credits", "/accounts/{first}/consumptions", {"credits": "0", "allow_overdraft": True}, 422, "validation_error"),
    (
        "overdraft in another account's unit",
        "/accounts/{first}/consumptions",
        {"credits": "20", "allow_overdraft": True, "business_unit_id": "{other_unit}"},
        422,
        "unknown_reference",
    ),
    ("overdraft on an unknown account", "/accounts/999999/consumptions", {"credits": "20", "allow_overdraft": True}, 404, "not_found"),
]


def _filled(value, scene: dict[str, str]):
    if isinstance(value, str):
        return value.format(**scene)
    if isinstance(value, dict):
        return {key: _filled(item, scene) for key, item in value.items()}
    return value


def test_http_bad_input_on_holds_adjustments_transfers_and_overdrafts_is_a_problem_and_writes_nothing(api, database):
    ids = scene(api)
    # Every case runs against the same scene (one app per database keeps this quick); every
    # wrong answer is collected so that one run reports them all.
    wrong = []
    for what, path, body, status, code in BAD_REQUESTS:
        before = everything(database)
        response = post(api, "/api/v1" + _filled(path, ids), "2027-01-12T09:00:00Z", _filled(body, ids))
        problem = response.json() if response.headers.get("content-type", "").startswith(PROBLEM) else None
        if (response.status_code, problem and problem.get("code"), problem and problem.get("status")) != (status, code, status):
            wrong.append(f"{what}: expected {status} {code}, got {response.status_code} {response.text}")
        elif problem["type"] != f"https://licensing.dev/problems/{code.replace('_', '-')}":
            wrong.append(f"{what}: problem type {problem['type']}")
        elif code == "validation_error" and not problem.get("errors"):
            wrong.append(f"{what}: a validation error that names no field: {response.text}")
        if everything(database) != before:
            wrong.append(f"{what}: something was written")
    assert wrong == []
