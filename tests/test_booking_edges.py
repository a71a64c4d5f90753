"""The booking path at its edges (SPEC 3, 4 and 5; issue 13, "First, pin the behaviour").

Each test states one boundary that mutation testing found no test holding: whose member a
booking may name, an overdraft short by less than one credit, a booking that needs more grants
than the first read, a booking ahead of a rollover cut at exactly the cut's moment, deductions,
transfers and holds of exactly the credits available (and 0.01 more), and credit-priced
quantities that round to zero. Through the use cases, on SQLite and PostgreSQL, with explicit
``now``; every figure is worked out by hand; after a refusal nothing has changed.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlmodel import select

from licensing.accounts.models import Account
from licensing.credits.adjustments import adjust, transfer
from licensing.credits.consumption import FIRST_READ, Draw, consume, reverse_consumption
from licensing.credits.expiry import record_due_expiries_of
from licensing.credits.holds import place_hold, release_hold, settle_hold_deadlines
from licensing.credits.models import Consumption, Hold
from licensing.errors import InsufficientCredits, UnknownReference, ValidationFailed
from licensing.events import Event
from licensing.money import MAX_LINE_CREDITS
from tests import factories
from tests.support.use_cases import bill_and_approve, grants_of, instant, ledger_of, summary_at

D = Decimal
ACTOR = "operator@space.test"
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
NOW = instant("2027-01-10 09:00")
JAN_1 = instant("2027-01-01 00:00")
FEB_1 = instant("2027-02-01 00:00")

# Tables a refused operation must leave exactly as they were (the outbox included).
WATCHED_TABLES = (
    "accounts", "business_units", "members", "grants", "ledger_entries", "consumptions", "holds", "adjustments", "transfers", "events",
)


# ---------------------------------------------------------------------------------------------
# Helpers: one use case per transaction, as the API does.
# ---------------------------------------------------------------------------------------------


def everything(database) -> dict[str, list[tuple]]:
    """Every row of the watched tables, in id order: what a refused operation must not change."""
    with database.read() as session:
        connection = session.connection()
        return {table: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))] for table in WATCHED_TABLES}


def add_credits(
    database, account_id: int, credits: str, now: datetime = NOW, *, lifetime: str | None = None, business_unit_id: int | None = None
) -> int:
    """A manual addition valid from ``now``; returns the id of its grant."""
    with database.write() as session:
        _adjustment, [(grant_id, _credits)] = adjust(
            session, account_id, kind="add", credits=D(credits), reason="Welcome bonus", lifetime=lifetime,
            business_unit_id=business_unit_id, now=now, actor=ACTOR,
        )
    return grant_id


def use(database, account_id: int, credits: str | None, now: datetime = NOW, **values) -> tuple[Consumption, list[Draw]]:
    with database.write() as session:
        return consume(session, account_id, credits=None if credits is None else D(credits), now=now, actor=ACTOR, **values)


def hold(database, account_id: int, credits: str | None, event_at: datetime, now: datetime = NOW, **values) -> tuple[Hold, list[Draw]]:
    with database.write() as session:
        placed, draws = place_hold(
            session, account_id, credits=None if credits is None else D(credits), event_at=event_at, now=now, actor=ACTOR, **values
        )
        session.expunge(placed)
    return placed, draws


def deduct(database, account_id: int, credits: str, now: datetime = NOW, **values):
    with database.write() as session:
        return adjust(session, account_id, kind="deduct", credits=D(credits), reason="Correction", now=now, actor=ACTOR, **values)


def move(database, from_account_id: int, to_account_id: int, credits: str, now: datetime = NOW, **values):
    with database.write() as session:
        return transfer(
            session, from_account_id=from_account_id, to_account_id=to_account_id, credits=D(credits), reason="Budget moved",
            now=now, actor=ACTOR, **values,
        )


def refused(database, error_class, action):
    """Run ``action`` expecting ``error_class``; prove that nothing was written; return the error."""
    before = everything(database)
    with pytest.raises(error_class) as refusal:
        action()
    assert everything(database) == before
    return refusal.value


def counters(database, account_id: int) -> list[tuple]:
    """Each grant's (remaining, used, held, removed, expired), in id order."""
    return [(g.remaining, g.used, g.held, g.removed, g.expired) for g in grants_of(database, account_id)]


def entries(database, account_id: int) -> list[tuple]:
    """The ledger as (kind, credits, balance_after, grant_id)."""
    return [(e.kind, e.credits, e.balance_after, e.grant_id) for e in ledger_of(database, account_id)]


def stored(database, account_id: int) -> tuple[Decimal, Decimal]:
    """The account's cached (balance, debt)."""
    with database.read() as session:
        account = session.get(Account, account_id)
        return account.balance, account.debt


