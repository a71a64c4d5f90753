"""Consuming, expiring and reversing credits (SPEC 4, 5 and 7).

Grants are placed directly with ``create_grant`` (the credit engine does not care where they come
from); every expected figure below is worked out by hand from the SPEC.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time
from sqlmodel import func, select

from licensing.accounts.models import Account
from licensing.credits.balance import credit_summary, summary_from_ledger
from licensing.credits.consumption import FIRST_READ, consume, reverse_consumption
from licensing.credits.expiry import sweep_expiries
from licensing.credits.grants import create_grant
from licensing.credits.models import Consumption, Grant, LedgerEntry
from licensing.db.repository import lock
from licensing.errors import InsufficientCredits
from tests import factories

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def D(value: str) -> Decimal:
    return Decimal(value)


# -- helpers ---------------------------------------------------------------------------------


def give(database, account_id, credits, *, valid_from=T0, expires_at=None, unit=None, at=T0) -> int:
    """Place a grant of ``credits`` in the account (or a unit of it); returns the grant id."""
    with database.write() as session:
        account = lock(session, Account, account_id, "account")
        grant = create_grant(
            session, account, credits=D(credits), value=D(credits) * 10, valid_from=valid_from, expires_at=expires_at,
            business_unit_id=unit, source_type="test", source_id=1, actor="test", at=at,
        )
        return grant.id


def use(database, account_id, credits, *, now, unit=None) -> tuple[int, list[tuple[int, Decimal]]]:
    """Consume ``credits`` at ``now``; returns the consumption id and its draws."""
    with database.write() as session:
        consumption, draws = consume(session, account_id, credits=D(credits), business_unit_id=unit, now=now, actor="test")
        return consumption.id, [(draw.grant_id, draw.credits) for draw in draws]


def reverse(database, consumption_id, *, now) -> Consumption:
    with database.write() as session:
        consumption, _draws = reverse_consumption(session, consumption_id, now=now, actor="test")
        return consumption


def entries(database, account_id) -> list[tuple[str, int | None, Decimal, Decimal, datetime]]:
    """(kind, grant id, credits, balance_after, occurred_at) of every entry, in recording order."""
    with database.read() as session:
        rows = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)).all()
        return [(row.kind, row.grant_id, row.credits, row.balance_after, row.occurred_at) for row in rows]


def grant_row(database, grant_id) -> Grant:
    with database.read() as session:
        return session.get(Grant, grant_id)


def remaining(database, *grant_ids) -> list[Decimal]:
    return [grant_row(database, grant_id).remaining for grant_id in grant_ids]


def balance(database, account_id) -> Decimal:
    with database.read() as session:
        return session.get(Account, account_id).balance


def summary(database, account_id, at):
    with database.read() as session:
        return credit_summary(session, session.get(Account, account_id), at)


def ledger_summary(database, account_id, at):
    with database.read() as session:
        return summary_from_ledger(session, session.get(Account, account_id), at)


def snapshot(database, account_id):
    """Everything a refused operation must leave alone."""
    with database.read() as session:
        grants = session.exec(select(Grant).where(Grant.account_id == account_id).order_by(Grant.id)).all()
        consumptions = session.exec(select(func.count()).select_from(Consumption)).one()
        return (
            entries(database, account_id),
            [(grant.id, grant.remaining, grant.used, grant.expired) for grant in grants],
            session.get(Account, account_id).balance,
            consumptions,
        )


def refusal(database, account_id, credits, *, now, unit=None) -> InsufficientCredits:
    before = snapshot(database, account_id)
    with pytest.raises(InsufficientCredits) as raised:
        use(database, account_id, credits, now=now, unit=unit)
    assert snapshot(database, account_id) == before
    return raised.value


# -- consumption order (SPEC 4) ---------------------------------------------------------------


def test_consumption_draws_earliest_expiry_first_then_earliest_valid_from_then_grant_id_and_never_expiring_last(database):
    # given five grants, created in an order that is not the drawing order
    account = factories.account(database)
    never = give(database, account.id, "5")
    late = give(database, account.id, "5", expires_at=T0 + 20 * DAY)
    soon_valid_now = give(database, account.id, "3", expires_at=T0 + 10 * DAY)
    soon_valid_earlier = give(database, account.id, "2", valid_from=T0 - DAY, expires_at=T0 + 10 * DAY)
    soon_valid_earlier_higher_id = give(database, account.id, "1", valid_from=T0 - DAY, expires_at=T0 + 10 * DAY)

    # when one consumption of 13 credits draws on all of them
    _consumption_id, draws = use(database, account.id, "13", now=T0 + HOUR)

    # then the draws follow expiry, then valid_from, then grant id; never-expiring last
    assert draws == [
        (soon_valid_earlier, D("2.00")),
        (soon_valid_earlier_higher_id, D("1.00")),
        (soon_valid_now, D("3.00")),
        (late, D("5.00")),
        (never, D("2.00")),
    ]
    # one consume entry per draw, in that order, with the running balance (16 granted)
    assert [entry[:4] for entry in entries(database, account.id)[5:]] == [
        ("consume", soon_valid_earlier, D("-2.00"), D("14.00")),
        ("consume", soon_valid_earlier_higher_id, D("-1.00"), D("13.00")),
        ("consume", soon_valid_now, D("-3.00"), D("10.00")),
        ("consume", late, D("-5.00"), D("5.00")),
        ("consume", never, D("-2.00"), D("3.00")),
    ]
    assert remaining(database, soon_valid_earlier, soon_valid_earlier_higher_id, soon_valid_now, late, never) == [
        D("0"), D("0"), D("0"), D("0"), D("3.00"),
    ]
    assert balance(database, account.id) == D("3.00")


def test_a_consumption_within_the_first_grant_draws_only_on_it(database):
    account = factories.account(database)
    later = give(database, account.id, "10", expires_at=T0 + 20 * DAY)
    sooner = give(database, account.id, "10", expires_at=T0 + 5 * DAY)

    _consumption_id, draws = use(database, account.id, "2.50", now=T0 + HOUR)

    assert draws == [(sooner, D("2.50"))]
    assert remaining(database, sooner, later) == [D("7.50"), D("10.00")]


# -- business units (SPEC 4, worked example 5) --------------------------------------------------


def test_cardiology_can_use_cardiology_and_unrestricted_credits_in_expiry_order_but_never_neurology(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology").id
    neurology = factories.business_unit(database, account.id, "Neurology").id
    unrestricted_soon = give(database, account.id, "4", expires_at=T0 + 5 * DAY)
    cardiology_soonest = give(database, account.id, "3", expires_at=T0 + 3 * DAY, unit=cardiology)
    neurology_first_to_expire = give(database, account.id, "10", expires_at=T0 + DAY, unit=neurology)
    cardiology_later = give(database, account.id, "2", expires_at=T0 + 7 * DAY, unit=cardiology)
    unrestricted_never = give(database, account.id, "1")

    # a Cardiology consumption interleaves its own and unrestricted grants by expiry
    _consumption_id, draws = use(database, account.id, "9", now=T0 + HOUR, unit=cardiology)

    assert draws == [(cardiology_soonest, D("3.00")), (unrestricted_soon, D("4.00")), (cardiology_later, D("2.00"))]
    assert remaining(database, neurology_first_to_expire, unrestricted_never) == [D("10.00"), D("1.00")]

    # Neurology's 10 credits are not available to Cardiology: only the last unrestricted credit is
    error = refusal(database, account.id, "2", now=T0 + 2 * HOUR, unit=cardiology)
    assert error.extra == {"credits_requested": "2.00", "credits_available": "1.00"}


def test_neurology_cannot_use_cardiology_credits(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology").id
    neurology = factories.business_unit(database, account.id, "Neurology").id
    give(database, account.id, "8", unit=cardiology)
    neurology_grant = give(database, account.id, "1", unit=neurology)

    error = refusal(database, account.id, "2", now=T0 + HOUR, unit=neurology)

    assert error.extra == {"credits_requested": "2.00", "credits_available": "1.00"}
    assert remaining(database, neurology_grant) == [D("1.00")]


def test_a_consumption_without_a_unit_uses_only_unrestricted_credits(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology").id
    cardiology_grant = give(database, account.id, "50", expires_at=T0 + DAY, unit=cardiology)
    unrestricted_later = give(database, account.id, "4", expires_at=T0 + 9 * DAY)
    unrestricted_never = give(database, account.id, "1")

    _consumption_id, draws = use(database, account.id, "5", now=T0 + HOUR)

    assert draws == [(unrestricted_later, D("4.00")), (unrestricted_never, D("1.00"))]
    assert remaining(database, cardiology_grant) == [D("50.00")]
    error = refusal(database, account.id, "0.01", now=T0 + HOUR)
    assert error.extra == {"credits_requested": "0.01", "credits_available": "0.00"}


# -- refusal (SPEC 4) -------------------------------------------------------------------------


def test_too_few_credits_refuses_the_whole_consumption_and_writes_nothing(database):
    # given 3 + 2 eligible credits (and 10 in a unit the consumption may not use)
    account = factories.account(database)
    unit = factories.business_unit(database, account.id, "Cardiology").id
    first = give(database, account.id, "3", expires_at=T0 + DAY)
    second = give(database, account.id, "2")
    give(database, account.id, "10", unit=unit)
    ledger_before = entries(database, account.id)

    # when 6 credits are asked for
    error = refusal(database, account.id, "6", now=T0 + HOUR)

    # then the error states both amounts and nothing moved (refusal() compared the snapshot)
    assert error.code == "insufficient_credits"
    assert error.extra == {"credits_requested": "6.00", "credits_available": "5.00"}
    assert len(entries(database, account.id)) == len(ledger_before) == 3
    assert remaining(database, first, second) == [D("3.00"), D("2.00")]
    assert balance(database, account.id) == D("15.00")


def test_a_booking_needing_more_grants_than_the_first_read_draws_on_all_of_them_in_order(database):
    # given 40 grants of 1 credit, each expiring a day after the one before (a booking reads
    # the first FIRST_READ grants, and all of them only when those do not cover it)
    assert FIRST_READ < 40
    account = factories.account(database)
    grants = [give(database, account.id, "1", expires_at=T0 + DAY * (n + 1)) for n in range(40)]

    # when 30.50 credits are used, then the 31 soonest-expiring grants are drawn on, in order
    _consumption, draws = use(database, account.id, "30.50", now=T0 + HOUR)
    assert draws == [(grant, D("1.00")) for grant in grants[:30]] + [(grants[30], D("0.50"))]

    # and asking for more than the 9.50 left is refused with the whole figure, not the first read's
    error = refusal(database, account.id, "9.51", now=T0 + HOUR)
    assert error.extra == {"credits_requested": "9.51", "credits_available": "9.50"}
    assert balance(database, account.id) == D("9.50")


def test_asking_for_exactly_the_available_credits_empties_the_account(database):
    account = factories.account(database)
    give(database, account.id, "3", expires_at=T0 + DAY)
    give(database, account.id, "2")

    _consumption_id, draws = use(database, account.id, "5", now=T0 + HOUR)

    assert sum(credits for _grant, credits in draws) == D("5.00")
    assert balance(database, account.id) == D("0")


# -- pending grants (SPEC 3, 7) -----------------------------------------------------------------


def test_credits_not_yet_valid_are_pending_and_cannot_be_consumed_before_valid_from(database):
    # given 1 credit valid now and 10 valid from T0 + 2 days, both never expiring
    account = factories.account(database)
    valid_now = give(database, account.id, "1")
    pending = give(database, account.id, "10", valid_from=T0 + 2 * DAY)
    one_second_before = T0 + 2 * DAY - timedelta(seconds=1)

    # then before valid_from only the 1 credit is available
    error = refusal(database, account.id, "2", now=one_second_before)
    assert error.extra == {"credits_requested": "2.00", "credits_available": "1.00"}
    before = summary(database, account.id, one_second_before)
    assert (before.total.granted, before.total.remaining) == (D("1.00"), D("1.00"))
    assert before.pending == [(pending, D("10.00"), T0 + 2 * DAY)]
    assert before.expiring == []

    # and from valid_from on (inclusive) the pending credits are drawn after the earlier-valid ones
    _consumption_id, draws = use(database, account.id, "2", now=T0 + 2 * DAY)
    assert draws == [(valid_now, D("1.00")), (pending, D("1.00"))]
    after = summary(database, account.id, T0 + 2 * DAY)
    assert (after.total.granted, after.total.remaining, after.total.used) == (D("11.00"), D("9.00"), D("2.00"))
    assert after.pending == []


# -- expiry (SPEC 5) ----------------------------------------------------------------------------


def test_credits_expiring_at_t_cannot_be_used_at_t_even_before_the_sweep_runs(database):
    # given 10 credits expiring at T and 2 that never expire
    account = factories.account(database)
    expiry = T0 + 10 * DAY
    expiring = give(database, account.id, "10", expires_at=expiry)
    never = give(database, account.id, "2")

    # one minute before T the expiring credits are still drawn first
    _consumption_id, draws = use(database, account.id, "1", now=expiry - timedelta(minutes=1))
    assert draws == [(expiring, D("1.00"))]

    # at T, with no expire entry written yet, they are gone
    assert [entry[0] for entry in entries(database, account.id)] == ["grant", "grant", "consume"]
    assert remaining(database, expiring) == [D("9.00")]
    error = refusal(database, account.id, "3", now=expiry)
    assert error.extra == {"credits_requested": "3.00", "credits_available": "2.00"}
    at_expiry = summary(database, account.id, expiry)
    assert (at_expiry.total.granted, at_expiry.total.remaining, at_expiry.total.used) == (D("2.00"), D("2.00"), D("0"))

    _consumption_id, draws = use(database, account.id, "2", now=expiry)
    assert draws == [(never, D("2.00"))]


def test_the_sweep_writes_one_expire_entry_per_grant_at_its_expiry_instant_and_only_once(database):
    # given three expiring grants: 4 of 10 used, 5 untouched, 3 used up
    account = factories.account(database)
    first_expiry, second_expiry = T0 + 10 * DAY, T0 + 11 * DAY
    used_up = give(database, account.id, "3", expires_at=T0 + 5 * DAY)
    partly_used = give(database, account.id, "10", expires_at=first_expiry)
    untouched = give(database, account.id, "5", expires_at=second_expiry)
    use(database, account.id, "7", now=T0 + HOUR)  # 3 from used_up, 4 from partly_used

    # when the sweep runs after both expiries
    expired = sweep_expiries(database, now=T0 + 12 * DAY)

    # then one entry per grant with credits left, for what remained, effective at the expiry instant
    assert expired == 2
    assert entries(database, account.id)[-2:] == [
        ("expire", partly_used, D("-6.00"), D("5.00"), first_expiry),
        ("expire", untouched, D("-5.00"), D("0"), second_expiry),
    ]
    rows = [grant_row(database, grant) for grant in (used_up, partly_used, untouched)]
    assert [(row.remaining, row.expired, row.used) for row in rows] == [
        (D("0"), D("0"), D("3.00")),
        (D("0"), D("6.00"), D("4.00")),
        (D("0"), D("5.00"), D("0")),
    ]
    assert balance(database, account.id) == D("0")

    # and a second sweep writes nothing
    ledger_before = entries(database, account.id)
    assert sweep_expiries(database, now=T0 + 13 * DAY) == 0
    assert entries(database, account.id) == ledger_before


def test_the_sweep_leaves_credits_that_have_not_expired_yet(database):
    account = factories.account(database)
    expiry = T0 + 10 * DAY
    grant = give(database, account.id, "10", expires_at=expiry)

    assert sweep_expiries(database, now=expiry - timedelta(seconds=1)) == 0

    assert remaining(database, grant) == [D("10.00")]
    assert [entry[0] for entry in entries(database, account.id)] == ["grant"]


# -- reversal (SPEC 4) --------------------------------------------------------------------------


def test_reversing_a_consumption_returns_the_credits_to_the_very_grants_they_came_from(database):
    # given 5 credits drawn on two grants
    account = factories.account(database)
    first = give(database, account.id, "2", expires_at=T0 + 5 * DAY)
    second = give(database, account.id, "10", expires_at=T0 + 10 * DAY)
    consumption_id, draws = use(database, account.id, "5", now=T0 + HOUR)
    assert draws == [(first, D("2.00")), (second, D("3.00"))]
    # and a newer grant that a fresh draw would take first
    newer_soonest = give(database, account.id, "5", expires_at=T0 + DAY, at=T0 + 2 * HOUR)

    # when the consumption is reversed
    reversed_consumption = reverse(database, consumption_id, now=T0 + 3 * HOUR)

    # then each grant gets back exactly what was drawn from it
    assert reversed_consumption.reversed_at == T0 + 3 * HOUR
    assert remaining(database, first, second, newer_soonest) == [D("2.00"), D("10.00"), D("5.00")]
    assert [grant_row(database, grant).used for grant in (first, second)] == [D("0"), D("0")]
    assert entries(database, account.id)[-2:] == [
        ("consume_reversal", first, D("2.00"), D("14.00"), T0 + 3 * HOUR),
        ("consume_reversal", second, D("3.00"), D("17.00"), T0 + 3 * HOUR),
    ]

    # and reversing it again changes nothing
    ledger_before = entries(database, account.id)
    again = reverse(database, consumption_id, now=T0 + 4 * HOUR)
    assert again.reversed_at == T0 + 3 * HOUR
    assert entries(database, account.id) == ledger_before
    assert remaining(database, first, second, newer_soonest) == [D("2.00"), D("10.00"), D("5.00")]
    assert balance(database, account.id) == D("17.00")


def test_credits_returned_to_an_expired_grant_expire_at_once(database):
    # given 4 of 10 credits used the day before the grant expires at T
    account = factories.account(database)
    expiry = T0 + 10 * DAY
    grant = give(database, account.id, "10", expires_at=expiry)
    consumption_id, _draws = use(database, account.id, "4", now=expiry - DAY)

    # when the consumption is reversed an hour after T (the sweep never ran)
    reverse(database, consumption_id, now=expiry + HOUR)

    # then the due breakage is recorded, the 4 credits come back, and expire at once
    assert entries(database, account.id) == [
        ("grant", grant, D("10.00"), D("10.00"), T0),
        ("consume", grant, D("-4.00"), D("6.00"), expiry - DAY),
        ("expire", grant, D("-6.00"), D("0"), expiry),
        ("consume_reversal", grant, D("4.00"), D("4.00"), expiry + HOUR),
        ("expire", grant, D("-4.00"), D("0"), expiry + HOUR),
    ]
    row = grant_row(database, grant)
    assert (row.remaining, row.used, row.expired) == (D("0"), D("0"), D("10.00"))
    assert balance(database, account.id) == D("0")


def test_credits_returned_after_the_sweep_expired_the_grant_expire_at_once(database):
    account = factories.account(database)
    expiry = T0 + 10 * DAY
    grant = give(database, account.id, "10", expires_at=expiry)
    consumption_id, _draws = use(database, account.id, "4", now=T0 + HOUR)
    sweep_expiries(database, now=expiry)
    assert grant_row(database, grant).expired == D("6.00")

    reverse(database, consumption_id, now=expiry + DAY)

    assert entries(database, account.id)[-2:] == [
        ("consume_reversal", grant, D("4.00"), D("4.00"), expiry + DAY),
        ("expire", grant, D("-4.00"), D("0"), expiry + DAY),
    ]
    row = grant_row(database, grant)
    assert (row.remaining, row.used, row.expired) == (D("0"), D("0"), D("10.00"))


# -- balance_after and the summary (SPEC 7) ---------------------------------------------------


def test_balance_after_is_the_running_total_in_recording_order_and_ends_at_remaining_plus_pending(database):
    account = factories.account(database)
    anytime = give(database, account.id, "10")
    pending = give(database, account.id, "5", valid_from=T0 + 3 * DAY)
    short_lived = give(database, account.id, "4", expires_at=T0 + DAY)

    first, draws = use(database, account.id, "6", now=T0 + HOUR)
    assert draws == [(short_lived, D("4.00")), (anytime, D("2.00"))]
    reverse(database, first, now=T0 + 2 * HOUR)
    _second, draws = use(database, account.id, "3", now=T0 + 3 * HOUR)
    assert draws == [(short_lived, D("3.00"))]
    sweep_expiries(database, now=T0 + 2 * DAY)  # the last credit of short_lived expires

    # between the sweep and valid_from: 10 remaining + 5 pending
    between = summary(database, account.id, T0 + 2 * DAY)
    assert (between.total.remaining, between.pending) == (D("10.00"), [(pending, D("5.00"), T0 + 3 * DAY)])
    assert balance(database, account.id) == D("15.00")

    _third, draws = use(database, account.id, "12", now=T0 + 4 * DAY)
    assert draws == [(anytime, D("10.00")), (pending, D("2.00"))]

    ledger = entries(database, account.id)
    assert [(kind, credits, balance_after) for kind, _grant, credits, balance_after, _at in ledger] == [
        ("grant", D("10"), D("10")),
        ("grant", D("5"), D("15")),
        ("grant", D("4"), D("19")),
        ("consume", D("-4"), D("15")),
        ("consume", D("-2"), D("13")),
        ("consume_reversal", D("4"), D("17")),
        ("consume_reversal", D("2"), D("19")),
        ("consume", D("-3"), D("16")),
        ("expire", D("-1"), D("15")),
        ("consume", D("-10"), D("5")),
        ("consume", D("-2"), D("3")),
    ]
    final = summary(database, account.id, T0 + 4 * DAY)
    assert (final.total.granted, final.total.remaining, final.total.used, final.total.debt) == (D("15.00"), D("3.00"), D("12.00"), D("0"))
    assert final.pending == []
    assert ledger[-1][3] == final.total.remaining + sum(credits for _id, credits, _at in final.pending) - final.total.debt
    assert ledger[-1][3] == balance(database, account.id) == D("3.00")


def test_a_consumption_booked_for_a_later_moment_leaves_the_summary_equal_to_the_balance(database):
    # given 10 credits, and a booking of 4 for an event two days ahead, recorded now
    account = factories.account(database)
    give(database, account.id, "10")
    now = T0 + DAY
    with database.write() as session:
        consume(session, account.id, credits=D("4"), occurred_at=now + 2 * DAY, now=now, actor="test")

    # then only 6 credits can still be used now ...
    error = refusal(database, account.id, "7", now=now)
    assert error.extra == {"credits_requested": "7.00", "credits_available": "6.00"}
    # ... and the summary, the cached balance and the ledger say the same
    result = summary(database, account.id, now)
    assert entries(database, account.id)[-1][3] == balance(database, account.id) == D("6.00")
    assert result.total.remaining + sum(credits for _id, credits, _at in result.pending) == D("6.00")


def test_a_booking_recorded_late_never_shows_negative_credits_before_it_was_recorded(database):
    # given 10 credits valid from T0 but granted (approved) only at T0 + 5 days
    account = factories.account(database)
    grant_id = give(database, account.id, "10", valid_from=T0, at=T0 + 5 * DAY)
    # when a booking of T0 + 1 day is recorded at T0 + 6 days
    with database.write() as session:
        consume(session, account.id, credits=D("4"), occurred_at=T0 + DAY, now=T0 + 6 * DAY, actor="test")

    # then before the grant existed the account held nothing, not -4
    before = summary(database, account.id, T0 + 2 * DAY)
    assert (before.total.granted, before.total.remaining, before.total.used) == (D("0"), D("0"), D("0"))
    # and once the booking is recorded the draw counts, in the summary and in the ledger alike
    after = summary(database, account.id, T0 + 6 * DAY)
    assert (after.total.granted, after.total.remaining, after.total.used) == (D("10.00"), D("6.00"), D("4.00"))
    assert after == ledger_summary(database, account.id, T0 + 6 * DAY)
    assert remaining(database, grant_id) == [D("6.00")]


def test_the_summary_at_a_past_moment_is_the_ledger_as_it_stood_then(database):
    # given 10 unrestricted credits at T0, 5 Cardiology credits granted at T0 + 6h,
    # 4 used at T0 + 1 day and 2 Cardiology credits used at T0 + 2 days
    account = factories.account(database)
    cardiology = factories.business_unit(database, account.id, "Cardiology").id
    give(database, account.id, "10", expires_at=T0 + 20 * DAY)
    give(database, account.id, "5", unit=cardiology, valid_from=T0 + 6 * HOUR, at=T0 + 6 * HOUR)
    use(database, account.id, "4", now=T0 + DAY)
    use(database, account.id, "2", now=T0 + 2 * DAY, unit=cardiology)

    # before the Cardiology grant and before any consumption
    early = summary(database, account.id, T0 + HOUR)
    assert early == ledger_summary(database, account.id, T0 + HOUR)
    assert (early.total.granted, early.total.remaining, early.total.used) == (D("10.00"), D("10.00"), D("0"))
    assert [(unit_id, figures.granted) for unit_id, _name, figures in early.business_units] == [(cardiology, D("0"))]

    # at the moment of the first consumption (inclusive)
    first = summary(database, account.id, T0 + DAY)
    assert first == ledger_summary(database, account.id, T0 + DAY)
    assert (first.total.granted, first.total.remaining, first.total.used) == (D("15.00"), D("11.00"), D("4.00"))
    assert (first.unrestricted.remaining, first.business_units[0][2].remaining) == (D("6.00"), D("5.00"))

    # and now
    now = summary(database, account.id, T0 + 3 * DAY)
    assert now == ledger_summary(database, account.id, T0 + 3 * DAY)
    assert (now.total.granted, now.total.remaining, now.total.used) == (D("15.00"), D("9.00"), D("6.00"))
    # the Cardiology consumption drew on the unrestricted grant first: it expires, Cardiology's never does
    assert (now.unrestricted.used, now.unrestricted.remaining) == (D("6.00"), D("4.00"))
    assert [(unit_id, name, figures.used, figures.remaining) for unit_id, name, figures in now.business_units] == [
        (cardiology, "Cardiology", D("0"), D("5.00")),
    ]
    assert now.expiring == [(D("4.00"), T0 + 20 * DAY)]


def test_the_summary_after_a_reversal_and_an_expiry_equals_the_ledger_fold(database):
    account = factories.account(database)
    give(database, account.id, "10", expires_at=T0 + 2 * DAY)
    give(database, account.id, "3")
    consumption_id, _draws = use(database, account.id, "5", now=T0 + HOUR)
    reverse(database, consumption_id, now=T0 + 2 * HOUR)
    use(database, account.id, "1", now=T0 + 3 * HOUR)
    sweep_expiries(database, now=T0 + 3 * DAY)

    for moment in (T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + 2 * DAY, T0 + 3 * DAY):
        assert summary(database, account.id, moment) == ledger_summary(database, account.id, moment), moment
    at_one_hour = summary(database, account.id, T0 + HOUR)
    assert (at_one_hour.total.remaining, at_one_hour.total.used) == (D("8.00"), D("5.00"))
    after_expiry = summary(database, account.id, T0 + 3 * DAY)
    assert (after_expiry.total.granted, after_expiry.total.remaining, after_expiry.total.used) == (D("3.00"), D("3.00"), D("0"))


def test_expiring_lists_remaining_credits_expiring_within_30_days_inclusive_one_item_per_instant(database):
    account = factories.account(database)
    used_up = give(database, account.id, "2", expires_at=T0 + 5 * DAY)
    give(database, account.id, "4", expires_at=T0 + 10 * DAY)
    give(database, account.id, "6", expires_at=T0 + 10 * DAY)
    give(database, account.id, "3", expires_at=T0 + 30 * DAY)
    give(database, account.id, "5", expires_at=T0 + 30 * DAY + timedelta(seconds=1))
    give(database, account.id, "7")
    _consumption_id, draws = use(database, account.id, "3", now=T0)
    assert draws[0] == (used_up, D("2.00"))  # and 1 from the first 10-day grant

    result = summary(database, account.id, T0)

    assert result.expiring == [(D("9.00"), T0 + 10 * DAY), (D("3.00"), T0 + 30 * DAY)]
    assert result == ledger_summary(database, account.id, T0)


# -- concurrency --------------------------------------------------------------------------------


def test_twenty_simultaneous_one_credit_consumptions_of_fifteen_credits_let_exactly_fifteen_through(database):
    # given 15 credits over three grants
    account = factories.account(database)
    grants = [
        give(database, account.id, "5", expires_at=T0 + DAY),
        give(database, account.id, "5", expires_at=T0 + 2 * DAY),
        give(database, account.id, "5"),
    ]
    now = T0 + HOUR
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    outcomes_lock = threading.Lock()

    def book(number: int) -> None:
        barrier.wait()
        try:
            with database.write() as session:
                consume(session, account.id, credits=D("1"), now=now, actor=f"booking-{number}")
            outcome = "consumed"
        except InsufficientCredits as error:
            outcome = f"refused {error.extra['credits_available']}"
        except Exception as error:  # noqa: BLE001 - any other failure is a finding
            outcome = f"failed {type(error).__name__}: {error}"
        with outcomes_lock:
            outcomes.append(outcome)

    # when 20 bookings of 1 credit arrive at once
    threads = [threading.Thread(target=book, args=(number,)) for number in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then exactly 15 succeed and 5 are refused with nothing available
    assert sorted(outcomes) == ["consumed"] * 15 + ["refused 0.00"] * 5
    assert remaining(database, *grants) == [D("0"), D("0"), D("0")]
    ledger = entries(database, account.id)
    consumes = [entry for entry in ledger if entry[0] == "consume"]
    assert len(consumes) == 15
    assert [entry[2] for entry in consumes] == [D("-1.00")] * 15
    assert [entry[3] for entry in consumes] == [D(str(left)) for left in range(14, -1, -1)]
    assert balance(database, account.id) == D("0")
    with database.read() as session:
        assert session.exec(select(func.count()).select_from(Consumption)).one() == 15


# -- through HTTP -------------------------------------------------------------------------------

NOW = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)


def _consumptions_url(account_id) -> str:
    return f"/api/v1/accounts/{account_id}/consumptions"


@pytest.fixture
def client(client):
    """The ``client`` with the routers' parameters resolved before any test freezes time.

    FastAPI resolves the routes' annotations lazily, on the first request a router sees; under
    freezegun ``datetime`` is then ``FakeDatetime``, which FastAPI refuses as a parameter type.
    One unfrozen request per router settles them first."""
    client.get("/api/v1/accounts/0")
    client.get("/api/v1/consumptions/0")
    return client


def test_the_same_idempotency_key_and_body_returns_the_first_consumption_and_draws_once(database, client):
    account = factories.account(database)
    grant = give(database, account.id, "10", at=NOW, valid_from=NOW)
    bookings = client.as_role("bookings")

    with freeze_time(NOW):
        first = bookings.post(_consumptions_url(account.id), json={"credits": "3.00"}, headers={"Idempotency-Key": "booking-42"})
        repeat = bookings.post(_consumptions_url(account.id), json={"credits": "3.00"}, headers={"Idempotency-Key": "booking-42"})

    assert first.status_code == 201, first.text
    assert first.json()["credits"] == "3.00"
    assert first.json()["draws"] == [{"grant_id": str(grant), "credits": "3.00"}]
    assert repeat.status_code == 201
    assert repeat.json() == first.json()
    assert remaining(database, grant) == [D("7.00")]
    assert [entry[0] for entry in entries(database, account.id)] == ["grant", "consume"]


def test_the_same_idempotency_key_with_another_body_is_refused_and_writes_nothing(database, client):
    account = factories.account(database)
    grant = give(database, account.id, "10", at=NOW, valid_from=NOW)
    bookings = client.as_role("bookings")
    with freeze_time(NOW):
        first = bookings.post(_consumptions_url(account.id), json={"credits": "3.00"}, headers={"Idempotency-Key": "booking-42"})
    assert first.status_code == 201
    before = snapshot(database, account.id)

    with freeze_time(NOW + HOUR):
        other = bookings.post(_consumptions_url(account.id), json={"credits": "4.00"}, headers={"Idempotency-Key": "booking-42"})

    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["code"] == "idempotency_conflict"
    assert snapshot(database, account.id) == before
    assert remaining(database, grant) == [D("7.00")]


def test_an_idempotency_key_is_scoped_to_the_api_key(database, client):
    account = factories.account(database)
    grant = give(database, account.id, "10", at=NOW, valid_from=NOW)
    with freeze_time(NOW):
        from_bookings = client.as_role("bookings").post(
            _consumptions_url(account.id), json={"credits": "3.00"}, headers={"Idempotency-Key": "booking-42"}
        )
        from_billing = client.post(_consumptions_url(account.id), json={"credits": "3.00"}, headers={"Idempotency-Key": "booking-42"})

    assert (from_bookings.status_code, from_billing.status_code) == (201, 201)
    assert from_billing.json()["id"] != from_bookings.json()["id"]
    assert remaining(database, grant) == [D("4.00")]
    assert [entry[0] for entry in entries(database, account.id)] == ["grant", "consume", "consume"]


def test_reversing_a_consumption_over_http_answers_200_with_the_reversed_consumption(database, client):
    account = factories.account(database)
    grant = give(database, account.id, "10", at=NOW, valid_from=NOW)
    bookings = client.as_role("bookings")
    with freeze_time(NOW):
        created = bookings.post(_consumptions_url(account.id), json={"credits": "2.50"})
    consumption_id = created.json()["id"]

    with freeze_time(NOW + HOUR):
        reversed_ = bookings.post(f"/api/v1/consumptions/{consumption_id}/reverse")

    assert reversed_.status_code == 200, reversed_.text
    body = reversed_.json()
    assert (body["id"], body["credits"], body["status"]) == (consumption_id, "2.50", "reversed")
    assert body["draws"] == [{"grant_id": str(grant), "credits": "2.50"}]
    assert remaining(database, grant) == [D("10.00")]
    assert [entry[0] for entry in entries(database, account.id)] == ["grant", "consume", "consume_reversal"]


def test_bookings_may_not_ask_for_an_overdraft(database, client):
    account = factories.account(database)
    give(database, account.id, "1", at=NOW, valid_from=NOW)
    before = snapshot(database, account.id)

    with freeze_time(NOW):
        response = client.as_role("bookings").post(_consumptions_url(account.id), json={"credits": "5.00", "allow_overdraft": True})

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert snapshot(database, account.id) == before


def test_too_few_credits_over_http_is_409_insufficient_credits_with_both_amounts(database, client):
    account = factories.account(database)
    give(database, account.id, "1.50", at=NOW, valid_from=NOW)
    before = snapshot(database, account.id)

    with freeze_time(NOW):
        response = client.as_role("bookings").post(_consumptions_url(account.id), json={"credits": "2.00"})

    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["credits_requested"], body["credits_available"]) == ("insufficient_credits", "2.00", "1.50")
    assert snapshot(database, account.id) == before
