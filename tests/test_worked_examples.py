"""SPEC 10, worked examples 1-5, through the use cases (billing run, approval, consumption, expiry).

Every expected value is worked out by hand from SPEC.md, in the default operator zone (UTC):
"valid from D" means 00:00 UTC of D, "expires on D" means the credits stop at 00:00 UTC of D.
2027-02-01 and 2027-03-01 are Mondays; February 2027 has 28 days (exactly four weeks).
"""

from __future__ import annotations

from datetime import date

from sqlmodel import select

from licensing.credits.consumption import Draw
from licensing.credits.expiry import sweep_expiries
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
    monthly_pack_licence,
    refused,
    snapshot,
    summary_at,
    use,
)

# ---------------------------------------------------------------------------------------------
# Example 1: 10 credits a month for 12 months (lifetime P1M)
# ---------------------------------------------------------------------------------------------

MONTH_STARTS_2027 = [
    date(2027, 1, 1), date(2027, 2, 1), date(2027, 3, 1), date(2027, 4, 1), date(2027, 5, 1), date(2027, 6, 1),
    date(2027, 7, 1), date(2027, 8, 1), date(2027, 9, 1), date(2027, 10, 1), date(2027, 11, 1), date(2027, 12, 1),
]
MONTH_ENDS_2027 = [
    date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31), date(2027, 6, 30),
    date(2027, 7, 31), date(2027, 8, 31), date(2027, 9, 30), date(2027, 10, 31), date(2027, 11, 30), date(2027, 12, 31),
]
# 00:00 UTC of each month's first day, and of 2028-01-01 when December's credits expire.
MIDNIGHTS = [
    instant("2027-01-01 00:00"), instant("2027-02-01 00:00"), instant("2027-03-01 00:00"), instant("2027-04-01 00:00"),
    instant("2027-05-01 00:00"), instant("2027-06-01 00:00"), instant("2027-07-01 00:00"), instant("2027-08-01 00:00"),
    instant("2027-09-01 00:00"), instant("2027-10-01 00:00"), instant("2027-11-01 00:00"), instant("2027-12-01 00:00"),
    instant("2028-01-01 00:00"),
]


def test_example_1_ten_credits_a_month_for_twelve_months(database):
    account, licence = monthly_pack_licence(database, lifetime="P1M")

    # The billing run on each month's first day bills that month, once; each invoice is approved.
    for month_start, midnight in zip(MONTH_STARTS_2027, MIDNIGHTS):
        bill_and_approve(database, licence.id, as_of=month_start, now=midnight)
    assert bill(database, date(2027, 12, 31), instant("2027-12-31 12:00")) == (0, 0)
    assert bill(database, date(2028, 1, 1), instant("2028-01-01 00:00")) == (0, 0)

    invoices = invoices_with_lines(database, licence.id)
    assert [(invoice.period_start, invoice.period_end, invoice.status) for invoice, _ in invoices] == [
        (start, end, "approved") for start, end in zip(MONTH_STARTS_2027, MONTH_ENDS_2027)
    ]
    assert [invoice.number for invoice, _ in invoices] == [f"INV-2027-{n:06d}" for n in range(1, 13)]
    assert [[(line.period_start, line.period_end, line.credits) for line in lines] for _, lines in invoices] == [
        [(start, end, D("10.00"))] for start, end in zip(MONTH_STARTS_2027, MONTH_ENDS_2027)
    ]

    grants = grants_of(database, account.id)
    assert [(grant.credits, grant.business_unit_id, grant.valid_from, grant.expires_at) for grant in grants] == [
        (D("10.00"), None, MIDNIGHTS[month], MIDNIGHTS[month + 1]) for month in range(12)
    ]
    assert [lines[0].id for _, lines in invoices] == [grant.invoice_line_id for grant in grants]
    # Nothing was used: each month's credits were gone when the next month began (recorded at the
    # next approval), and December's are still there until 2028-01-01.
    assert [(grant.remaining, grant.expired) for grant in grants] == [(D("0.00"), D("10.00"))] * 11 + [(D("10.00"), D("0.00"))]
    expiries = [(entry.grant_id, entry.credits, entry.occurred_at) for entry in ledger_of(database, account.id) if entry.kind == "expire"]
    assert expiries == [(grants[month].id, D("-10.00"), MIDNIGHTS[month + 1]) for month in range(11)]