def assert_cache_is_the_ledger(database, account_id: int, at: datetime) -> None:
    cached, folded = summary_at(database, account_id, at)
    assert cached == folded
    pending = sum((credits for _grant, credits, _valid_from in cached.pending), D(0))
    expected = cached.total.remaining + pending - cached.total.debt
    assert ledger_of(database, account_id)[-1].balance_after == stored(database, account_id)[0] == expected


# ---------------------------------------------------------------------------------------------
# Members
# ---------------------------------------------------------------------------------------------


def test_a_booking_for_a_member_of_the_account_records_that_member(database):
    account = factories.account(database)
    ada = factories.member(database, account.id, "Ada Lovelace")
    grant = add_credits(database, account.id, "10")

    consumption, draws = use(database, account.id, "2", member_id=ada.id)

    assert (consumption.member_id, consumption.credits, draws) == (ada.id, D("2.00"), [Draw(grant, D("2.00"))])
    with database.read() as session:
        assert session.get(Consumption, consumption.id).member_id == ada.id


def test_a_hold_for_a_member_of_the_account_records_that_member(database):
    account = factories.account(database)
    ada = factories.member(database, account.id, "Ada Lovelace")
    grant = add_credits(database, account.id, "10")

    placed, draws = hold(database, account.id, "3", event_at=NOW + DAY, member_id=ada.id)

    assert (placed.member_id, placed.credits, draws) == (ada.id, D("3.00"), [Draw(grant, D("3.00"))])


def test_a_booking_for_a_member_of_another_account_is_an_unknown_member_id_and_writes_nothing(database):
    account = factories.account(database, name="Acme Ltd")
    other = factories.account(database, name="Globex Corp")
    stranger = factories.member(database, other.id, "Grace Hopper")
    grant = add_credits(database, account.id, "10")

    error = refused(database, UnknownReference, lambda: use(database, account.id, "2", member_id=stranger.id))

    assert error.code == "unknown_reference"
    assert error.detail == f"member {stranger.id} is not a member of account {account.id}"
    assert error.extra == {"field": "member_id"}
    assert counters(database, account.id) == [(D("10.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"))]
    _consumption, draws = use(database, account.id, "10")  # the 10 credits are all still there
    assert draws == [Draw(grant, D("10.00"))]


def test_a_hold_for_a_member_of_another_account_is_an_unknown_member_id_and_writes_nothing(database):
    account = factories.account(database, name="Acme Ltd")
    other = factories.account(database, name="Globex Corp")
    stranger = factories.member(database, other.id, "Grace Hopper")
    add_credits(database, account.id, "10")

    error = refused(database, UnknownReference, lambda: hold(database, account.id, "2", event_at=NOW + DAY, member_id=stranger.id))

    assert (error.code, error.extra) == ("unknown_reference", {"field": "member_id"})


def test_a_booking_for_a_member_that_does_not_exist_is_an_unknown_member_id(database):
    account = factories.account(database)
    add_credits(database, account.id, "10")

    error = refused(database, UnknownReference, lambda: use(database, account.id, "2", member_id=987654))

    assert (error.code, error.detail, error.extra) == ("unknown_reference", "member_id 987654 does not exist", {"field": "member_id"})


# ---------------------------------------------------------------------------------------------
# Overdraft below one credit, and bookings below one credit
# ---------------------------------------------------------------------------------------------


def test_an_overdraft_short_by_half_a_credit_records_a_debt_of_0_50_that_the_next_grant_settles(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "10")

    consumption, draws = use(database, account.id, "10.50", NOW + SECOND, allow_overdraft=True)

    assert (consumption.credits, consumption.debt, draws) == (D("10.50"), D("0.50"), [Draw(grant, D("10.00"))])
    assert entries(database, account.id) == [
        ("adjust_add", D("10.00"), D("10.00"), grant),
        ("consume", D("-10.00"), D("0.00"), grant),
        ("debt", D("-0.50"), D("-0.50"), None),
    ]
    assert stored(database, account.id) == (D("-0.50"), D("0.50"))
    summary, _folded = summary_at(database, account.id, NOW + SECOND)
    assert (summary.total.used, summary.total.remaining, summary.total.debt, summary.unrestricted.debt) == (
        D("10.00"), D("0.00"), D("0.50"), D("0.50")
    )
    assert_cache_is_the_ledger(database, account.id, NOW + SECOND)

    # The next credit settles the half credit first: half a credit is left.
    settling = add_credits(database, account.id, "1", NOW + 2 * SECOND)
    assert entries(database, account.id)[-2:] == [
        ("adjust_add", D("1.00"), D("0.50"), settling),
        ("debt_settlement", D("-0.50"), D("0.50"), settling),
    ]
    assert stored(database, account.id) == (D("0.50"), D("0.00"))
    assert_cache_is_the_ledger(database, account.id, NOW + 2 * SECOND)


