"""Rollover caps (SPEC 3), auto-renew (SPEC 2) and top-ups (SPEC 5), through the use cases and over HTTP.

Every expected value is worked out by hand from SPEC.md, in the default operator zone (UTC)
unless a test sets another: "valid from D" means 00:00 of D, "expires on D" means the credits
stop at 00:00 of D. The rollover example is the SPEC's own: 10 credits a month, lifetime P3M,
cap 5. January's grant is valid Jan 1 - Apr 1, February's Feb 1 - May 1, March's Mar 1 - Jun 1.
When February's grant becomes valid (Feb 1) January's 10 are cut to 5; when March's does
(Mar 1) the service's earlier grants hold 5 + 10 and are cut to 5, soonest-expiring first:
January's 5, then 5 of February's. After three unused months: 0 + 5 + 10 = 15, not 30.
2028 is a leap year; Paris leaves CET for CEST on 2027-03-28.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlmodel import select

from licensing.catalog.models import Product
from licensing.credits.consumption import Draw, consume
from licensing.credits.expiry import settle_expiries, sweep_expiries
from licensing.credits.holds import place_hold
from licensing.credits.models import Grant, LedgerEntry
from licensing.errors import InsufficientCredits
from licensing.events import Event
from licensing.invoicing.billing import run_billing
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.invoicing.top_ups import top_up
from licensing.licences.models import ContractService, Licence
from licensing.licences.renewal import renew_due_licences
from licensing.licences.services import terminate_licence, update_product
from tests import factories
from tests.support.use_cases import (
    ACTOR,
    D,
    approve_drafts,
    bill,
    bill_and_approve,
    grants_of,
    instant,
    invoices_with_lines,
    ledger_of,
    refused,
    snapshot,
    summary_at,
    use,
)

JAN_1 = instant("2027-01-01 00:00")
FEB_1 = instant("2027-02-01 00:00")
MAR_1 = instant("2027-03-01 00:00")
APR_1 = instant("2027-04-01 00:00")
MAY_1 = instant("2027-05-01 00:00")
JUN_1 = instant("2027-06-01 00:00")
MONTH_STARTS = [(date(2027, 1, 1), JAN_1), (date(2027, 2, 1), FEB_1), (date(2027, 3, 1), MAR_1)]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def capped_pack_licence(database, lifetime: str = "P3M", max_rollover: str | None = "5"):
    """A pack of 10 credits, a monthly service from 2027-01-01 to 2027-12-31 with the cap."""
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime=lifetime)
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    cap = None if max_rollover is None else D(max_rollover)
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 12, 31), max_rollover=cap)
    return account, licence


def bill_months_on_their_first_days(database, licence_id: int, months: int) -> None:
    for as_of, midnight in MONTH_STARTS[:months]:
        bill_and_approve(database, licence_id, as_of=as_of, now=midnight)


def entries(database, account_id: int, kind: str | None = None) -> list[tuple]:
    return [
        (entry.kind, entry.grant_id, entry.credits, entry.balance_after, entry.occurred_at)
        for entry in ledger_of(database, account_id)
        if kind is None or entry.kind == kind
    ]


def cuts(database, account_id: int) -> list[tuple]:
    """Each rollover cut: (grant cut, credits, effective at, the new grant that caused it)."""
    return [
        (entry.grant_id, entry.credits, entry.occurred_at, entry.source_type, entry.source_id, entry.actor)
        for entry in ledger_of(database, account_id)
        if entry.kind == "rollover_cut"
    ]


def totals(summary) -> tuple:
    figures = summary.total
    return (figures.granted, figures.remaining, figures.used, figures.held, figures.removed)


def assert_ledger_agrees_with_summary(database, account_id: int, at: datetime) -> None:
    """SPEC 7: the cached summary is the ledger's fold, and the last balance_after is the
    remaining credits plus the pending ones (no debt in these tests)."""
    cached, folded = summary_at(database, account_id, at)
    assert cached == folded
    pending = sum((credits for _grant_id, credits, _valid_from in cached.pending), D(0))
    assert ledger_of(database, account_id)[-1].balance_after == cached.total.remaining + pending


def bill_all(database, as_of: date, now: datetime) -> tuple[int, int]:
    """The billing run with ``--approve``: every invoice it creates is approved at ``now``."""
    result = run_billing(database, as_of=as_of, now=now, actor=ACTOR, approve_all=True)
    return result.invoices_created, result.invoices_approved


def renewals(database, licence_id: int) -> list[dict]:
    with database.read() as session:
        events = session.exec(select(Event).where(Event.type == "licence.renewed").order_by(Event.id)).all()
    return [data for data in (json.loads(event.data) for event in events) if data["licence_id"] == str(licence_id)]


def licence_row(database, licence_id: int) -> Licence:
    with database.read() as session:
        return session.get(Licence, licence_id)


def service_row(database, service_id: int) -> ContractService:
    with database.read() as session:
        return session.get(ContractService, service_id)


def written(database) -> dict[str, int]:
    """How many invoices, lines, grants, ledger entries and events exist: a refusal adds none."""
    with database.read() as session:
        return {
            model.__name__: session.exec(select(func.count()).select_from(model)).one()
            for model in (Invoice, InvoiceLine, Grant, LedgerEntry, Event)
        }


# ---------------------------------------------------------------------------------------------
# Rollover caps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("approvals", ["each_on_its_first_day", "all_three_in_january"])
def test_a_cap_of_five_leaves_fifteen_credits_after_three_unused_months_not_thirty(database, approvals):
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover="5")
    if approvals == "each_on_its_first_day":
        bill_months_on_their_first_days(database, licence.id, 3)
    else:
        assert bill(database, date(2027, 3, 1), instant("2027-01-10 09:00")) == (3, 0)
        assert len(approve_drafts(database, licence.id, instant("2027-01-10 09:00"))) == 3
    moment = instant("2027-03-15 12:00")

    # A read of the account's credits records the cuts due first (SPEC 7), as GET /credits does.
    settle_expiries(database, account.id, now=moment)

    january, february, march = grants_of(database, account.id)
    assert [(g.credits, g.remaining, g.removed, g.expired, g.valid_from, g.expires_at) for g in (january, february, march)] == [
        (D("10.00"), D("0.00"), D("10.00"), D("0.00"), JAN_1, APR_1),
        (D("10.00"), D("5.00"), D("5.00"), D("0.00"), FEB_1, MAY_1),
        (D("10.00"), D("10.00"), D("0.00"), D("0.00"), MAR_1, JUN_1),
    ]
    # Feb 1: 5 cut from January's grant; Mar 1: 5 from January's, then 5 from February's.
    assert cuts(database, account.id) == [
        (january.id, D("-5.00"), FEB_1, "grant", str(february.id), "system"),
        (january.id, D("-5.00"), MAR_1, "grant", str(march.id), "system"),
        (february.id, D("-5.00"), MAR_1, "grant", str(march.id), "system"),
    ]
    if approvals == "each_on_its_first_day":
        expected_balances = [("grant", 10, JAN_1), ("grant", 20, FEB_1), ("rollover_cut", 15, FEB_1),
                             ("grant", 25, MAR_1), ("rollover_cut", 20, MAR_1), ("rollover_cut", 15, MAR_1)]
    else:
        approved = instant("2027-01-10 09:00")
        expected_balances = [("grant", 10, approved), ("grant", 20, approved), ("grant", 30, approved),
                             ("rollover_cut", 25, FEB_1), ("rollover_cut", 20, MAR_1), ("rollover_cut", 15, MAR_1)]
    assert [(kind, balance, occurred_at) for kind, _grant, _credits, balance, occurred_at in entries(database, account.id)] == [
        (kind, D(balance), occurred_at) for kind, balance, occurred_at in expected_balances
    ]

    summary, folded = summary_at(database, account.id, moment)
    assert totals(summary) == (D("30.00"), D("15.00"), D("0.00"), D("0.00"), D("15.00"))
    assert summary.pending == []
    assert summary.expiring == []  # January's grant expires on Apr 1 with nothing left
    assert folded == summary
    assert_ledger_agrees_with_summary(database, account.id, moment)

    # As the ledger stood in mid-February, both ways of approving show 5 + 10.
    february_summary, february_folded = summary_at(database, account.id, instant("2027-02-15 12:00"))
    assert totals(february_summary) == (D("20.00"), D("15.00"), D("0.00"), D("0.00"), D("5.00"))
    assert february_folded == february_summary

    # The account holds 15: a consumption of 16 is refused and writes nothing.
    before = snapshot(database, account.id)
    assert refused(database, account.id, "16", moment).extra == {"credits_requested": "16.00", "credits_available": "15.00"}
    assert snapshot(database, account.id) == before


def test_the_cut_holds_from_february_1_although_no_sweep_has_run(database):
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover="5")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=JAN_1)
    # February's invoice is approved in January: its grant is pending until Feb 1.
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-01-20 09:00"))
    january, february = grants_of(database, account.id)
    assert (february.valid_from, february.remaining) == (FEB_1, D("10.00"))
    assert cuts(database, account.id) == []
    before = snapshot(database, account.id)
    moment = instant("2027-02-02 10:00")

    # No sweep has run, yet only 5 of January's credits and February's 10 are available.
    refusal = refused(database, account.id, "16", moment)

    assert refusal.code == "insufficient_credits"
    assert refusal.extra == {"credits_requested": "16.00", "credits_available": "15.00"}
    assert snapshot(database, account.id) == before

    # 15 can be used: the consumption records the cut first, then draws soonest-expiring first.
    assert use(database, account.id, "15", moment) == [Draw(january.id, D("5.00")), Draw(february.id, D("10.00"))]
    assert entries(database, account.id) == [
        ("grant", january.id, D("10.00"), D("10.00"), JAN_1),
        ("grant", february.id, D("10.00"), D("20.00"), instant("2027-01-20 09:00")),
        ("rollover_cut", january.id, D("-5.00"), D("15.00"), FEB_1),
        ("consume", january.id, D("-5.00"), D("10.00"), moment),
        ("consume", february.id, D("-10.00"), D("0.00"), moment),
    ]
    assert [(g.remaining, g.used, g.removed) for g in grants_of(database, account.id)] == [
        (D("0.00"), D("5.00"), D("5.00")), (D("0.00"), D("10.00"), D("0.00"))
    ]
    assert_ledger_agrees_with_summary(database, account.id, moment)


def test_a_booking_made_in_january_for_february_cannot_use_the_credits_the_february_cut_will_take(database):
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover="5")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=JAN_1)
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-01-20 09:00"))
    january, february = grants_of(database, account.id)
    before = snapshot(database, account.id)
    booked_on, event = instant("2027-01-25 10:00"), instant("2027-02-02 10:00")

    # On Feb 2 only 5 of January's credits will be left beside February's 10: 16 is refused now.
    with pytest.raises(InsufficientCredits) as refusal, database.write() as session:
        consume(session, account.id, credits=D("16"), occurred_at=event, now=booked_on, actor=ACTOR)
    assert refusal.value.extra == {"credits_requested": "16.00", "credits_available": "15.00"}
    assert snapshot(database, account.id) == before

    # 15 is accepted: 5 from January (what the cut will leave), 10 from February.
    with database.write() as session:
        _consumption, draws = consume(session, account.id, credits=D("15"), occurred_at=event, now=booked_on, actor=ACTOR)
    assert draws == [Draw(january.id, D("5.00")), Draw(february.id, D("10.00"))]
    # On Feb 1 the cut finds January at 5 = the cap: nothing more is cut, and nothing was drawn twice.
    assert sweep_expiries(database, now=instant("2027-02-02 11:00")) == 0
    assert cuts(database, account.id) == []
    assert [(g.remaining, g.used, g.removed) for g in grants_of(database, account.id)] == [
        (D("5.00"), D("5.00"), D("0.00")), (D("0.00"), D("10.00"), D("0.00"))
    ]
    assert_ledger_agrees_with_summary(database, account.id, instant("2027-02-02 11:00"))


def test_a_booking_in_january_for_a_january_moment_may_still_use_all_of_january(database):
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover="5")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=JAN_1)
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-01-20 09:00"))
    january, _february = grants_of(database, account.id)
    with database.write() as session:
        _consumption, draws = consume(
            session, account.id, credits=D("10"), occurred_at=instant("2027-01-31 18:00"), now=instant("2027-01-25 10:00"), actor=ACTOR
        )
    assert draws == [Draw(january.id, D("10.00"))]


def test_the_expiry_sweep_records_the_rollover_cuts_that_are_due(database):
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover="5")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=JAN_1)
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-01-20 09:00"))
    january, _february = grants_of(database, account.id)

    # Before Feb 1 nothing is due: the sweep records nothing.
    assert sweep_expiries(database, now=instant("2027-01-31 23:59")) == 0
    assert cuts(database, account.id) == []

    # On Feb 2 the sweep records January's cut, effective Feb 1 (it expires no grant).
    assert sweep_expiries(database, now=instant("2027-02-02 10:00")) == 0
    with database.read() as session:
        [cut] = session.exec(select(LedgerEntry).where(LedgerEntry.kind == "rollover_cut")).all()
    assert (cut.grant_id, cut.credits, cut.balance_after, cut.occurred_at, cut.recorded_at) == (
        january.id, D("-5.00"), D("15.00"), FEB_1, instant("2027-02-02 10:00")
    )
    assert [(g.remaining, g.removed) for g in grants_of(database, account.id)] == [(D("5.00"), D("5.00")), (D("10.00"), D("0.00"))]
    summary, folded = summary_at(database, account.id, instant("2027-02-02 10:00"))
    assert totals(summary) == (D("20.00"), D("15.00"), D("0.00"), D("0.00"), D("5.00"))
    assert folded == summary
    assert_ledger_agrees_with_summary(database, account.id, instant("2027-02-02 10:00"))

    # The cut is recorded once: a second sweep finds nothing due.
    assert sweep_expiries(database, now=instant("2027-02-03 10:00")) == 0
    assert len(cuts(database, account.id)) == 1


def test_a_cap_of_zero_on_a_two_month_pack_rolls_nothing_over(database):
    account, licence = capped_pack_licence(database, lifetime="P2M", max_rollover="0")
    bill_months_on_their_first_days(database, licence.id, 2)
    moment = instant("2027-02-15 12:00")
    settle_expiries(database, account.id, now=moment)

    january, february = grants_of(database, account.id)
    assert (january.expires_at, january.remaining, january.removed) == (MAR_1, D("0.00"), D("10.00"))
    assert (february.expires_at, february.remaining, february.removed) == (instant("2027-04-01 00:00"), D("10.00"), D("0.00"))
    assert cuts(database, account.id) == [(january.id, D("-10.00"), FEB_1, "grant", str(february.id), "system")]
    summary, folded = summary_at(database, account.id, moment)
    assert totals(summary) == (D("20.00"), D("10.00"), D("0.00"), D("0.00"), D("10.00"))
    assert folded == summary
    assert_ledger_agrees_with_summary(database, account.id, moment)

    before = snapshot(database, account.id)
    assert refused(database, account.id, "11", moment).extra == {"credits_requested": "11.00", "credits_available": "10.00"}
    assert snapshot(database, account.id) == before
    assert use(database, account.id, "10", moment) == [Draw(february.id, D("10.00"))]


def test_without_a_cap_nothing_is_cut(database):
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover=None)
    bill_months_on_their_first_days(database, licence.id, 3)
    moment = instant("2027-03-15 12:00")
    settle_expiries(database, account.id, now=moment)

    assert [(g.remaining, g.removed, g.rollover_cap, g.rollover_pending) for g in grants_of(database, account.id)] == [
        (D("10.00"), D("0.00"), None, False)
    ] * 3
    assert cuts(database, account.id) == []
    summary, folded = summary_at(database, account.id, moment)
    assert totals(summary) == (D("30.00"), D("30.00"), D("0.00"), D("0.00"), D("0.00"))
    assert folded == summary
    assert_ledger_agrees_with_summary(database, account.id, moment)


@pytest.mark.parametrize(
    ("max_rollover", "remaining", "removed"),
    [
        ("0", "10.00", "20.00"),  # Feb 1 cuts January's 10; Mar 1 cuts February's 10
        ("5", "15.00", "15.00"),  # the SPEC's example
        ("15", "25.00", "5.00"),  # Feb 1: 10 is within the cap; Mar 1: 20 are cut to 15, 5 of January's
        ("20", "30.00", "0.00"),  # Mar 1: 20 is within the cap
    ],
)
def test_three_unused_months_of_a_three_month_pack_keep_the_cap_plus_the_new_month(database, max_rollover, remaining, removed):
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover=max_rollover)
    bill_months_on_their_first_days(database, licence.id, 3)
    moment = instant("2027-03-15 12:00")
    settle_expiries(database, account.id, now=moment)

    summary, folded = summary_at(database, account.id, moment)
    assert totals(summary) == (D("30.00"), D(remaining), D("0.00"), D("0.00"), D(removed))
    assert folded == summary
    assert -sum((credits for _grant, credits, *_rest in cuts(database, account.id)), D(0)) == D(removed)
    assert grants_of(database, account.id)[-1].remaining == D("10.00")  # March's own grant is never cut
    assert_ledger_agrees_with_summary(database, account.id, moment)


def test_a_cut_takes_only_the_capped_services_own_credits(database):
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover="5")
    small_pack = factories.credit_pack(database, credits="4", lifetime="P3M", price="40.00")
    factories.service(database, licence.id, small_pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
    top_up_pack = factories.credit_pack(database, credits="50", lifetime="P12M", price="400.00")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=JAN_1)
    with database.write() as session:
        top_up(session, account.id, product_id=top_up_pack.id, approve=True, now=instant("2027-01-20 15:00"), actor=ACTOR)
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=FEB_1)
    capped_january, small_january, topped_up, capped_february, small_february = grants_of(database, account.id)
    moment = instant("2027-02-10 10:00")
    before = snapshot(database, account.id)

    # 5 of the capped January credits, 10 of February's, 4 + 4 uncapped and the 50 topped up: 73.
    assert refused(database, account.id, "74", moment).extra == {"credits_requested": "74.00", "credits_available": "73.00"}
    assert snapshot(database, account.id) == before

    settle_expiries(database, account.id, now=moment)
    assert cuts(database, account.id) == [(capped_january.id, D("-5.00"), FEB_1, "grant", str(capped_february.id), "system")]
    assert [(g.credits, g.remaining) for g in grants_of(database, account.id)] == [
        (D("10.00"), D("5.00")), (D("4.00"), D("4.00")), (D("50.00"), D("50.00")), (D("10.00"), D("10.00")), (D("4.00"), D("4.00"))
    ]
    assert (topped_up.contract_service_id, topped_up.rollover_cap) == (None, None)
    assert (small_january.rollover_cap, small_february.rollover_cap) == (None, None)
    assert_ledger_agrees_with_summary(database, account.id, moment)


# ---------------------------------------------------------------------------------------------
# Auto-renew
# ---------------------------------------------------------------------------------------------


def monthly_licence(database, **values):
    """A licence from 2027-01-01 to 2027-12-31 with a monthly pack of 10 credits (P1M) to its end."""
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31), **values)
    service = factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
    return account, licence, service


def test_an_auto_renewing_licence_keeps_granting_in_month_thirteen(database):
    account, licence, service = monthly_licence(database, auto_renew=True)
    short_pack = factories.credit_pack(database, credits="2", lifetime="P1M", price="20.00")
    short_service = factories.service(database, licence.id, short_pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 6, 30))
    assert bill_all(database, date(2027, 12, 1), instant("2027-12-01 00:00")) == (12, 12)

    # On its last day the licence is still in its term: nothing renews, nothing bills.
    assert bill_all(database, date(2027, 12, 31), instant("2027-12-31 00:00")) == (0, 0)
    assert licence_row(database, licence.id).end_date == date(2027, 12, 31)
    assert renewals(database, licence.id) == []

    # The run for 2028-01-01 needs January 2028: it renews the licence for a year, then bills it.
    assert bill_all(database, date(2028, 1, 1), instant("2028-01-01 00:00")) == (1, 1)

    renewed = licence_row(database, licence.id)
    assert (renewed.start_date, renewed.end_date, renewed.status) == (date(2027, 1, 1), date(2028, 12, 31), "active")
    assert service_row(database, service.id).to_date == date(2028, 12, 31)
    assert service_row(database, short_service.id).to_date == date(2027, 6, 30)  # it did not run to the end
    assert renewals(database, licence.id) == [{
        "licence_id": str(licence.id), "account_id": str(account.id), "previous_end_date": "2027-12-31",
        "start_date": "2028-01-01", "end_date": "2028-12-31", "term": "P12M", "actor": ACTOR,
    }]
    invoice, lines = invoices_with_lines(database, licence.id)[-1]
    assert (invoice.kind, invoice.period_start, invoice.period_end, invoice.status, invoice.number) == (
        "period", date(2028, 1, 1), date(2028, 1, 31), "approved", "INV-2028-000001"
    )
    assert [(line.contract_service_id, line.period_start, line.period_end, line.credits) for line in lines] == [
        (service.id, date(2028, 1, 1), date(2028, 1, 31), D("10.00"))
    ]
    month_thirteen = grants_of(database, account.id)[-1]
    assert (month_thirteen.invoice_line_id, month_thirteen.credits, month_thirteen.valid_from, month_thirteen.expires_at) == (
        lines[0].id, D("10.00"), instant("2028-01-01 00:00"), instant("2028-02-01 00:00")
    )

    # The run repeats: nothing renews twice, nothing bills twice.
    assert bill_all(database, date(2028, 1, 1), instant("2028-01-01 06:00")) == (0, 0)
    assert licence_row(database, licence.id).end_date == date(2028, 12, 31)
    assert len(renewals(database, licence.id)) == 1


def test_a_renewal_term_of_one_month_moves_the_end_one_month_at_a_time(database):
    _account, licence, service = monthly_licence(database, auto_renew=True, renewal_term="P1M")
    assert bill_all(database, date(2027, 12, 1), instant("2027-12-01 00:00")) == (12, 12)

    assert bill_all(database, date(2028, 1, 1), instant("2028-01-01 00:00")) == (1, 1)
    assert licence_row(database, licence.id).end_date == date(2028, 1, 31)
    assert service_row(database, service.id).to_date == date(2028, 1, 31)

    # Billing March 2028 needs two more terms: to Feb 29 (2028 is a leap year), then to Mar 31.
    assert bill_all(database, date(2028, 3, 1), instant("2028-03-01 00:00")) == (2, 2)
    assert licence_row(database, licence.id).end_date == date(2028, 3, 31)
    assert service_row(database, service.id).to_date == date(2028, 3, 31)
    assert [(e["previous_end_date"], e["start_date"], e["end_date"], e["term"]) for e in renewals(database, licence.id)] == [
        ("2027-12-31", "2028-01-01", "2028-01-31", "P1M"),
        ("2028-01-31", "2028-02-01", "2028-02-29", "P1M"),
        ("2028-02-29", "2028-03-01", "2028-03-31", "P1M"),
    ]
    assert [(invoice.period_start, invoice.period_end) for invoice, _lines in invoices_with_lines(database, licence.id)][-3:] == [
        (date(2028, 1, 1), date(2028, 1, 31)), (date(2028, 2, 1), date(2028, 2, 29)), (date(2028, 3, 1), date(2028, 3, 31)),
    ]


def test_a_licence_without_auto_renew_is_not_renewed_and_bills_nothing_in_2028(database):
    account, licence, service = monthly_licence(database)
    assert bill_all(database, date(2027, 12, 1), instant("2027-12-01 00:00")) == (12, 12)
    grants_before = grants_of(database, account.id)

    assert bill_all(database, date(2028, 1, 1), instant("2028-01-01 00:00")) == (0, 0)
    assert bill_all(database, date(2028, 6, 1), instant("2028-06-01 00:00")) == (0, 0)

    unchanged = licence_row(database, licence.id)
    assert (unchanged.end_date, unchanged.auto_renew) == (date(2027, 12, 31), False)
    assert service_row(database, service.id).to_date == date(2027, 12, 31)
    assert renewals(database, licence.id) == []
    assert invoices_with_lines(database, licence.id)[-1][0].period_start == date(2027, 12, 1)
    assert grants_of(database, account.id) == grants_before


def test_a_terminated_auto_renewing_licence_is_not_renewed(database):
    _account, licence, service = monthly_licence(database, auto_renew=True)
    assert bill_all(database, date(2027, 12, 1), instant("2027-12-01 00:00")) == (12, 12)
    with database.write() as session:
        terminate_licence(session, licence.id, effective_date=date(2027, 12, 31), at=instant("2027-12-15 10:00"), actor=ACTOR)

    assert bill_all(database, date(2028, 1, 1), instant("2028-01-01 00:00")) == (0, 0)
    assert renew_due_licences(database, today=date(2028, 1, 2), now=instant("2028-01-02 00:55")).renewed == 0

    unchanged = licence_row(database, licence.id)
    assert (unchanged.end_date, unchanged.status, unchanged.terminated_on) == (date(2027, 12, 31), "terminated", date(2027, 12, 31))
    assert service_row(database, service.id).to_date == date(2027, 12, 31)
    assert renewals(database, licence.id) == []
    assert len(invoices_with_lines(database, licence.id)) == 12


def test_the_renewal_job_renews_past_due_licences_and_ends_those_that_do_not_renew(database):
    renewing_account, renewing, renewing_service = monthly_licence(database, auto_renew=True)
    _account, ending, ending_service = monthly_licence(database)
    _account, terminated, _service = monthly_licence(database, auto_renew=True)
    with database.write() as session:
        terminate_licence(session, terminated.id, effective_date=date(2027, 6, 30), at=instant("2027-06-01 10:00"), actor=ACTOR)
    later_account = factories.account(database, name="Later Ltd")
    later = factories.licence(database, later_account.id, date(2027, 7, 1), date(2028, 6, 30), auto_renew=True)
    open_ended = factories.licence(database, later_account.id, date(2027, 1, 1), None, auto_renew=True)
    everything = (renewing, ending, terminated, later, open_ended)

    def state():
        return [(row.end_date, row.status) for row in (licence_row(database, licence.id) for licence in everything)]

    # On Dec 31 the licences are still in their term.
    assert renew_due_licences(database, today=date(2027, 12, 31), now=instant("2027-12-31 00:55")).renewed == 0
    assert state() == [
        (date(2027, 12, 31), "active"), (date(2027, 12, 31), "active"), (date(2027, 12, 31), "terminated"),
        (date(2028, 6, 30), "active"), (None, "active"),
    ]

    assert renew_due_licences(database, today=date(2028, 1, 1), now=instant("2028-01-01 00:55")).renewed == 1

    assert state() == [
        (date(2028, 12, 31), "active"), (date(2027, 12, 31), "ended"), (date(2027, 12, 31), "terminated"),
        (date(2028, 6, 30), "active"), (None, "active"),
    ]
    assert service_row(database, renewing_service.id).to_date == date(2028, 12, 31)
    assert service_row(database, ending_service.id).to_date == date(2027, 12, 31)
    assert renewals(database, renewing.id) == [{
        "licence_id": str(renewing.id), "account_id": str(renewing_account.id), "previous_end_date": "2027-12-31",
        "start_date": "2028-01-01", "end_date": "2028-12-31", "term": "P12M", "actor": "scheduler",
    }]
    assert [renewals(database, licence.id) for licence in (ending, terminated, later, open_ended)] == [[], [], [], []]

    # The job runs again the next day: nothing more to do.
    assert renew_due_licences(database, today=date(2028, 1, 2), now=instant("2028-01-02 00:55")).renewed == 0
    assert state()[:2] == [(date(2028, 12, 31), "active"), (date(2027, 12, 31), "ended")]
    assert len(renewals(database, renewing.id)) == 1

    # The next run bills 2027 and January 2028 of the renewed licence (13), 2027 of the ended one
    # (12), January to June of the terminated one (6); the other two have no services.
    assert bill_all(database, date(2028, 1, 1), instant("2028-01-02 01:00")) == (31, 31)
    assert invoices_with_lines(database, renewing.id)[-1][0].period_start == date(2028, 1, 1)
    assert invoices_with_lines(database, ending.id)[-1][0].period_start == date(2027, 12, 1)


# ---------------------------------------------------------------------------------------------
# Over HTTP
# ---------------------------------------------------------------------------------------------

PROBLEM = "application/problem+json"


@pytest.fixture
def api(client):
    """The billing client. FastAPI resolves a route's annotations on the first request; under
    freezegun ``datetime`` is a fake class that pydantic refuses, so one unfrozen request (a 404)
    resolves them all before any test freezes the clock."""
    assert client.get("/api/v1/no-such-resource").status_code == 404
    return client


def call(client, method: str, path: str, moment: str, **kwargs):
    with freeze_time(moment):
        return client.request(method, path, **kwargs)


def answered(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def problem_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code, body
    return body


def items(client, path: str, moment: str, **params) -> list[dict]:
    return answered(call(client, "GET", path, moment, params=params), 200)["items"]


def test_patching_auto_renew_then_running_the_billing_renews_and_bills_january_2028(api, database):
    account, licence, service = monthly_licence(database)
    run = call(api, "POST", "/api/v1/billing-runs", "2027-12-01T00:00:00Z", json={"as_of": "2027-12-01", "approve": True})
    assert answered(run, 200) == {"as_of": "2027-12-01", "invoices_created": 12, "invoices_approved": 12, "failed": []}
    # Without auto_renew, January 2028 is past the licence's end: nothing to bill.
    run = call(api, "POST", "/api/v1/billing-runs", "2028-01-01T00:00:00Z", json={"as_of": "2028-01-01", "approve": True})
    assert answered(run, 200) == {"as_of": "2028-01-01", "invoices_created": 0, "invoices_approved": 0, "failed": []}

    patched = answered(call(api, "PATCH", f"/api/v1/licences/{licence.id}", "2028-01-01T08:00:00Z", json={"auto_renew": True}), 200)
    assert (patched["auto_renew"], patched["end_date"], patched["renewal_term"]) == (True, "2027-12-31", None)
    run = call(api, "POST", "/api/v1/billing-runs", "2028-01-01T09:00:00Z", json={"as_of": "2028-01-01", "approve": True})

    assert answered(run, 200) == {"as_of": "2028-01-01", "invoices_created": 1, "invoices_approved": 1, "failed": []}
    renewed = answered(call(api, "GET", f"/api/v1/licences/{licence.id}", "2028-01-01T09:00:00Z"), 200)
    assert (renewed["end_date"], renewed["status"]) == ("2028-12-31", "active")
    [service_json] = items(api, f"/api/v1/licences/{licence.id}/services", "2028-01-01T09:00:00Z")
    assert (service_json["id"], service_json["to_date"]) == (str(service.id), "2028-12-31")
    january_2028 = items(api, "/api/v1/invoices", "2028-01-01T09:00:00Z", licence_id=str(licence.id))[-1]
    assert (january_2028["period_start"], january_2028["period_end"], january_2028["status"], january_2028["number"]) == (
        "2028-01-01", "2028-01-31", "approved", "INV-2028-000001"
    )
    [line] = january_2028["lines"]
    assert (line["credits"], line["credits_valid_from"], line["credits_expire_at"]) == (
        "10.00", "2028-01-01T00:00:00+00:00", "2028-02-01T00:00:00+00:00"
    )
    [event] = renewals(database, licence.id)
    assert (event["previous_end_date"], event["start_date"], event["end_date"], event["term"]) == (
        "2027-12-31", "2028-01-01", "2028-12-31", "P12M"
    )
    # January 2028's credits are usable.
    consumption = call(api, "POST", f"/api/v1/accounts/{account.id}/consumptions", "2028-01-10T10:00:00Z", json={"credits": "10"})
    assert answered(consumption, 201)["draws"] == [{"grant_id": line["grant_id"], "credits": "10.00"}]


def test_a_top_up_approved_at_once_issues_a_numbered_invoice_and_grants_the_credits(api, database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="100", lifetime="P12M", price="45.50", tax_rate="20")
    moment = "2027-03-15T10:30:00Z"

    response = call(api, "POST", f"/api/v1/accounts/{account.id}/top-ups", moment,
                    json={"product_id": str(pack.id), "quantity": "2", "approve": True})

    invoice = answered(response, 201)
    [line] = invoice["lines"]
    assert {key: invoice[key] for key in (
        "kind", "status", "number", "account_id", "licence_id", "issue_date", "due_date", "period_start", "period_end",
        "net", "tax", "gross", "currency", "approved_at",
    )} == {
        "kind": "top_up", "status": "approved", "number": "INV-2027-000001", "account_id": str(account.id), "licence_id": None,
        "issue_date": "2027-03-15", "due_date": "2027-03-29", "period_start": "2027-03-15", "period_end": "2027-03-15",
        "net": "91.00", "tax": "18.20", "gross": "109.20", "currency": "EUR", "approved_at": "2027-03-15T10:30:00+00:00",
    }
    assert {key: line[key] for key in (
        "description", "contract_service_id", "product_id", "period_start", "period_end", "quantity", "unit_price",
        "tax_rate", "net", "tax", "credits", "credits_valid_from", "credits_expire_at",
    )} == {
        "description": "100 credits (P12M)", "contract_service_id": None, "product_id": str(pack.id),
        "period_start": "2027-03-15", "period_end": "2027-03-15", "quantity": "2", "unit_price": "45.50", "tax_rate": "20.00",
        "net": "91.00", "tax": "18.20", "credits": "200.00",
        # One-off rule: valid from the approval moment, expiring at 00:00 of (that date + P12M).
        "credits_valid_from": "2027-03-15T10:30:00+00:00", "credits_expire_at": "2028-03-15T00:00:00+00:00",
    }
    [grant] = items(api, f"/api/v1/accounts/{account.id}/grants", moment)
    assert {key: grant[key] for key in (
        "id", "business_unit_id", "credits", "remaining", "valid_from", "expires_at", "value", "source"
    )} == {
        "id": line["grant_id"], "business_unit_id": None, "credits": "200.00", "remaining": "200.00",
        "valid_from": "2027-03-15T10:30:00+00:00", "expires_at": "2028-03-15T00:00:00+00:00", "value": "91.00",
        "source": {"type": "invoice_line", "id": line["id"]},
    }
    [entry] = items(api, f"/api/v1/accounts/{account.id}/ledger", moment)
    assert (entry["kind"], entry["credits"], entry["balance_after"], entry["grant_id"]) == ("grant", "200.00", "200.00", line["grant_id"])
    fetched = answered(call(api, "GET", f"/api/v1/invoices/{invoice['id']}", moment), 200)
    assert fetched == invoice

    # Usable from the approval moment, not before it.
    early = call(api, "POST", f"/api/v1/accounts/{account.id}/consumptions", moment,
                 json={"credits": "1", "occurred_at": "2027-03-15T10:29:00Z"})
    assert problem_of(early, 409, "insufficient_credits")["credits_available"] == "0.00"
    assert answered(call(api, "POST", f"/api/v1/accounts/{account.id}/consumptions", moment, json={"credits": "200"}), 201)["draws"] == [
        {"grant_id": line["grant_id"], "credits": "200.00"}
    ]


def test_a_top_up_in_paris_is_dated_and_expires_by_the_paris_calendar(api, database, set_operator_setting):
    set_operator_setting("timezone", "Europe/Paris")
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
    # 23:30 UTC on Mar 14 is 00:30 on Mar 15 in Paris (CET, UTC+1).
    moment = "2027-03-14T23:30:00Z"

    invoice = answered(call(api, "POST", f"/api/v1/accounts/{account.id}/top-ups", moment,
                            json={"product_id": str(pack.id), "quantity": "1", "approve": True}), 201)

    assert (invoice["issue_date"], invoice["due_date"], invoice["period_start"], invoice["number"]) == (
        "2027-03-15", "2027-03-29", "2027-03-15", "INV-2027-000001"
    )
    [line] = invoice["lines"]
    # Valid from the approval moment; expires at 00:00 of Apr 15 in Paris, by then CEST (UTC+2).
    assert (line["credits"], line["credits_valid_from"], line["credits_expire_at"]) == (
        "10.00", "2027-03-14T23:30:00+00:00", "2027-04-14T22:00:00+00:00"
    )
    [grant] = items(api, f"/api/v1/accounts/{account.id}/grants", moment)
    assert (grant["valid_from"], grant["expires_at"]) == ("2027-03-14T23:30:00+00:00", "2027-04-14T22:00:00+00:00")


def test_a_top_up_left_as_a_draft_grants_nothing_until_it_is_approved(api, database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="100", lifetime="P12M", price="45.50")
    body = {"product_id": str(pack.id), "quantity": "2", "approve": False}

    draft = answered(call(api, "POST", f"/api/v1/accounts/{account.id}/top-ups", "2027-03-15T10:30:00Z", json=body), 201)

    assert (draft["kind"], draft["status"], draft["number"], draft["approved_at"], draft["issue_date"]) == (
        "top_up", "draft", None, None, "2027-03-15"
    )
    [line] = draft["lines"]
    assert (line["credits"], line["net"], line["grant_id"], line["credits_valid_from"]) == ("200.00", "91.00", None, None)
    assert items(api, f"/api/v1/accounts/{account.id}/grants", "2027-03-16T10:00:00Z") == []
    assert items(api, f"/api/v1/accounts/{account.id}/ledger", "2027-03-16T10:00:00Z") == []
    refusal = call(api, "POST", f"/api/v1/accounts/{account.id}/consumptions", "2027-03-16T10:00:00Z", json={"credits": "1"})
    assert problem_of(refusal, 409, "insufficient_credits")["credits_available"] == "0.00"

    approved = answered(call(api, "POST", f"/api/v1/invoices/{draft['id']}/approve", "2027-03-20T09:00:00Z"), 200)

    assert (approved["status"], approved["number"], approved["issue_date"], approved["due_date"]) == (
        "approved", "INV-2027-000001", "2027-03-20", "2027-04-03"
    )
    [line] = approved["lines"]
    # The later of 00:00 on the issue day (Mar 15) and the approval moment; expiry from that date.
    assert (line["credits_valid_from"], line["credits_expire_at"]) == ("2027-03-20T09:00:00+00:00", "2028-03-20T00:00:00+00:00")
    [grant] = items(api, f"/api/v1/accounts/{account.id}/grants", "2027-03-20T09:00:00Z")
    assert (grant["id"], grant["credits"], grant["remaining"]) == (line["grant_id"], "200.00", "200.00")
    # Approving again answers the approved invoice unchanged.
    assert answered(call(api, "POST", f"/api/v1/invoices/{draft['id']}/approve", "2027-03-21T09:00:00Z"), 200) == approved
    assert len(items(api, f"/api/v1/accounts/{account.id}/grants", "2027-03-21T09:00:00Z")) == 1


def test_a_top_up_for_a_business_unit_puts_the_credits_in_that_unit(api, database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
    moment = "2027-03-15T10:30:00Z"

    invoice = answered(call(api, "POST", f"/api/v1/accounts/{account.id}/top-ups", moment,
                            json={"product_id": str(pack.id), "business_unit_id": str(cardiology.id), "approve": True}), 201)

    [line] = invoice["lines"]
    assert (line["quantity"], line["credits"], line["net"]) == ("1", "10.00", "100.00")
    [grant] = items(api, f"/api/v1/accounts/{account.id}/grants", moment)
    assert (grant["id"], grant["business_unit_id"], grant["credits"]) == (line["grant_id"], str(cardiology.id), "10.00")
    summary = answered(call(api, "GET", f"/api/v1/accounts/{account.id}/credits", moment, params={"at": moment}), 200)
    assert [(unit["business_unit_id"], unit["name"], unit["remaining"]) for unit in summary["business_units"]] == [
        (str(cardiology.id), "Cardiology", "10.00")
    ]
    assert (summary["remaining"], summary["unrestricted"]["remaining"]) == ("10.00", "0.00")
    # Only Cardiology can use them.
    refusal = call(api, "POST", f"/api/v1/accounts/{account.id}/consumptions", moment, json={"credits": "1"})
    assert problem_of(refusal, 409, "insufficient_credits")["credits_available"] == "0.00"
    used = call(api, "POST", f"/api/v1/accounts/{account.id}/consumptions", moment,
                json={"credits": "10", "business_unit_id": str(cardiology.id)})
    assert answered(used, 201)["draws"] == [{"grant_id": line["grant_id"], "credits": "10.00"}]


def test_refused_top_ups_write_nothing(api, database):
    account = factories.account(database)
    other = factories.account(database, name="Other Ltd")
    others_unit = factories.business_unit(database, other.id, "Elsewhere")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    desk = factories.plain_service(database)
    retired = factories.credit_pack(database, credits="20", lifetime="P1M", name="Retired pack")
    with database.write() as session:
        update_product(session, session.get(Product, retired.id), active=False)
    path = f"/api/v1/accounts/{account.id}/top-ups"
    moment = "2027-03-15T10:30:00Z"
    before = written(database)

    cases = [
        (api, path, {"product_id": str(desk.id), "approve": True}, 422, "validation_error", "product_id"),
        (api, path, {"product_id": str(retired.id), "approve": True}, 422, "validation_error", "product_id"),
        (api, path, {"product_id": "999999", "approve": True}, 422, "unknown_reference", "product_id"),
        (api, path, {"product_id": str(pack.id), "quantity": "0", "approve": True}, 422, "validation_error", "quantity"),
        (api, path, {"product_id": str(pack.id), "quantity": "-1", "approve": True}, 422, "validation_error", "quantity"),
        (
            api,
            path,
            {"product_id": str(pack.id), "business_unit_id": str(others_unit.id), "approve": True},
            422,
            "unknown_reference",
            "business_unit_id",
        ),
        (api, "/api/v1/accounts/999999/top-ups", {"product_id": str(pack.id), "approve": True}, 404, "not_found", None),
        (api.as_role("bookings"), path, {"product_id": str(pack.id), "approve": True}, 403, "forbidden", None),
        (api.as_role("read"), path, {"product_id": str(pack.id), "approve": True}, 403, "forbidden", None),
        (api.as_role(None), path, {"product_id": str(pack.id), "approve": True}, 401, "unauthorized", None),
    ]
    for caller, target, body, status, code, field in cases:
        problem = problem_of(call(caller, "POST", target, moment, json=body), status, code)
        if field is not None:
            named = [error["field"] for error in problem["errors"]] if code == "validation_error" else [problem["field"]]
            assert field in named, (body, problem)
        assert written(database) == before, body

    assert items(api, "/api/v1/invoices", moment, account_id=str(account.id)) == []
    assert items(api, f"/api/v1/accounts/{account.id}/grants", moment) == []


def test_a_top_up_of_a_pack_in_another_currency_is_a_409_currency_mismatch(api, database):
    account = factories.account(database, currency="EUR")
    pounds = factories.credit_pack(database, credits="10", lifetime="P1M", price="90.00", currency="GBP")
    before = written(database)

    response = call(api, "POST", f"/api/v1/accounts/{account.id}/top-ups", "2027-03-15T10:30:00Z",
                    json={"product_id": str(pounds.id), "approve": True})

    problem_of(response, 409, "currency_mismatch")
    assert written(database) == before


def test_a_top_up_repeated_with_its_idempotency_key_is_issued_once(api, database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    path = f"/api/v1/accounts/{account.id}/top-ups"
    body = {"product_id": str(pack.id), "quantity": "1", "approve": True}
    headers = {"Idempotency-Key": "top-up-2027-03-15"}

    first = answered(call(api, "POST", path, "2027-03-15T10:30:00Z", json=body, headers=headers), 201)
    again = call(api, "POST", path, "2027-03-15T10:31:00Z", json=body, headers=headers)

    assert answered(again, 201) == first
    assert [invoice["id"] for invoice in items(api, "/api/v1/invoices", "2027-03-15T10:32:00Z", account_id=str(account.id))] == [first["id"]]
    assert len(items(api, f"/api/v1/accounts/{account.id}/grants", "2027-03-15T10:32:00Z")) == 1
    before = written(database)
    conflict = call(api, "POST", path, "2027-03-15T10:33:00Z", json=body | {"quantity": "3"}, headers=headers)
    problem_of(conflict, 409, "idempotency_conflict")
    assert written(database) == before


def test_a_top_up_through_the_use_case_is_numbered_in_the_invoice_series(database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=JAN_1)

    # Jan 31 + P1M: calendar months with month-end clamping for a one-off grant.
    with database.write() as session:
        invoice = top_up(session, account.id, product_id=pack.id, quantity=D("3"), approve=True, now=instant("2027-01-31 16:00"), actor=ACTOR)
        assert (invoice.kind, invoice.status, invoice.number, invoice.licence_id) == ("top_up", "approved", "INV-2027-000002", None)
        assert (invoice.net, invoice.tax, invoice.gross) == (D("300.00"), D("60.00"), D("360.00"))

    january, topped_up = grants_of(database, account.id)
    assert (topped_up.credits, topped_up.value, topped_up.valid_from, topped_up.expires_at) == (
        D("30.00"), D("300.00"), instant("2027-01-31 16:00"), instant("2027-02-28 00:00")
    )
    assert entries(database, account.id)[-1] == ("grant", topped_up.id, D("30.00"), D("40.00"), instant("2027-01-31 16:00"))
    # The month's own credits expire first, so they are drawn first.
    assert use(database, account.id, "15", instant("2027-01-31 17:00")) == [Draw(january.id, D("10.00")), Draw(topped_up.id, D("5.00"))]
    assert_ledger_agrees_with_summary(database, account.id, instant("2027-01-31 17:00"))


# Found by the mutation run over rollover.py (docs/architecture.md): a cut below one credit, a
# cap that meets grants expiring at the very moment it applies, and a booking ahead of a cut of
# the last credit of a grant.


def test_a_cap_cuts_half_a_credit_when_half_a_credit_is_over_it(database):
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover="9.50")
    bill_months_on_their_first_days(database, licence.id, 2)
    settle_expiries(database, account.id, now=instant("2027-02-15 12:00"))

    january, february = grants_of(database, account.id)
    assert cuts(database, account.id) == [(january.id, D("-0.50"), FEB_1, "grant", str(february.id), "system")]


@pytest.mark.parametrize("february_approved", ["on_feb_1", "ahead_on_jan_20"])
def test_a_cap_leaves_credits_expiring_at_its_moment_to_expire(database, february_approved):
    """P1M packs: January's credits expire at 00:00 on Feb 1, the moment February's cap applies.
    They expire (breakage); the cap cuts nothing, whether February's grant was approved on its day
    (the expiry is recorded by the approval) or ahead (the cut pending, recorded first on Feb 15)."""
    account, licence = capped_pack_licence(database, lifetime="P1M", max_rollover="5")
    if february_approved == "on_feb_1":
        bill_months_on_their_first_days(database, licence.id, 2)
    else:
        bill_months_on_their_first_days(database, licence.id, 1)
        assert bill(database, date(2027, 2, 1), instant("2027-01-20 09:00")) == (1, 0)
        approve_drafts(database, licence.id, instant("2027-01-20 09:00"))
    settle_expiries(database, account.id, now=instant("2027-02-15 12:00"))

    january, february = grants_of(database, account.id)
    assert cuts(database, account.id) == []
    assert (january.expired, january.removed, january.remaining) == (D("10.00"), D("0.00"), D("0.00"))
    assert february.remaining == D("10.00")


def test_a_hold_ahead_of_a_pending_cut_cannot_use_the_last_credit_the_cut_will_take(database):
    """A cap of 0: on Feb 1 February's grant cuts what is left of January's. With one credit of
    January's left, a hold for Feb 10 sees February's 10 credits only."""
    account, licence = capped_pack_licence(database, lifetime="P3M", max_rollover="0")
    bill_months_on_their_first_days(database, licence.id, 1)
    assert bill(database, date(2027, 2, 1), instant("2027-01-20 09:00")) == (1, 0)  # February billed and approved ahead
    approve_drafts(database, licence.id, instant("2027-01-20 09:00"))
    with database.write() as session:
        consume(session, account.id, credits=D("9"), now=instant("2027-01-20 10:00"), actor=ACTOR)

    with pytest.raises(InsufficientCredits) as refused, database.write() as session:
        place_hold(session, account.id, credits=D("11"), event_at=instant("2027-02-10 10:00"), now=instant("2027-01-20 11:00"), actor=ACTOR)
    assert refused.value.extra["credits_available"] == "10.00"