def test_example_1_january_credits_can_be_used_until_the_last_minute_of_january(database):
    account, licence = monthly_pack_licence(database, lifetime="P1M")
    january = bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    # February's invoice is approved ahead of its period: its credits are pending until Feb 1.
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-01-25 09:00"))
    january_grant, _february_grant = grants_of(database, account.id)

    draws = use(database, account.id, "10", instant("2027-01-31 23:59"))

    assert draws == [Draw(january_grant.id, D("10.00"))]
    refusal = refused(database, account.id, "1", instant("2027-01-31 23:59"))
    assert refusal.extra == {"credits_requested": "1.00", "credits_available": "0.00"}
    assert [grant.remaining for grant in grants_of(database, account.id)] == [D("0.00"), D("10.00")]
    assert january.number == "INV-2027-000001"


def test_example_1_january_credits_are_gone_on_february_1(database):
    account, licence = monthly_pack_licence(database, lifetime="P1M")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-01-25 09:00"))
    january_grant, _february_grant = grants_of(database, account.id)
    before = snapshot(database, account.id)

    # At 00:00 on Feb 1, before any sweep, only February's 10 credits are available.
    refusal = refused(database, account.id, "11", instant("2027-02-01 00:00"))

    assert refusal.code == "insufficient_credits"
    assert refusal.extra == {"credits_requested": "11.00", "credits_available": "10.00"}
    assert snapshot(database, account.id) == before

    summary, recomputed = summary_at(database, account.id, instant("2027-02-01 00:00"))
    figures = summary.total
    assert (figures.granted, figures.remaining, figures.used, figures.removed) == (D("10.00"), D("10.00"), D("0.00"), D("0.00"))
    assert summary.expiring == [(D("10.00"), instant("2027-03-01 00:00"))]
    assert summary.pending == []
    assert recomputed.total == figures

    assert sweep_expiries(database, now=instant("2027-02-01 00:00")) == 1
    expiries = [entry for entry in ledger_of(database, account.id) if entry.kind == "expire"]
    assert [(entry.grant_id, entry.credits, entry.balance_after, entry.occurred_at) for entry in expiries] == [
        (january_grant.id, D("-10.00"), D("10.00"), instant("2027-02-01 00:00"))
    ]
    assert [(grant.remaining, grant.expired) for grant in grants_of(database, account.id)] == [
        (D("0.00"), D("10.00")), (D("10.00"), D("0.00"))
    ]


# ---------------------------------------------------------------------------------------------
# Example 2: rolling one extra month (lifetime P2M)
# ---------------------------------------------------------------------------------------------


def test_example_2_rolling_one_extra_month(database):
    account, licence = monthly_pack_licence(database, lifetime="P2M")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-02-01 00:00"))
    january_grant, february_grant = grants_of(database, account.id)
    assert (january_grant.valid_from, january_grant.expires_at) == (instant("2027-01-01 00:00"), instant("2027-03-01 00:00"))
    assert (february_grant.valid_from, february_grant.expires_at) == (instant("2027-02-01 00:00"), instant("2027-04-01 00:00"))

    summary, _ = summary_at(database, account.id, instant("2027-02-10 10:00"))
    assert (summary.total.granted, summary.total.remaining) == (D("20.00"), D("20.00"))
    assert summary.expiring == [(D("10.00"), instant("2027-03-01 00:00"))]

    # January's credits expire sooner, so they are drawn first.
    draws = use(database, account.id, "15", instant("2027-02-10 10:00"))

    assert draws == [Draw(january_grant.id, D("10.00")), Draw(february_grant.id, D("5.00"))]
    assert [(grant.remaining, grant.used) for grant in grants_of(database, account.id)] == [
        (D("0.00"), D("10.00")), (D("5.00"), D("5.00"))
    ]
    consumed = [(entry.grant_id, entry.credits, entry.balance_after) for entry in ledger_of(database, account.id) if entry.kind == "consume"]
    assert consumed == [(january_grant.id, D("-10.00"), D("10.00")), (february_grant.id, D("-5.00"), D("5.00"))]