def test_an_overdraft_in_a_business_unit_short_by_half_a_credit_is_that_units_debt_of_0_50(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    grant = add_credits(database, account.id, "2", business_unit_id=cardiology.id)

    consumption, draws = use(database, account.id, "2.50", NOW + SECOND, business_unit_id=cardiology.id, allow_overdraft=True)

    assert (consumption.debt, draws) == (D("0.50"), [Draw(grant, D("2.00"))])
    summary, _folded = summary_at(database, account.id, NOW + SECOND)
    assert [(unit_id, figures.debt) for unit_id, _name, figures in summary.business_units] == [(cardiology.id, D("0.50"))]
    assert (summary.total.debt, summary.unrestricted.debt) == (D("0.50"), D("0.00"))
    assert_cache_is_the_ledger(database, account.id, NOW + SECOND)


def test_an_overdraft_allowed_but_not_needed_records_no_debt(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "10")

    consumption, draws = use(database, account.id, "10", NOW + SECOND, allow_overdraft=True)

    assert (consumption.debt, draws) == (D("0.00"), [Draw(grant, D("10.00"))])
    assert entries(database, account.id) == [("adjust_add", D("10.00"), D("10.00"), grant), ("consume", D("-10.00"), D("0.00"), grant)]
    assert stored(database, account.id) == (D("0.00"), D("0.00"))


def test_a_booking_of_half_a_credit_draws_half_a_credit(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "1")

    consumption, draws = use(database, account.id, "0.50", NOW + SECOND)

    assert (consumption.credits, draws) == (D("0.50"), [Draw(grant, D("0.50"))])
    assert counters(database, account.id) == [(D("0.50"), D("0.50"), D("0.00"), D("0.00"), D("0.00"))]


def test_a_booking_of_zero_credits_is_refused_on_credits_and_one_of_0_01_is_not(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "1")

    error = refused(database, ValidationFailed, lambda: use(database, account.id, "0"))
    assert error.extra["errors"] == [{"field": "credits", "message": "credits must be greater than zero"}]
    error = refused(database, ValidationFailed, lambda: hold(database, account.id, "0", event_at=NOW + DAY))
    assert error.extra["errors"] == [{"field": "credits", "message": "credits must be greater than zero"}]

    _consumption, draws = use(database, account.id, "0.01")
    assert draws == [Draw(grant, D("0.01"))]


# ---------------------------------------------------------------------------------------------
# More grants than the first read
# ---------------------------------------------------------------------------------------------


def five_grants_of_one_credit(database, account_id: int) -> list[int]:
    """5 grants of 1 credit, the n-th expiring n days after NOW: one more than a booking reads first."""
    assert FIRST_READ == 4
    return [add_credits(database, account_id, "1", lifetime=f"P{n + 1}D") for n in range(FIRST_READ + 1)]


def test_a_booking_that_needs_the_fifth_grant_reads_past_the_first_four(database):
    account = factories.account(database)
    grants = five_grants_of_one_credit(database, account.id)

    _consumption, draws = use(database, account.id, "4.50", NOW + SECOND)

    assert draws == [Draw(grant, D("1.00")) for grant in grants[:4]] + [Draw(grants[4], D("0.50"))]
    assert stored(database, account.id) == (D("0.50"), D("0.00"))


def test_a_booking_of_all_five_credits_draws_on_all_five_grants_and_one_more_hundredth_is_refused(database):
    account = factories.account(database)
    grants = five_grants_of_one_credit(database, account.id)

    error = refused(database, InsufficientCredits, lambda: use(database, account.id, "5.01", NOW + SECOND))
    assert error.extra == {"credits_requested": "5.01", "credits_available": "5.00"}

    _consumption, draws = use(database, account.id, "5", NOW + SECOND)
    assert draws == [Draw(grant, D("1.00")) for grant in grants]
    assert stored(database, account.id) == (D("0.00"), D("0.00"))


def test_an_overdraft_past_five_grants_draws_all_of_them_and_owes_only_the_rest(database):
    account = factories.account(database)
    grants = five_grants_of_one_credit(database, account.id)

    consumption, draws = use(database, account.id, "5.25", NOW + SECOND, allow_overdraft=True)

    assert draws == [Draw(grant, D("1.00")) for grant in grants]
    assert consumption.debt == D("0.25")
    assert stored(database, account.id) == (D("-0.25"), D("0.25"))


def test_a_booking_covered_by_exactly_the_first_four_grants_leaves_the_fifth(database):
    account = factories.account(database)
    grants = five_grants_of_one_credit(database, account.id)

    _consumption, draws = use(database, account.id, "4", NOW + SECOND)

    assert draws == [Draw(grant, D("1.00")) for grant in grants[:4]]
    assert counters(database, account.id)[4] == (D("1.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"))


# ---------------------------------------------------------------------------------------------
# A booking ahead of a pending rollover cut
# ---------------------------------------------------------------------------------------------


def january_used_and_february_pending(database, max_rollover: str = "5"):
    """10 credits a month, lifetime P3M, cap ``max_rollover``: January's grant approved on Jan 1,
    February's approved on Jan 20 (pending until Feb 1, when its cap cuts January's)."""
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P3M")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 12, 31), max_rollover=D(max_rollover))
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=JAN_1)
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-01-20 09:00"))
    january, february = (grant.id for grant in grants_of(database, account.id))
    return account, january, february


