"""The billing run, pricing, approval and numbering (SPEC sections 2, 3 and 8).

Service level, on the real database (every test runs on SQLite and on PostgreSQL). Expected
values are worked out by hand from the SPEC:

* 2027 is not a leap year; January and March have 31 days, February 28.
* A plain service of 310.00 a month costs 10.00 a day in a 31-day month: Jan 16-31 (16 days)
  is 160.00, Mar 1-10 (10 days) is 100.00.
* A mailbox of 62.00 a month costs 2.00 a day in March: Mar 16-31 is 32.00.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func
from sqlmodel import select

from licensing.credits.consumption import consume
from licensing.credits.models import Grant, LedgerEntry
from licensing.errors import CurrencyMismatch, InsufficientCredits
from licensing.invoicing.approval import approve_invoice
from licensing.invoicing.billing import run_billing
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.licences.models import ContractService
from licensing.licences.services import add_service
from tests import factories

ACTOR = "billing-test"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def morning_of(day: date) -> datetime:
    return utc(day.year, day.month, day.day, 8, 0)


def bill(database, as_of: date, **options):
    return run_billing(database, as_of=as_of, now=morning_of(as_of), actor=ACTOR, **options)


def invoices_of(database, licence_id: int) -> list[Invoice]:
    with database.read() as session:
        return list(session.exec(select(Invoice).where(Invoice.licence_id == licence_id).order_by(Invoice.id)).all())


def lines_of(database, invoice_id: int) -> list[InvoiceLine]:
    with database.read() as session:
        return list(session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.id)).all())


def line_of_service(database, invoice_id: int, service_id: int) -> InvoiceLine:
    (line,) = [line for line in lines_of(database, invoice_id) if line.contract_service_id == service_id]
    return line


def approve(database, invoice_id: int, at: datetime) -> Invoice:
    with database.write() as session:
        return approve_invoice(session, invoice_id, at=at, actor=ACTOR)


def grant_of_line(database, line_id: int) -> Grant:
    with database.read() as session:
        grant = session.exec(select(Grant).where(Grant.invoice_line_id == line_id)).one_or_none()
        assert grant is not None, "an approved credit-pack line has its grant"
        return grant


def count(database, model, *conditions) -> int:
    with database.read() as session:
        return session.exec(select(func.count()).select_from(model).where(*conditions)).one()


def window(grant: Grant) -> tuple[datetime, datetime | None]:
    return grant.valid_from, grant.expires_at


# --- Partial first period -------------------------------------------------------------------


def _licence_from_january_16(database, *, prorate_credits: bool = False, prorate: bool = True):
    account = factories.account(database)
    desk = factories.plain_service(database, price="310.00")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
    licence = factories.licence(database, account.id, date(2027, 1, 16))
    desk_service = factories.service(database, licence.id, desk.id, prorate=prorate)
    pack_service = factories.service(database, licence.id, pack.id, prorate_credits=prorate_credits)
    return licence, desk_service, pack_service


def test_first_partial_period_prorates_the_desk_and_grants_the_full_credit_pack(database):
    licence, desk_service, pack_service = _licence_from_january_16(database)

    result = bill(database, date(2027, 1, 16))

    assert result.invoices_created == 1
    (invoice,) = invoices_of(database, licence.id)
    assert (invoice.kind, invoice.period_start, invoice.period_end) == ("period", date(2027, 1, 16), date(2027, 1, 31))
    desk_line = line_of_service(database, invoice.id, desk_service.id)
    assert (desk_line.period_start, desk_line.period_end, desk_line.net) == (date(2027, 1, 16), date(2027, 1, 31), Decimal("160.00"))
    assert desk_line.credits is None
    pack_line = line_of_service(database, invoice.id, pack_service.id)
    assert (pack_line.credits, pack_line.net) == (Decimal("10.00"), Decimal("100.00"))

    approve(database, invoice.id, utc(2027, 1, 16, 9, 0))

    grant = grant_of_line(database, pack_line.id)
    assert grant.credits == Decimal("10.00")
    assert window(grant) == (utc(2027, 1, 16), utc(2027, 2, 1))


def test_first_partial_period_with_prorated_credits_grants_and_charges_sixteen_thirty_firsts(database):
    licence, _desk_service, pack_service = _licence_from_january_16(database, prorate_credits=True)

    bill(database, date(2027, 1, 16))

    (invoice,) = invoices_of(database, licence.id)
    pack_line = line_of_service(database, invoice.id, pack_service.id)
    # 16/31 x 10 = 5.1612... rounded down; 16/31 x 100.00 = 51.6129... rounded half-up.
    assert (pack_line.credits, pack_line.net) == (Decimal("5.16"), Decimal("51.61"))

    approve(database, invoice.id, utc(2027, 1, 16, 9, 0))

    grant = grant_of_line(database, pack_line.id)
    assert (grant.credits, grant.remaining) == (Decimal("5.16"), Decimal("5.16"))
    assert window(grant) == (utc(2027, 1, 16), utc(2027, 2, 1))


def test_plain_service_without_prorate_is_charged_in_full_for_a_partial_period(database):
    licence, desk_service, _pack_service = _licence_from_january_16(database, prorate=False)

    bill(database, date(2027, 1, 16))

    (invoice,) = invoices_of(database, licence.id)
    desk_line = line_of_service(database, invoice.id, desk_service.id)
    assert (desk_line.period_start, desk_line.period_end, desk_line.net) == (date(2027, 1, 16), date(2027, 1, 31), Decimal("310.00"))


# --- Tax ------------------------------------------------------------------------------------


def test_invoice_tax_is_the_rate_applied_to_the_summed_net_of_each_rate(database):
    account = factories.account(database)
    desk = factories.plain_service(database, price="10.03", tax_rate="20", name="Hot desk")
    mailbox = factories.plain_service(database, price="10.03", tax_rate="20", name="Mailbox")
    coffee = factories.plain_service(database, price="33.35", tax_rate="10", name="Coffee")
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    for product in (desk, mailbox, coffee):
        factories.service(database, licence.id, product.id)

    bill(database, date(2027, 1, 1))

    (invoice,) = invoices_of(database, licence.id)
    # 20 %: 20 % of 20.06 = 4.012 -> 4.01 (not 2.01 + 2.01 = 4.02); 10 %: 10 % of 33.35 = 3.335 -> 3.34.
    assert (invoice.net, invoice.tax, invoice.gross) == (Decimal("53.41"), Decimal("7.35"), Decimal("60.76"))
    assert sorted(line.tax_rate for line in lines_of(database, invoice.id)) == [Decimal(10), Decimal(20), Decimal(20)]


def test_tax_exempt_account_is_invoiced_without_tax(database):
    account = factories.account(database, tax_exempt=True)
    desk = factories.plain_service(database, price="310.00", tax_rate="20")
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    factories.service(database, licence.id, desk.id)

    bill(database, date(2027, 1, 1))

    (invoice,) = invoices_of(database, licence.id)
    (line,) = lines_of(database, invoice.id)
    assert (line.tax_rate, line.tax, line.net) == (Decimal(0), Decimal(0), Decimal("310.00"))
    assert (invoice.net, invoice.tax, invoice.gross) == (Decimal("310.00"), Decimal(0), Decimal("310.00"))


# --- Lines that become due late -------------------------------------------------------------


def _march_licence_with_a_desk(database):
    account = factories.account(database)
    desk = factories.plain_service(database, price="310.00")
    licence = factories.licence(database, account.id, date(2027, 3, 1))
    factories.service(database, licence.id, desk.id)
    bill(database, date(2027, 3, 1))
    (march,) = invoices_of(database, licence.id)
    return account, licence, march


def test_service_added_mid_period_after_approval_goes_on_a_supplementary_invoice_once(database):
    _account, licence, march = _march_licence_with_a_desk(database)
    approve(database, march.id, utc(2027, 3, 2, 9, 0))
    mailbox = factories.plain_service(database, price="62.00", name="Mailbox")
    mailbox_service = factories.service(database, licence.id, mailbox.id, from_date=date(2027, 3, 16))

    first = bill(database, date(2027, 3, 16))
    again = bill(database, date(2027, 3, 16))

    assert (first.invoices_created, again.invoices_created) == (1, 0)
    original, supplementary = invoices_of(database, licence.id)
    assert original.id == march.id
    assert len(lines_of(database, march.id)) == 1, "the approved invoice is left as it was"
    assert (supplementary.kind, supplementary.status, supplementary.number) == ("supplementary", "draft", None)
    assert (supplementary.period_start, supplementary.period_end) == (date(2027, 3, 1), date(2027, 3, 31))
    (line,) = lines_of(database, supplementary.id)
    assert line.contract_service_id == mailbox_service.id
    assert (line.period_start, line.period_end, line.net) == (date(2027, 3, 16), date(2027, 3, 31), Decimal("32.00"))
    assert (supplementary.net, supplementary.tax, supplementary.gross) == (Decimal("32.00"), Decimal("6.40"), Decimal("38.40"))


def test_service_added_mid_period_joins_the_invoice_while_it_is_a_draft(database):
    _account, licence, march = _march_licence_with_a_desk(database)
    mailbox = factories.plain_service(database, price="62.00", name="Mailbox")
    mailbox_service = factories.service(database, licence.id, mailbox.id, from_date=date(2027, 3, 16))

    result = bill(database, date(2027, 3, 16))

    assert result.invoices_created == 0
    (invoice,) = invoices_of(database, licence.id)
    assert (invoice.id, invoice.status, invoice.kind) == (march.id, "draft", "period")
    line = line_of_service(database, invoice.id, mailbox_service.id)
    assert (line.period_start, line.period_end, line.net) == (date(2027, 3, 16), date(2027, 3, 31), Decimal("32.00"))
    assert len(lines_of(database, invoice.id)) == 2
    # 310.00 + 32.00 = 342.00; 20 % = 68.40.
    assert (invoice.net, invoice.tax, invoice.gross) == (Decimal("342.00"), Decimal("68.40"), Decimal("410.40"))


def test_one_off_added_late_goes_on_a_supplementary_invoice_and_is_billed_once(database):
    _account, licence, march = _march_licence_with_a_desk(database)
    approve(database, march.id, utc(2027, 3, 2, 9, 0))
    setup = factories.plain_service(database, price="50.00", name="Setup fee")
    setup_service = factories.service(database, licence.id, setup.id, schedule="one_off", from_date=date(2027, 3, 20))

    first = bill(database, date(2027, 3, 20))
    repeated = bill(database, date(2027, 3, 20))
    april = bill(database, date(2027, 4, 1))

    assert (first.invoices_created, repeated.invoices_created, april.invoices_created) == (1, 0, 1)
    invoices = invoices_of(database, licence.id)
    assert [(invoice.kind, invoice.period_start) for invoice in invoices] == [
        ("period", date(2027, 3, 1)),
        ("supplementary", date(2027, 3, 1)),
        ("period", date(2027, 4, 1)),
    ]
    (line,) = lines_of(database, invoices[1].id)
    assert (line.contract_service_id, line.period_start, line.period_end, line.net) == (
        setup_service.id, date(2027, 3, 20), date(2027, 3, 20), Decimal("50.00"),
    )
    assert count(database, InvoiceLine, InvoiceLine.contract_service_id == setup_service.id) == 1


# --- Idempotence ------------------------------------------------------------------------------


def test_repeating_a_billing_run_for_the_same_day_creates_nothing(database):
    account = factories.account(database)
    desk = factories.plain_service(database)
    pack = factories.credit_pack(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    factories.service(database, licence.id, desk.id)
    factories.service(database, licence.id, pack.id)
    first = bill(database, date(2027, 3, 1))
    lines_after_first = count(database, InvoiceLine)

    again = bill(database, date(2027, 3, 1))

    assert (first.invoices_created, again.invoices_created) == (3, 0)
    assert lines_after_first == 6
    assert count(database, InvoiceLine) == 6
    assert count(database, Invoice) == 3


def test_approving_an_approved_invoice_returns_it_unchanged_and_grants_nothing_more(database):
    account = factories.account(database)
    pack = factories.credit_pack(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    factories.service(database, licence.id, pack.id)
    bill(database, date(2027, 1, 1))
    (invoice,) = invoices_of(database, licence.id)
    first = approve(database, invoice.id, utc(2027, 1, 1, 9, 0))

    second = approve(database, invoice.id, utc(2027, 1, 2, 9, 0))

    assert first.number == second.number == "INV-2027-000001"
    assert second.approved_at == utc(2027, 1, 1, 9, 0)
    assert count(database, Grant) == 1
    assert count(database, LedgerEntry) == 1


# --- Numbering --------------------------------------------------------------------------------


def test_invoices_are_numbered_in_approval_order_and_drafts_have_no_number(database):
    account = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    factories.service(database, licence.id, desk.id)
    bill(database, date(2027, 3, 1))
    january, february, march = invoices_of(database, licence.id)
    assert [invoice.number for invoice in (january, february, march)] == [None, None, None]

    approve(database, march.id, utc(2027, 3, 1, 9, 0))
    approve(database, january.id, utc(2027, 3, 1, 10, 0))

    numbers = {invoice.id: invoice.number for invoice in invoices_of(database, licence.id)}
    assert numbers == {march.id: "INV-2027-000001", january.id: "INV-2027-000002", february.id: None}
    approve(database, february.id, utc(2027, 3, 1, 11, 0))
    assert invoices_of(database, licence.id)[1].number == "INV-2027-000003"


def test_the_invoice_number_carries_the_approval_year_and_restarts_each_year(database):
    account = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    factories.service(database, licence.id, desk.id)
    bill(database, date(2027, 3, 1))
    january, february, march = invoices_of(database, licence.id)

    approved = [
        approve(database, january.id, utc(2027, 6, 1, 9, 0)).number,
        approve(database, february.id, utc(2027, 12, 31, 12, 0)).number,
        approve(database, march.id, utc(2028, 1, 1, 12, 0)).number,
    ]

    assert approved == ["INV-2027-000001", "INV-2027-000002", "INV-2028-000001"]


def test_the_approval_year_is_read_in_the_operator_time_zone(database, set_operator_setting):
    set_operator_setting("timezone", "Europe/Paris")
    account = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, account.id, date(2027, 12, 1))
    factories.service(database, licence.id, desk.id)
    bill(database, date(2027, 12, 1))
    (invoice,) = invoices_of(database, licence.id)

    # 23:30 UTC on Dec 31 is 00:30 on Jan 1 2028 in Paris.
    approved = approve(database, invoice.id, utc(2027, 12, 31, 23, 30))

    assert approved.number == "INV-2028-000001"


def test_concurrent_approvals_number_invoices_without_gaps_or_duplicates(database):
    account = factories.account(database)
    pack = factories.credit_pack(database)
    for _ in range(20):
        licence = factories.licence(database, account.id, date(2027, 1, 1))
        factories.service(database, licence.id, pack.id)
    assert bill(database, date(2027, 1, 1)).invoices_created == 20
    with database.read() as session:
        invoice_ids = list(session.exec(select(Invoice.id).order_by(Invoice.id)).all())

    def approve_one(invoice_id: int) -> str:
        return approve(database, invoice_id, utc(2027, 1, 1, 9, 0)).number

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(approve_one, invoice_ids))

    expected = [f"INV-2027-{n:06d}" for n in range(1, 21)]
    assert sorted(numbers) == expected
    with database.read() as session:
        stored = sorted(session.exec(select(Invoice.number)).all())
    assert stored == expected
    assert count(database, Grant) == 20
    assert count(database, LedgerEntry) == 20


# --- Anchor 31 and expiry instants ------------------------------------------------------------


def test_anchor_31_periods_clamp_in_short_months_and_credits_expire_at_the_next_anchor(database):
    account = factories.account(database)
    pack = factories.credit_pack(database, lifetime="P1M")
    licence = factories.licence(database, account.id, date(2027, 1, 31), billing_anchor_day=31)
    pack_service = factories.service(database, licence.id, pack.id)

    bill(database, date(2027, 3, 31), approve_all=True)

    invoices = invoices_of(database, licence.id)
    assert [(invoice.period_start, invoice.period_end) for invoice in invoices] == [
        (date(2027, 1, 31), date(2027, 2, 27)),
        (date(2027, 2, 28), date(2027, 3, 30)),
        (date(2027, 3, 31), date(2027, 4, 29)),
    ]
    windows = [window(grant_of_line(database, line_of_service(database, invoice.id, pack_service.id).id)) for invoice in invoices]
    assert windows == [
        (utc(2027, 1, 31), utc(2027, 2, 28)),
        (utc(2027, 2, 28), utc(2027, 3, 31)),
        (utc(2027, 3, 31), utc(2027, 4, 30)),
    ]


def _monthly_pack_licence(database, start: date):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    licence = factories.licence(database, account.id, start)
    pack_service = factories.service(database, licence.id, pack.id)
    bill(database, start, approve_all=True)
    (invoice,) = invoices_of(database, licence.id)
    grant = grant_of_line(database, line_of_service(database, invoice.id, pack_service.id).id)
    return account, grant


def test_credits_expire_at_midnight_in_the_operator_zone_in_winter(database, set_operator_setting):
    set_operator_setting("timezone", "Europe/Paris")
    account, grant = _monthly_pack_licence(database, date(2027, 1, 1))

    # Paris is UTC+1 in winter: 00:00 of Jan 1 is 23:00Z the day before; 00:00 of Feb 1 is 23:00Z on Jan 31.
    assert window(grant) == (utc(2026, 12, 31, 23, 0), utc(2027, 1, 31, 23, 0))
    last_second = utc(2027, 1, 31, 22, 59, 59)
    with database.write() as session:
        _consumption, draws = consume(session, account.id, credits=Decimal(4), occurred_at=last_second, now=last_second, actor=ACTOR)
    assert [(draw.grant_id, draw.credits) for draw in draws] == [(grant.id, Decimal("4.00"))]
    entries_before = count(database, LedgerEntry)

    expiry = utc(2027, 1, 31, 23, 0)
    with pytest.raises(InsufficientCredits) as refused, database.write() as session:
        consume(session, account.id, credits=Decimal(1), occurred_at=expiry, now=expiry, actor=ACTOR)

    assert refused.value.code == "insufficient_credits"
    assert (refused.value.extra["credits_requested"], refused.value.extra["credits_available"]) == ("1.00", "0.00")
    assert count(database, LedgerEntry) == entries_before
    with database.read() as session:
        assert session.get(Grant, grant.id).remaining == Decimal("6.00")


def test_credits_expire_at_midnight_in_the_operator_zone_in_summer(database, set_operator_setting):
    set_operator_setting("timezone", "Europe/Paris")
    account, grant = _monthly_pack_licence(database, date(2027, 7, 1))

    # Paris is UTC+2 in summer.
    assert window(grant) == (utc(2027, 6, 30, 22, 0), utc(2027, 7, 31, 22, 0))
    before_start = utc(2027, 6, 30, 21, 59, 59)
    with pytest.raises(InsufficientCredits), database.write() as session:
        consume(session, account.id, credits=Decimal(1), occurred_at=before_start, now=before_start, actor=ACTOR)
    last_second = utc(2027, 7, 31, 21, 59, 59)
    with database.write() as session:
        consume(session, account.id, credits=Decimal(10), occurred_at=last_second, now=last_second, actor=ACTOR)
    with database.read() as session:
        assert session.get(Grant, grant.id).remaining == Decimal("0.00")


# --- When a period is due ---------------------------------------------------------------------


def _january_licence_with_a_desk(database):
    account = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    factories.service(database, licence.id, desk.id)
    return licence


def test_lead_time_generates_next_months_invoice_days_ahead(database, set_operator_setting):
    set_operator_setting("invoice_lead_days", "5")
    licence = _january_licence_with_a_desk(database)

    day_before_lead = bill(database, date(2027, 1, 26))
    assert day_before_lead.invoices_created == 1
    result = bill(database, date(2027, 1, 27))

    assert result.invoices_created == 1
    assert [invoice.period_start for invoice in invoices_of(database, licence.id)] == [date(2027, 1, 1), date(2027, 2, 1)]


def test_without_lead_time_next_months_invoice_waits_for_its_first_day(database):
    licence = _january_licence_with_a_desk(database)

    bill(database, date(2027, 1, 27))
    assert [invoice.period_start for invoice in invoices_of(database, licence.id)] == [date(2027, 1, 1)]
    bill(database, date(2027, 2, 1))

    assert [invoice.period_start for invoice in invoices_of(database, licence.id)] == [date(2027, 1, 1), date(2027, 2, 1)]


def test_period_without_billable_lines_gets_no_invoice(database):
    account = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, account.id, date(2027, 1, 1))
    factories.service(database, licence.id, desk.id, to_date=date(2027, 1, 31))

    result = bill(database, date(2027, 3, 1))

    assert result.invoices_created == 1
    assert [(invoice.period_start, invoice.period_end) for invoice in invoices_of(database, licence.id)] == [(date(2027, 1, 1), date(2027, 1, 31))]


def test_service_ending_mid_period_is_billed_for_its_days_and_nothing_after(database):
    account = factories.account(database)
    desk = factories.plain_service(database, price="310.00")
    licence = factories.licence(database, account.id, date(2027, 3, 1))
    factories.service(database, licence.id, desk.id, to_date=date(2027, 3, 10))

    result = bill(database, date(2027, 5, 1))

    assert result.invoices_created == 1
    (invoice,) = invoices_of(database, licence.id)
    (line,) = lines_of(database, invoice.id)
    assert (line.period_start, line.period_end, line.net) == (date(2027, 3, 1), date(2027, 3, 10), Decimal("100.00"))


def test_weekly_service_bills_the_weeks_starting_in_the_period_and_its_active_range(database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="5", lifetime="P1W", price="25.00")
    licence = factories.licence(database, account.id, date(2027, 2, 1))
    # Weeks counted from Wednesday Feb 10: Feb 10, 17, 24, Mar 3 (Mar 10 is after the to-date).
    weekly = factories.service(database, licence.id, pack.id, schedule="weekly", from_date=date(2027, 2, 10), to_date=date(2027, 3, 5))

    bill(database, date(2027, 4, 1), approve_all=True)

    february, march = invoices_of(database, licence.id)
    assert (february.period_start, march.period_start) == (date(2027, 2, 1), date(2027, 3, 1))
    february_lines = lines_of(database, february.id)
    assert [(line.period_start, line.period_end) for line in february_lines] == [
        (date(2027, 2, 10), date(2027, 2, 16)),
        (date(2027, 2, 17), date(2027, 2, 23)),
        (date(2027, 2, 24), date(2027, 3, 2)),
    ]
    (march_line,) = lines_of(database, march.id)
    assert march_line.period_start == date(2027, 3, 3)
    every_line = [*february_lines, march_line]
    assert {(line.contract_service_id, line.net, line.credits) for line in every_line} == {(weekly.id, Decimal("25.00"), Decimal("5.00"))}
    assert (february.net, march.net) == (Decimal("75.00"), Decimal("25.00"))
    assert window(grant_of_line(database, february_lines[2].id)) == (utc(2027, 2, 24), utc(2027, 3, 3))


# --- Currency ---------------------------------------------------------------------------------


def test_product_in_another_currency_cannot_be_added_to_a_licence(database):
    account = factories.account(database, currency="EUR")
    dollar_desk = factories.plain_service(database, price="300.00", currency="USD")
    licence = factories.licence(database, account.id, date(2027, 1, 1))

    with pytest.raises(CurrencyMismatch) as refused, database.write() as session:
        add_service(session, licence.id, product_id=dollar_desk.id, schedule="monthly", quantity=Decimal(1), at=factories.SETUP_TIME)

    assert refused.value.code == "currency_mismatch"
    assert count(database, ContractService) == 0
    assert bill(database, date(2027, 1, 1)).invoices_created == 0
    assert count(database, Invoice) == 0


# --- Licences on the same plan ----------------------------------------------------------------


def test_licences_on_the_same_plan_are_priced_alike_but_billed_on_their_own_services_and_units(database):
    """The billing run prices a plan once for all licences with the same dates and services
    (billing.plan_lines); each line still names its own licence's service and business unit,
    a licence on other dates gets its own pro-rata, and what a licence has billed stays billed."""
    desk = factories.plain_service(database, price="310.00")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
    licences = []
    for n, start in enumerate((date(2027, 1, 1), date(2027, 1, 1), date(2027, 1, 16))):
        account = factories.account(database, name=f"Member {n}")
        unit = factories.business_unit(database, account.id, f"Unit {n}")
        licence = factories.licence(database, account.id, start)
        services = (factories.service(database, licence.id, desk.id), factories.service(database, licence.id, pack.id, business_unit_id=unit.id))
        licences.append((licence, unit, services))

    bill(database, date(2027, 1, 16))

    for (licence, unit, (desk_service, pack_service)), desk_net in zip(licences, ("310.00", "310.00", "160.00"), strict=True):
        (invoice,) = invoices_of(database, licence.id)
        desk_line = line_of_service(database, invoice.id, desk_service.id)
        pack_line = line_of_service(database, invoice.id, pack_service.id)
        assert desk_line.net == Decimal(desk_net)
        assert (desk_line.business_unit_id, pack_line.business_unit_id) == (None, unit.id)
        assert (pack_line.credits, pack_line.net, pack_line.period_start) == (Decimal("10.00"), Decimal("100.00"), licence.start_date)
    first_licence, _unit, (_first_desk, _pack) = licences[0]
    late_service = factories.service(database, first_licence.id, desk.id, from_date=date(2027, 1, 16))

    result = bill(database, date(2027, 1, 16))

    assert result.invoices_created == 0, "the one new line joins the draft"
    (invoice,) = invoices_of(database, first_licence.id)
    assert line_of_service(database, invoice.id, late_service.id).net == Decimal("160.00")
    assert len(lines_of(database, invoice.id)) == 3
    assert [len(lines_of(database, invoices_of(database, licence.id)[0].id)) for licence, _u, _s in licences[1:]] == [2, 2]


# --- A fresh database's statistics ------------------------------------------------------------


def _reltuples(database, tables: list[str]) -> dict[str, float]:
    from sqlalchemy import text

    with database.read() as session:
        rows = session.execute(text("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(:tables) AND relkind = 'r'"), {"tables": tables})
        return dict(rows.all())


def _licences(database, count: int) -> None:
    desk, pack = factories.plain_service(database), factories.credit_pack(database)
    for _ in range(count):
        licence = factories.licence(database, factories.account(database).id, date(2027, 1, 1))
        factories.service(database, licence.id, desk.id)
        factories.service(database, licence.id, pack.id)


TABLES = ["invoices", "invoice_lines", "grants"]


def test_a_long_billing_run_on_a_fresh_database_gives_its_tables_statistics_after_its_first_batch(database):
    """Without statistics, PostgreSQL planned a batch's look-up of a few hundred ids as a scan of
    the whole table, every batch reading everything the run had written: quadratic. A run of
    more than four batches analyses the tables it writes after its first batch (those never
    analysed), once."""
    from licensing.invoicing.billing import BILLED_TABLES

    _licences(database, 5)
    if not database.is_sqlite:
        assert all(tuples < 0 for tuples in _reltuples(database, TABLES).values())  # never analysed yet
    result = bill(database, date(2027, 1, 1), batch_size=1, approve_all=True)  # five batches of one
    assert result.invoices_created == 5
    if database.is_sqlite:
        assert database.analyze_new(BILLED_TABLES) == []
        return
    # analysed after the first batch of one licence: one invoice, two lines, one grant
    assert _reltuples(database, TABLES) == {"invoices": 1, "invoice_lines": 2, "grants": 1}
    assert database.analyze_new(BILLED_TABLES) == []  # once: nothing is left unanalysed


def test_a_short_billing_run_leaves_the_statistics_to_autovacuum(database):
    """Four batches or fewer: the scans cost less than analysing (15-25 ms)."""
    _licences(database, 4)
    assert bill(database, date(2027, 1, 1), batch_size=1).invoices_created == 4
    if not database.is_sqlite:
        assert all(tuples < 0 for tuples in _reltuples(database, TABLES).values())


def test_each_batch_runs_with_the_cycle_collector_paused_and_collects_once_after_it(database, monkeypatch, gc_collections):
    """Python's cycle collector walked every object of the process a few times a run (a sixth of
    its time): a batch runs with it paused, and it runs once after each batch."""
    import gc

    from licensing.invoicing import billing

    _licences(database, 3)
    during: list[bool] = []
    bill_batch = billing._bill_batch

    def watched(*args, **kwargs):
        during.append(gc.isenabled())
        return bill_batch(*args, **kwargs)

    monkeypatch.setattr(billing, "_bill_batch", watched)
    assert bill(database, date(2027, 1, 1), batch_size=1, approve_all=True).invoices_approved == 3
    assert during == [False] * 4  # three batches of one, and the claim that finds none left
    assert gc.isenabled()
    assert gc_collections.count(0) >= 4 and 2 not in gc_collections  # one after each batch; never a walk of everything