def test_example_2_january_credits_are_gone_on_march_1(database):
    account, licence = monthly_pack_licence(database, lifetime="P2M")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-02-01 00:00"))
    assert use(database, account.id, "5", instant("2027-02-10 10:00")) == [Draw(grants_of(database, account.id)[0].id, D("5.00"))]
    # March's invoice is approved ahead of its period.
    bill_and_approve(database, licence.id, as_of=date(2027, 3, 1), now=instant("2027-02-25 09:00"))
    january_grant, _february_grant, march_grant = grants_of(database, account.id)

    summary, _ = summary_at(database, account.id, instant("2027-02-28 23:59"))
    assert (summary.total.granted, summary.total.remaining, summary.total.used) == (D("20.00"), D("15.00"), D("5.00"))
    assert summary.pending == [(march_grant.id, D("10.00"), instant("2027-03-01 00:00"))]
    before = snapshot(database, account.id)

    # At 00:00 on Mar 1 January's 5 unused credits are gone: February's 10 and March's 10 remain.
    refusal = refused(database, account.id, "21", instant("2027-03-01 00:00"))

    assert refusal.extra == {"credits_requested": "21.00", "credits_available": "20.00"}
    assert snapshot(database, account.id) == before
    summary, recomputed = summary_at(database, account.id, instant("2027-03-01 00:00"))
    assert (summary.total.granted, summary.total.remaining, summary.total.used) == (D("20.00"), D("20.00"), D("0.00"))
    assert recomputed.total == summary.total

    assert sweep_expiries(database, now=instant("2027-03-01 00:00")) == 1
    expiries = [(entry.grant_id, entry.credits, entry.occurred_at) for entry in ledger_of(database, account.id) if entry.kind == "expire"]
    assert expiries == [(january_grant.id, D("-5.00"), instant("2027-03-01 00:00"))]


# ---------------------------------------------------------------------------------------------
# Example 3: a one-off allowance of 10,000 credits (lifetime P12M)
# ---------------------------------------------------------------------------------------------