def test_a_booking_made_in_january_for_exactly_the_cuts_moment_may_use_what_the_cut_leaves_and_no_more(database):
    account, january, february = january_used_and_february_pending(database)
    booked_on = instant("2027-01-25 10:00")

    # At Feb 1 00:00 the cut has happened: January keeps 5, February's 10 are valid.
    error = refused(database, InsufficientCredits, lambda: use(database, account.id, "15.01", booked_on, occurred_at=FEB_1))
    assert error.extra == {"credits_requested": "15.01", "credits_available": "15.00"}

    _consumption, draws = use(database, account.id, "15", booked_on, occurred_at=FEB_1)
    assert draws == [Draw(january, D("5.00")), Draw(february, D("10.00"))]
    # The cut, when it comes, finds January at the cap and takes nothing.
    assert counters(database, account.id) == [
        (D("5.00"), D("5.00"), D("0.00"), D("0.00"), D("0.00")),
        (D("0.00"), D("10.00"), D("0.00"), D("0.00"), D("0.00")),
    ]


def test_a_booking_made_in_january_for_one_second_before_the_cut_may_use_all_of_january(database):
    account, january, _february = january_used_and_february_pending(database)
    booked_on = instant("2027-01-25 10:00")

    # February's credits are not valid yet and January's are not cut yet: 10 available.
    error = refused(database, InsufficientCredits, lambda: use(database, account.id, "10.01", booked_on, occurred_at=FEB_1 - SECOND))
    assert error.extra == {"credits_requested": "10.01", "credits_available": "10.00"}

    _consumption, draws = use(database, account.id, "10", booked_on, occurred_at=FEB_1 - SECOND)
    assert draws == [Draw(january, D("10.00"))]


def test_a_hold_placed_in_january_for_exactly_the_cuts_moment_may_reserve_what_the_cut_leaves_and_no_more(database):
    account, january, february = january_used_and_february_pending(database)
    booked_on = instant("2027-01-25 10:00")

    error = refused(database, InsufficientCredits, lambda: hold(database, account.id, "15.01", event_at=FEB_1, now=booked_on))
    assert error.extra == {"credits_requested": "15.01", "credits_available": "15.00"}

    _placed, draws = hold(database, account.id, "15", event_at=FEB_1, now=booked_on)
    assert draws == [Draw(january, D("5.00")), Draw(february, D("10.00"))]


def test_a_booking_recorded_at_exactly_the_cuts_moment_records_the_cut_first(database):
    account, january, february = january_used_and_february_pending(database)

    error = refused(database, InsufficientCredits, lambda: use(database, account.id, "15.01", FEB_1))
    assert error.extra == {"credits_requested": "15.01", "credits_available": "15.00"}

    _consumption, draws = use(database, account.id, "15", FEB_1)
    assert draws == [Draw(january, D("5.00")), Draw(february, D("10.00"))]
    assert [(kind, credits, balance) for kind, credits, balance, _grant in entries(database, account.id)] == [
        ("grant", D("10.00"), D("10.00")),
        ("grant", D("10.00"), D("20.00")),
        ("rollover_cut", D("-5.00"), D("15.00")),
        ("consume", D("-5.00"), D("10.00")),
        ("consume", D("-10.00"), D("0.00")),
    ]
    assert_cache_is_the_ledger(database, account.id, FEB_1)


def test_a_booking_ahead_of_a_cut_to_zero_draws_nothing_from_the_grant_the_cut_empties(database):
    account, _january, february = january_used_and_february_pending(database, max_rollover="0")
    booked_on = instant("2027-01-25 10:00")

    error = refused(database, InsufficientCredits, lambda: use(database, account.id, "10.01", booked_on, occurred_at=FEB_1 + DAY))
    assert error.extra == {"credits_requested": "10.01", "credits_available": "10.00"}

    # No draw of 0.00 on January's grant: only February's credits are used.
    _consumption, draws = use(database, account.id, "10", booked_on, occurred_at=FEB_1 + DAY)
    assert draws == [Draw(february, D("10.00"))]
    assert [kind for kind, _credits, _balance, _grant in entries(database, account.id)] == ["grant", "grant", "consume"]


# ---------------------------------------------------------------------------------------------
# Deductions, transfers and holds of exactly the credits available
# ---------------------------------------------------------------------------------------------


def test_a_deduction_of_exactly_the_available_credits_succeeds_and_of_0_01_more_is_refused(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    soon = add_credits(database, account.id, "3", lifetime="P5D")
    never = add_credits(database, account.id, "4.25")
    add_credits(database, account.id, "50", business_unit_id=cardiology.id)  # not the pool's to deduct

    error = refused(database, InsufficientCredits, lambda: deduct(database, account.id, "7.26", NOW + SECOND))
    assert error.extra == {"credits_requested": "7.26", "credits_available": "7.25"}
    assert error.detail == (
        "7.26 credits asked for, 7.25 available in the account's unrestricted pool (no business unit); "
        "the account's other pools hold 50.00 more, which this may not use"
    )

    _deduction, touched = deduct(database, account.id, "7.25", NOW + SECOND)
    assert touched == [(soon, D("3.00")), (never, D("4.25"))]
    assert counters(database, account.id)[:2] == [
        (D("0.00"), D("3.00"), D("0.00"), D("0.00"), D("0.00")),
        (D("0.00"), D("4.25"), D("0.00"), D("0.00"), D("0.00")),
    ]
    assert stored(database, account.id) == (D("50.00"), D("0.00"))


def test_a_deduction_of_zero_credits_is_refused_and_one_of_0_01_is_not(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "1")

    error = refused(database, ValidationFailed, lambda: deduct(database, account.id, "0"))
    assert error.extra["errors"] == [{"field": "credits", "message": "credits must be greater than zero"}]

    _deduction, touched = deduct(database, account.id, "0.01")
    assert touched == [(grant, D("0.01"))]


def test_a_booking_at_exactly_a_grants_expiry_records_its_expiry_before_drawing_on_the_others(database):
    account = factories.account(database)
    expiring = add_credits(database, account.id, "5", lifetime="P1D")  # expires 2027-01-11 00:00, never swept
    never = add_credits(database, account.id, "2")
    expiry = instant("2027-01-11 00:00")

    _consumption, draws = use(database, account.id, "1.50", expiry)

    assert draws == [Draw(never, D("1.50"))]
    assert entries(database, account.id) == [
        ("adjust_add", D("5.00"), D("5.00"), expiring),
        ("adjust_add", D("2.00"), D("7.00"), never),
        ("expire", D("-5.00"), D("2.00"), expiring),
        ("consume", D("-1.50"), D("0.50"), never),
    ]
    assert_cache_is_the_ledger(database, account.id, expiry)


def test_a_deduction_at_exactly_a_grants_expiry_cannot_take_its_credits(database):
    account = factories.account(database)
    expiring = add_credits(database, account.id, "5", lifetime="P1D")  # expires 2027-01-11 00:00
    never = add_credits(database, account.id, "2")
    expiry = instant("2027-01-11 00:00")

    error = refused(database, InsufficientCredits, lambda: deduct(database, account.id, "2.01", expiry))
    assert error.extra == {"credits_requested": "2.01", "credits_available": "2.00"}

    _deduction, touched = deduct(database, account.id, "2", expiry)
    assert touched == [(never, D("2.00"))]
    assert ("expire", D("-5.00"), D("2.00"), expiring) in entries(database, account.id)


def test_a_transfer_of_exactly_a_units_credits_succeeds_and_of_0_01_more_is_refused(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    neurology = factories.business_unit(database, account.id, "Neurology")
    own = add_credits(database, account.id, "7", business_unit_id=cardiology.id, lifetime="P1M")
    add_credits(database, account.id, "5")  # unrestricted: a transfer out of Cardiology may not take these

    error = refused(
        database, InsufficientCredits,
        lambda: move(database, account.id, account.id, "7.01", from_business_unit_id=cardiology.id, to_business_unit_id=neurology.id),
    )
    assert error.extra == {"credits_requested": "7.01", "credits_available": "7.00"}
    assert error.detail == (
        "7.01 credits asked for, 7.00 available in business unit 'Cardiology'; "
        "the account's other pools hold 5.00 more, which this may not use"
    )

    _moved, moves = move(database, account.id, account.id, "7", from_business_unit_id=cardiology.id, to_business_unit_id=neurology.id)
    ((origin, new, credits),) = moves
    assert (origin, credits) == (own, D("7.00"))
    moved = {grant.id: grant for grant in grants_of(database, account.id)}[new]
    assert (moved.business_unit_id, moved.credits, moved.remaining, moved.expires_at) == (
        neurology.id, D("7.00"), D("7.00"), instant("2027-02-10 00:00")
    )
    assert stored(database, account.id) == (D("12.00"), D("0.00"))


def test_a_transfer_of_exactly_the_unrestricted_credits_to_another_account_succeeds_and_of_0_01_more_is_refused(database):
    source = factories.account(database, name="Acme Ltd")
    target = factories.account(database, name="Acme Subsidiary")
    pool = add_credits(database, source.id, "4")

    error = refused(database, InsufficientCredits, lambda: move(database, source.id, target.id, "4.01"))
    assert error.extra == {"credits_requested": "4.01", "credits_available": "4.00"}
    assert error.detail == "4.01 credits asked for, 4.00 available in the account's unrestricted pool (no business unit)"

    _moved, [(origin, new, credits)] = move(database, source.id, target.id, "4")
    assert (origin, credits) == (pool, D("4.00"))
    assert stored(database, source.id) == (D("0.00"), D("0.00"))
    assert stored(database, target.id) == (D("4.00"), D("0.00"))
    assert entries(database, target.id) == [("transfer_in", D("4.00"), D("4.00"), new)]


def test_a_transfer_into_an_account_records_the_targets_due_expiries_first(database):
    source = factories.account(database, name="Acme Ltd")
    target = factories.account(database, name="Acme Subsidiary")
    add_credits(database, source.id, "4")
    lapsed = add_credits(database, target.id, "3", lifetime="P1D")  # expires 2027-01-11 00:00, never swept
    expiry = instant("2027-01-11 00:00")

    _moved, [(_origin, new, _credits)] = move(database, source.id, target.id, "4", expiry)

    assert entries(database, target.id) == [
        ("adjust_add", D("3.00"), D("3.00"), lapsed),
        ("expire", D("-3.00"), D("0.00"), lapsed),
        ("transfer_in", D("4.00"), D("4.00"), new),
    ]
    assert_cache_is_the_ledger(database, target.id, expiry)


def test_a_transfer_of_zero_credits_is_refused_and_one_of_0_01_is_not(database):
    source = factories.account(database, name="Acme Ltd")
    target = factories.account(database, name="Acme Subsidiary")
    pool = add_credits(database, source.id, "4")

    error = refused(database, ValidationFailed, lambda: move(database, source.id, target.id, "0"))
    assert error.extra["errors"] == [{"field": "credits", "message": "credits must be greater than zero"}]

    _moved, [(origin, new, credits)] = move(database, source.id, target.id, "0.01")
    assert (origin, credits) == (pool, D("0.01"))
    assert entries(database, target.id) == [("transfer_in", D("0.01"), D("0.01"), new)]


def test_a_hold_of_exactly_the_credits_valid_at_the_event_succeeds_and_of_0_01_more_is_refused(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "6", lifetime="P10D")  # expires 2027-01-20 00:00
    event = instant("2027-01-19 23:59")

    error = refused(database, InsufficientCredits, lambda: hold(database, account.id, "6.01", event_at=event))
    assert error.extra == {"credits_requested": "6.01", "credits_available": "6.00"}
    # At the expiry instant the grant is no longer valid.
    error = refused(database, InsufficientCredits, lambda: hold(database, account.id, "0.01", event_at=instant("2027-01-20 00:00")))
    assert error.extra == {"credits_requested": "0.01", "credits_available": "0.00"}
    # ... nor held elsewhere in the account: the refusal names no other pool.
    assert error.detail == "0.01 credits asked for, 0.00 available in the account's unrestricted pool (no business unit)"

    _placed, draws = hold(database, account.id, "6", event_at=event)
    assert draws == [Draw(grant, D("6.00"))]


# ---------------------------------------------------------------------------------------------
# Holds: deadlines and releases at their exact moments
# ---------------------------------------------------------------------------------------------


def test_a_hold_whose_deadline_is_its_event_is_accepted_and_one_a_second_earlier_is_refused(database):
    account = factories.account(database)
    add_credits(database, account.id, "5")
    event = NOW + DAY

    error = refused(database, ValidationFailed, lambda: hold(database, account.id, "1", event_at=event, deadline=event - SECOND))
    assert error.extra["errors"] == [{"field": "deadline", "message": "deadline is before event_at"}]

    placed, _draws = hold(database, account.id, "1", event_at=event, deadline=event)
    assert (placed.status, placed.deadline) == ("open", event)


def test_a_hold_is_settled_at_exactly_its_deadline_and_not_a_second_before(database):
    account = factories.account(database)
    add_credits(database, account.id, "5")
    deadline = NOW + 2 * DAY
    placed, _draws = hold(database, account.id, "2", event_at=NOW + DAY, deadline=deadline)

    assert settle_hold_deadlines(database, now=deadline - SECOND) == 0
    assert settle_hold_deadlines(database, now=deadline) == 1

    with database.read() as session:
        settled = session.get(Hold, placed.id)
        assert (settled.status, settled.closed_at) == ("released", deadline)


def test_credits_released_at_exactly_their_grants_expiry_expire_at_once(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "5", lifetime="P1D")  # expires 2027-01-11 00:00
    expiry = instant("2027-01-11 00:00")
    placed, _draws = hold(database, account.id, "2", event_at=expiry - SECOND)

    with database.write() as session:
        release_hold(session, placed.id, now=expiry, actor=ACTOR)

    assert entries(database, account.id) == [
        ("adjust_add", D("5.00"), D("5.00"), grant),
        ("hold", D("-2.00"), D("3.00"), grant),
        ("expire", D("-3.00"), D("0.00"), grant),
        ("hold_release", D("2.00"), D("2.00"), grant),
        ("expire", D("-2.00"), D("0.00"), grant),
    ]
    assert counters(database, account.id) == [(D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("5.00"))]


def test_credits_returned_by_a_reversal_at_exactly_their_grants_expiry_expire_at_once(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "5", lifetime="P1D")  # expires 2027-01-11 00:00
    expiry = instant("2027-01-11 00:00")
    consumption, _draws = use(database, account.id, "2", NOW + SECOND)

    with database.write() as session:
        reverse_consumption(session, consumption.id, now=expiry, actor=ACTOR)

    assert entries(database, account.id) == [
        ("adjust_add", D("5.00"), D("5.00"), grant),
        ("consume", D("-2.00"), D("3.00"), grant),
        ("expire", D("-3.00"), D("0.00"), grant),
        ("consume_reversal", D("2.00"), D("2.00"), grant),
        ("expire", D("-2.00"), D("0.00"), grant),
    ]
    assert counters(database, account.id) == [(D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("5.00"))]


def test_reversing_an_overdraft_whose_debt_is_still_owed_in_full_cancels_it(database):
    account = factories.account(database)
    consumption, _draws = use(database, account.id, "0.50", NOW, allow_overdraft=True)

    with database.write() as session:
        reverse_consumption(session, consumption.id, now=NOW + SECOND, actor=ACTOR)

    assert entries(database, account.id) == [("debt", D("-0.50"), D("-0.50"), None), ("debt", D("0.50"), D("0.00"), None)]
    assert stored(database, account.id) == (D("0.00"), D("0.00"))


# ---------------------------------------------------------------------------------------------
# Credit-priced quantities
# ---------------------------------------------------------------------------------------------


def test_a_credit_priced_quantity_whose_credits_round_to_zero_is_refused_on_quantity(database):
    account = factories.account(database)
    add_credits(database, account.id, "5")
    price = factories.credit_price(database, name="Phone booth (per minute)", credits_per_unit="0.01")

    # 0.01 x 0.4 = 0.004 credits, which rounds half-up to 0.00
    error = refused(database, ValidationFailed, lambda: use(database, account.id, None, credit_price_id=price.id, quantity=D("0.4")))
    assert (error.code, error.extra["errors"]) == ("validation_error", [{"field": "quantity", "message": "the consumption comes to zero credits"}])
    error = refused(
        database, ValidationFailed, lambda: hold(database, account.id, None, event_at=NOW + DAY, credit_price_id=price.id, quantity=D("0.4"))
    )
    assert error.extra["errors"] == [{"field": "quantity", "message": "the consumption comes to zero credits"}]


def test_a_credit_priced_quantity_of_half_a_hundredth_rounds_up_to_0_01_credits(database):
    account = factories.account(database)
    grant = add_credits(database, account.id, "5")
    price = factories.credit_price(database, name="Phone booth (per minute)", credits_per_unit="0.01")

    consumption, draws = use(database, account.id, None, credit_price_id=price.id, quantity=D("0.5"))

    assert (consumption.credits, consumption.credit_price_id, consumption.quantity, draws) == (
        D("0.01"), price.id, D("0.5"), [Draw(grant, D("0.01"))]
    )


def test_a_credit_priced_quantity_of_exactly_the_line_maximum_is_weighed_against_the_balance_and_one_hundredth_more_is_refused(database):
    account = factories.account(database)
    add_credits(database, account.id, "5")
    price = factories.credit_price(database, name="Hot desk (per credit)", credits_per_unit="1")

    error = refused(database, InsufficientCredits, lambda: use(database, account.id, None, credit_price_id=price.id, quantity=MAX_LINE_CREDITS))
    assert error.extra == {"credits_requested": f"{MAX_LINE_CREDITS:.2f}", "credits_available": "5.00"}

    error = refused(
        database, ValidationFailed, lambda: use(database, account.id, None, credit_price_id=price.id, quantity=MAX_LINE_CREDITS + D("0.01"))
    )
    assert [item["field"] for item in error.extra["errors"]] == ["quantity"]


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_transfer_without_a_reason_is_refused(database, reason):
    source = factories.account(database, name="Acme Ltd")
    target = factories.account(database, name="Acme Subsidiary")
    add_credits(database, source.id, "4")

    def without_reason():
        with database.write() as session:
            transfer(session, from_account_id=source.id, to_account_id=target.id, credits=D("1"), reason=reason, now=NOW, actor=ACTOR)

    error = refused(database, ValidationFailed, without_reason)
    assert error.extra["errors"] == [{"field": "reason", "message": "a reason is required"}]


# Found by the mutation run over debt.py (docs/architecture.md): debt of exactly one credit, and a
# business unit's debt below one credit, each settled where it is owed.


def test_an_overdraft_short_by_exactly_one_credit_is_settled_by_the_next_grant(database):
    account = factories.account(database)
    add_credits(database, account.id, "2")
    use(database, account.id, "3", NOW + SECOND, allow_overdraft=True)
    assert stored(database, account.id) == (D("-1.00"), D("1.00"))

    settling = add_credits(database, account.id, "5", NOW + 2 * SECOND)

    assert entries(database, account.id)[-2:] == [
        ("adjust_add", D("5.00"), D("4.00"), settling), ("debt_settlement", D("-1.00"), D("4.00"), settling),
    ]
    assert stored(database, account.id) == (D("4.00"), D("0.00"))
    assert_cache_is_the_ledger(database, account.id, NOW + 2 * SECOND)


def test_half_a_credit_owed_by_a_business_unit_is_settled_by_that_units_grant_and_not_by_the_pool(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    add_credits(database, account.id, "2", business_unit_id=cardiology.id)
    use(database, account.id, "2.50", NOW + SECOND, business_unit_id=cardiology.id, allow_overdraft=True)

    pool = add_credits(database, account.id, "10", NOW + 2 * SECOND)
    assert entries(database, account.id)[-1] == ("adjust_add", D("10.00"), D("9.50"), pool)  # the pool settles nothing
    assert stored(database, account.id) == (D("9.50"), D("0.50"))

    unit_grant = add_credits(database, account.id, "1", NOW + 3 * SECOND, business_unit_id=cardiology.id)
    assert entries(database, account.id)[-1] == ("debt_settlement", D("-0.50"), D("10.50"), unit_grant)
    assert stored(database, account.id) == (D("10.50"), D("0.00"))


def test_the_credits_granted_event_names_each_grants_business_unit_or_none(database):
    """Found by the mutation run over grants.py: nothing read the event's business unit."""
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    in_unit = add_credits(database, account.id, "2", business_unit_id=cardiology.id)
    in_pool = add_credits(database, account.id, "3", NOW + SECOND)

    with database.read() as session:
        granted = [json.loads(data) for data in session.exec(select(Event.data).where(Event.type == "credits.granted").order_by(Event.id))]
    assert [(item["grant_id"], item["business_unit_id"], item["credits"]) for event in granted for item in event["grants"]] == [
        (str(in_unit), str(cardiology.id), "2.00"), (str(in_pool), None, "3.00"),
    ]


def test_expiries_due_on_several_accounts_are_recorded_together(database):
    """Found by the mutation run over expiry.py: an approval records the due expiries of every
    account of its batch at once (a billing run would otherwise fall back to one licence at a time)."""
    first, second = factories.account(database), factories.account(database, name="Other Ltd")
    first_grant = add_credits(database, first.id, "2", JAN_1, lifetime="P1M")
    second_grant = add_credits(database, second.id, "3", JAN_1, lifetime="P1M")

    with database.write() as session:
        accounts = {account.id: session.get(Account, account.id) for account in (first, second)}
        assert record_due_expiries_of(session, accounts, now=FEB_1 + DAY) == 2

    assert entries(database, first.id)[-1] == ("expire", D("-2.00"), D("0.00"), first_grant)
    assert entries(database, second.id)[-1] == ("expire", D("-3.00"), D("0.00"), second_grant)