def test_example_3_one_off_allowance(database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10000", lifetime="P12M", price="5000.00")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    factories.service(database, licence.id, pack.id, schedule="one_off", from_date=date(2027, 3, 15))

    # January and February have no billable line, so no invoice; March carries the one-off.
    assert bill(database, date(2027, 3, 15), instant("2027-03-15 09:00")) == (1, 0)
    (_invoice,) = approve_drafts(database, licence.id, instant("2027-03-15 10:00"))

    ((approved, lines),) = invoices_with_lines(database, licence.id)
    assert (approved.period_start, approved.period_end, approved.number) == (date(2027, 3, 1), date(2027, 3, 31), "INV-2027-000001")
    assert [(line.period_start, line.period_end, line.credits) for line in lines] == [(date(2027, 3, 15), date(2027, 3, 15), D("10000.00"))]
    (grant,) = grants_of(database, account.id)
    # valid from the approval moment, later than 00:00 of the from-date; expires at 00:00 a year on.
    assert (grant.credits, grant.remaining, grant.valid_from, grant.expires_at) == (
        D("10000.00"), D("10000.00"), instant("2027-03-15 10:00"), instant("2028-03-15 00:00")
    )
    assert grant.invoice_line_id == lines[0].id

    last_minute, _ = summary_at(database, account.id, instant("2028-03-14 23:59"))
    assert (last_minute.total.granted, last_minute.total.remaining) == (D("10000.00"), D("10000.00"))
    assert last_minute.expiring == [(D("10000.00"), instant("2028-03-15 00:00"))]
    expired, _ = summary_at(database, account.id, instant("2028-03-15 00:00"))
    assert (expired.total.granted, expired.total.remaining) == (D("0.00"), D("0.00"))
    assert refused(database, account.id, "1", instant("2028-03-15 00:00")).extra == {
        "credits_requested": "1.00", "credits_available": "0.00"
    }


# ---------------------------------------------------------------------------------------------
# Example 4: weekly credits (5 credits, lifetime P1W) from Monday 2027-02-01
# ---------------------------------------------------------------------------------------------


def test_example_4_weekly_credits_from_monday_february_1(database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="5", lifetime="P1W", price="25.00")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    factories.service(database, licence.id, pack.id, schedule="weekly", from_date=date(2027, 2, 1), to_date=date(2027, 12, 31))

    assert bill(database, date(2027, 2, 1), instant("2027-02-01 00:00")) == (1, 0)
    approve_drafts(database, licence.id, instant("2027-02-01 00:00"))

    ((february, lines),) = invoices_with_lines(database, licence.id)
    assert (february.period_start, february.period_end, february.net) == (date(2027, 2, 1), date(2027, 2, 28), D("100.00"))
    assert [(line.period_start, line.period_end, line.credits, line.net) for line in lines] == [
        (date(2027, 2, 1), date(2027, 2, 7), D("5.00"), D("25.00")),
        (date(2027, 2, 8), date(2027, 2, 14), D("5.00"), D("25.00")),
        (date(2027, 2, 15), date(2027, 2, 21), D("5.00"), D("25.00")),
        (date(2027, 2, 22), date(2027, 2, 28), D("5.00"), D("25.00")),
    ]
    grants = grants_of(database, account.id)
    assert [(grant.credits, grant.valid_from, grant.expires_at) for grant in grants] == [
        (D("5.00"), instant("2027-02-01 00:00"), instant("2027-02-08 00:00")),
        (D("5.00"), instant("2027-02-08 00:00"), instant("2027-02-15 00:00")),
        (D("5.00"), instant("2027-02-15 00:00"), instant("2027-02-22 00:00")),
        (D("5.00"), instant("2027-02-22 00:00"), instant("2027-03-01 00:00")),
    ]
    assert [line.id for line in lines] == [grant.invoice_line_id for grant in grants]

    # On Wednesday Feb 10 only the second week's credits are usable.
    assert refused(database, account.id, "6", instant("2027-02-10 12:00")).extra == {
        "credits_requested": "6.00", "credits_available": "5.00"
    }
    assert use(database, account.id, "5", instant("2027-02-10 12:00")) == [Draw(grants[1].id, D("5.00"))]


# ---------------------------------------------------------------------------------------------
# Example 5: business units (Cardiology and Neurology)
# ---------------------------------------------------------------------------------------------


def test_example_5_cardiology_cannot_use_neurology_credits(database):
    account = factories.account(database, name="St Mary's Hospital")
    cardiology = factories.business_unit(database, account.id, "Cardiology")
    neurology = factories.business_unit(database, account.id, "Neurology")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    small_pack = factories.credit_pack(database, credits="4", lifetime="P1M", price="40.00")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    period = {"from_date": date(2027, 1, 1), "to_date": date(2027, 12, 31)}
    factories.service(database, licence.id, pack.id, business_unit_id=cardiology.id, **period)  # 10 for Cardiology
    factories.service(database, licence.id, pack.id, business_unit_id=neurology.id, quantity=D("3"), **period)  # 30 for Neurology
    factories.service(database, licence.id, small_pack.id, **period)  # 4 unrestricted
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    cardiology_grant, _neurology_grant, unrestricted_grant = grants_of(database, account.id)
    assert [(grant.business_unit_id, grant.credits) for grant in grants_of(database, account.id)] == [
        (cardiology.id, D("10.00")), (neurology.id, D("30.00")), (None, D("4.00"))
    ]
    before = snapshot(database, account.id)
    moment = instant("2027-01-15 10:00")

    # Cardiology may use its own 10 and the 4 unrestricted credits: 14, never Neurology's 30.
    refusal = refused(database, account.id, "15", moment, business_unit_id=cardiology.id)
    assert refusal.code == "insufficient_credits"
    assert refusal.extra == {"credits_requested": "15.00", "credits_available": "14.00"}
    assert snapshot(database, account.id) == before

    # Without a unit, only the 4 unrestricted credits.
    refusal = refused(database, account.id, "5", moment)
    assert refusal.extra == {"credits_requested": "5.00", "credits_available": "4.00"}
    assert snapshot(database, account.id) == before

    assert use(database, account.id, "3", moment) == [Draw(unrestricted_grant.id, D("3.00"))]
    assert use(database, account.id, "11", moment, business_unit_id=cardiology.id) == [
        Draw(cardiology_grant.id, D("10.00")), Draw(unrestricted_grant.id, D("1.00"))
    ]

    assert [(grant.remaining, grant.used) for grant in grants_of(database, account.id)] == [
        (D("0.00"), D("10.00")), (D("30.00"), D("0.00")), (D("0.00"), D("4.00"))
    ]
    summary, _ = summary_at(database, account.id, moment)
    units = {unit_id: (name, figures.granted, figures.remaining, figures.used) for unit_id, name, figures in summary.business_units}
    assert units == {
        cardiology.id: ("Cardiology", D("10.00"), D("0.00"), D("10.00")),
        neurology.id: ("Neurology", D("30.00"), D("30.00"), D("0.00")),
    }
    assert (summary.unrestricted.granted, summary.unrestricted.remaining, summary.unrestricted.used) == (D("4.00"), D("0.00"), D("4.00"))
    assert (summary.total.granted, summary.total.remaining, summary.total.used) == (D("44.00"), D("30.00"), D("14.00"))


# ---------------------------------------------------------------------------------------------
# Example 6: over-allocation corrected by a credit note
# ---------------------------------------------------------------------------------------------


def test_example_6_credit_note_for_half_of_a_full_month_granted_to_a_late_start(database):
    from licensing.invoicing.credit_notes import (
        CreditRequest,
        approve_credit_note,
        create_credit_note,
    )
    from licensing.reports import liability

    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
    licence = factories.licence(database, account.id, date(2027, 1, 16), date(2027, 12, 31))
    factories.service(database, licence.id, pack.id, schedule="monthly", from_date=date(2027, 1, 16), to_date=date(2027, 12, 31))

    # The licence starts on the 16th, yet gets a full month of 10 credits (no pro-rata for packs).
    invoice = bill_and_approve(database, licence.id, as_of=date(2027, 1, 16), now=instant("2027-01-16 00:00"))
    [(_invoice, [line])] = invoices_with_lines(database, licence.id)
    assert (line.period_start, line.period_end, line.credits, line.net) == (date(2027, 1, 16), date(2027, 1, 31), D("10.00"), D("100.00"))
    [grant] = grants_of(database, account.id)
    assert (grant.credits, grant.remaining, grant.valid_from, grant.expires_at) == (
        D("10.00"), D("10.00"), instant("2027-01-16 00:00"), instant("2027-02-01 00:00")
    )

    # A credit note for half of that line: half the money, and 5 credits taken back.
    moment = instant("2027-01-18 09:00")
    with database.write() as session:
        note = create_credit_note(
            session, invoice_id=invoice.id, lines=[CreditRequest(line.id, quantity=D("0.5"))], reason="over-allocation",
            now=moment, actor=ACTOR,
        )
        assert (note.status, note.number, note.net, note.tax, note.gross) == ("draft", None, D("50.00"), D("10.00"), D("60.00"))
    with database.write() as session:
        note = approve_credit_note(session, note.id, now=moment, actor=ACTOR)
        assert (note.status, note.number) == ("approved", "CN-2027-000001")
    from licensing.invoicing.models import CreditNoteLine

    with database.read() as session:
        [note_line] = session.exec(select(CreditNoteLine).where(CreditNoteLine.credit_note_id == note.id)).all()
        assert (note_line.quantity, note_line.net, note_line.credits_taken_back) == (D("0.5"), D("50.00"), D("5.00"))

    [grant] = grants_of(database, account.id)
    assert (grant.credits, grant.remaining, grant.removed) == (D("10.00"), D("5.00"), D("5.00"))
    assert ledger_of(database, account.id)[-1].kind == "credit_note_reversal"
    assert (ledger_of(database, account.id)[-1].credits, ledger_of(database, account.id)[-1].balance_after) == (D("-5.00"), D("5.00"))
    cached, folded = summary_at(database, account.id, moment)
    assert cached == folded
    assert (cached.total.granted, cached.total.remaining, cached.total.used, cached.total.removed) == (D("10"), D("5"), D("0"), D("5"))
    # The 5 credits left are worth 10.00 each: a liability of 50.00.
    with database.read() as session:
        report = liability(session, moment)
    total, _accounts = report.currencies["EUR"]
    assert (total.credits, total.value) == (5, 50)
