"""Money in, part one (SPEC 12, API.md "Money in"): payments recorded against invoices, what is
due, overpayments kept as unapplied cash and settled against the next invoice, reversals, and
the ISO 11649 payment reference (each database test on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlmodel import select

from licensing.catalog.services import create_product
from licensing.credits.consumption import consume
from licensing.credits.models import Grant
from licensing.errors import CurrencyMismatch, ValidationFailed
from licensing.events import Event
from licensing.invoicing.credit_notes import approve_credit_note, create_credit_note, void_invoice
from licensing.invoicing.models import Invoice, Payment, PaymentAllocation
from licensing.invoicing.payments import (
    InvoiceHasPayments,
    InvoiceNotPayable,
    Overpayment,
    PaymentAlreadyReversed,
    due_of,
    record_payment,
    reverse_payment,
    unapplied_cash,
)
from licensing.invoicing.references import creditor_reference, invoice_reference, is_creditor_reference, printed
from licensing.reports.receivables import bucket_of, receivables
from tests import factories
from tests.support.use_cases import ACTOR, bill, bill_and_approve, draft_invoices, instant

D = Decimal
JANUARY = instant("2027-01-01 09:00")


def desk_licence(database, start: date = date(2027, 1, 1)):
    """An account with a 310.00 EUR desk (20 % tax: 372.00 a month), billed monthly."""
    account = factories.account(database)
    desk = factories.plain_service(database)
    licence = factories.licence(database, account.id, start)
    factories.service(database, licence.id, desk.id, from_date=start)
    return account, licence


def pay(database, invoice_id, amount: str, **values):
    values.setdefault("received_at", instant("2027-01-05 10:00"))
    with database.write() as session:
        return record_payment(session, invoice_id, amount=D(amount), now=values["received_at"], actor=ACTOR, **values)


def invoice_state(database, invoice_id, today: date = date(2027, 1, 20)):
    with database.read() as session:
        invoice = session.get(Invoice, invoice_id)
        due = due_of(invoice, today)
        return invoice.status, due.amount_paid, due.amount_due, due.payment_status, due.days_overdue


def written(database) -> tuple:
    with database.read() as session:
        return (
            len(session.exec(select(Payment)).all()), len(session.exec(select(PaymentAllocation)).all()),
            [(i.id, i.status, i.amount_paid) for i in session.exec(select(Invoice).order_by(Invoice.id))],
            len(session.exec(select(Event)).all()),
        )


def event_types(database, *types: str) -> list[str]:
    with database.read() as session:
        return list(session.exec(select(Event.type).where(Event.type.in_(types)).order_by(Event.id)).all())


def test_a_partial_then_a_full_payment(database):
    _account, licence = desk_licence(database)
    invoice = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    assert invoice_state(database, invoice.id) == ("approved", D("0.0000"), D("372.0000"), "unpaid", 5)  # due Jan 15

    pay(database, invoice.id, "100.00", reference="transfer 1")
    assert invoice_state(database, invoice.id) == ("approved", D("100.0000"), D("272.0000"), "partially_paid", 5)

    pay(database, invoice.id, "272.00", method="card")
    assert invoice_state(database, invoice.id) == ("paid", D("372.0000"), D("0.0000"), "paid", 0)
    assert event_types(database, "payment.received", "invoice.paid") == ["payment.received", "payment.received", "invoice.paid"]


def test_nothing_is_overdue_before_the_due_date(database):
    _account, licence = desk_licence(database)
    invoice = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)

    assert invoice_state(database, invoice.id, date(2027, 1, 15))[-1] == 0
    assert invoice_state(database, invoice.id, date(2027, 1, 16))[-1] == 1


def test_an_overpayment_is_refused_then_allowed_and_settled_against_the_next_invoice(database):
    account, licence = desk_licence(database)
    january = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    before = written(database)

    with pytest.raises(Overpayment) as refused:
        pay(database, january.id, "500.00")
    assert refused.value.extra["amount_due"] == "372.00"
    assert written(database) == before

    payment = pay(database, january.id, "500.00", allow_overpayment=True)
    assert invoice_state(database, january.id)[:4] == ("paid", D("372.0000"), D("0.0000"), "paid")
    with database.read() as session:
        assert unapplied_cash(session, account.id) == D("128.0000")

    february = bill_and_approve(database, licence.id, date(2027, 2, 1), instant("2027-02-01 09:00"))
    assert invoice_state(database, february.id, date(2027, 2, 20))[:4] == ("approved", D("128.0000"), D("244.0000"), "partially_paid")
    with database.read() as session:
        assert unapplied_cash(session, account.id) == D("0.0000")
        kinds = [(row.invoice_id, row.amount, row.kind) for row in session.exec(select(PaymentAllocation).order_by(PaymentAllocation.id))]
    assert kinds == [
        (january.id, D("372.0000"), "payment"), (None, D("128.0000"), "payment"),
        (None, D("-128.0000"), "settlement"), (february.id, D("128.0000"), "settlement"),
    ]
    assert all(row_payment == payment.id for row_payment in _payment_ids(database))


def _payment_ids(database) -> list[int]:
    with database.read() as session:
        return list(session.exec(select(PaymentAllocation.payment_id)).all())


def test_a_reversal_reopens_what_the_payment_paid_including_a_settled_overpayment(database):
    account, licence = desk_licence(database)
    january = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    payment = pay(database, january.id, "500.00", allow_overpayment=True)
    february = bill_and_approve(database, licence.id, date(2027, 2, 1), instant("2027-02-01 09:00"))

    with database.write() as session:
        reversed_ = reverse_payment(session, payment.id, reason="Returned debit (AM04)", now=instant("2027-02-03 08:00"), actor=ACTOR)
    assert (reversed_.status, reversed_.reversal_reason) == ("reversed", "Returned debit (AM04)")
    assert invoice_state(database, january.id)[:4] == ("approved", D("0.0000"), D("372.0000"), "unpaid")
    assert invoice_state(database, february.id)[:4] == ("approved", D("0.0000"), D("372.0000"), "unpaid")
    with database.read() as session:
        assert unapplied_cash(session, account.id) == D("0.0000")

    before = written(database)
    with pytest.raises(PaymentAlreadyReversed), database.write() as session:
        reverse_payment(session, payment.id, now=instant("2027-02-04 08:00"), actor=ACTOR)
    assert written(database) == before


def test_credit_notes_reduce_what_is_due(database):
    _account, licence = desk_licence(database)
    invoice = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    pay(database, invoice.id, "200.00")
    with database.write() as session:
        note = create_credit_note(session, invoice_id=invoice.id, reason="Desk unusable for a week", now=JANUARY, actor=ACTOR)
        approve_credit_note(session, note.id, now=instant("2027-01-06 09:00"), actor=ACTOR)
    # the whole invoice credited (372.00) after 200.00 paid: nothing is due
    assert invoice_state(database, invoice.id)[:4] == ("paid", D("200.0000"), D("0.0000"), "paid")


def test_refused_payments_write_nothing(database):
    _account, licence = desk_licence(database)
    approved = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    _other, other_licence = desk_licence(database)
    assert bill(database, date(2027, 1, 1), JANUARY) == (1, 0)
    (draft,) = draft_invoices(database, other_licence.id)
    before = written(database)

    cases = [
        (draft.id, {"amount": "10.00"}, InvoiceNotPayable),
        (approved.id, {"amount": "0"}, ValidationFailed),
        (approved.id, {"amount": "-5.00"}, ValidationFailed),
        (approved.id, {"amount": "1.001"}, ValidationFailed),
        (approved.id, {"amount": "10.00", "currency": "GBP"}, CurrencyMismatch),
        (approved.id, {"amount": "10.00", "method": "cheque"}, ValidationFailed),
    ]
    for invoice_id, values, error in cases:
        amount = values.pop("amount")
        with pytest.raises(error):
            pay(database, invoice_id, amount, **values)
        assert written(database) == before, (invoice_id, amount, values)


def test_an_invoice_with_payments_cannot_be_voided_until_they_are_reversed(database):
    _account, licence = desk_licence(database)
    invoice = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    payment = pay(database, invoice.id, "50.00")

    with pytest.raises(InvoiceHasPayments), database.write() as session:
        void_invoice(session, invoice.id, now=instant("2027-01-06 09:00"), actor=ACTOR)
    with database.write() as session:
        reverse_payment(session, payment.id, reason="refund", now=instant("2027-01-06 09:00"), actor=ACTOR)
        void_invoice(session, invoice.id, now=instant("2027-01-06 09:00"), actor=ACTOR)
    assert invoice_state(database, invoice.id)[0] == "void"
    with pytest.raises(InvoiceNotPayable):
        pay(database, invoice.id, "10.00")


def test_iso_11649_creditor_references():
    assert creditor_reference("539007547034") == "RF18539007547034"  # the standard's own example
    assert printed("RF18539007547034") == "RF18 5390 0754 7034"
    assert is_creditor_reference("RF18 5390 0754 7034")
    assert not is_creditor_reference("RF19 5390 0754 7034")
    assert not is_creditor_reference("RF18 5390 0754 7035")
    reference = invoice_reference("INV-2027-000001")
    assert reference.endswith("INV2027000001") and is_creditor_reference(reference)
    assert invoice_reference("INV-2027-000002") != reference
    assert invoice_reference(None) is None
    with pytest.raises(ValueError):
        creditor_reference("X" * 22)


def test_receivables_age_by_days_past_due_at_chosen_dates(database):
    """Three monthly invoices of 372.00 (due on the 15th); 100.00 of January's received on Jan 20
    but recorded on Feb 1: it counts from when it was received."""
    account, licence = desk_licence(database)
    january = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    bill_and_approve(database, licence.id, date(2027, 2, 1), instant("2027-02-01 09:00"))
    with database.write() as session:
        record_payment(session, january.id, amount=D("100.00"), received_at=instant("2027-01-20 10:00"), now=instant("2027-02-01 10:00"), actor=ACTOR)
    bill_and_approve(database, licence.id, date(2027, 3, 1), instant("2027-03-01 09:00"))

    def ageing(as_of: date) -> dict[str, Decimal]:
        with database.read() as session:
            report = receivables(session, as_of)
        if not report.currencies:
            return {}
        return {bucket: amount for bucket, amount in report.currencies["EUR"][account.id].items() if amount}

    assert ageing(date(2026, 12, 31)) == {}
    assert ageing(date(2027, 1, 10)) == {"current": D("372.0000")}
    assert ageing(date(2027, 1, 15)) == {"current": D("372.0000")}  # due that day: not yet late
    assert ageing(date(2027, 1, 16)) == {"1-30": D("372.0000")}
    assert ageing(date(2027, 1, 25)) == {"1-30": D("272.0000")}
    assert ageing(date(2027, 2, 20)) == {"31-60": D("272.0000"), "1-30": D("372.0000")}
    assert ageing(date(2027, 4, 20)) == {"90+": D("272.0000"), "61-90": D("372.0000"), "31-60": D("372.0000")}
    assert [bucket_of(days) for days in (-3, 0, 1, 30, 31, 60, 61, 90, 91)] == [
        "current", "current", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "90+"
    ]


def pack_on_payment_licence(database):
    """An account with a 10-credit pack (100.00 + 20 % = 120.00) that grants on payment."""
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P3M", grant_on="payment")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 1, 31))
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 1, 31))
    return account, licence


def credits_of(database, account_id) -> tuple:
    with database.read() as session:
        grants = session.exec(select(Grant).where(Grant.account_id == account_id)).all()
        return [(grant.credits, grant.remaining, grant.removed) for grant in grants]


def test_a_pack_granted_on_payment_waits_for_the_invoice_to_be_paid_in_full(database):
    account, licence = pack_on_payment_licence(database)
    invoice = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    assert credits_of(database, account.id) == []  # approved, not paid: nothing granted

    pay(database, invoice.id, "20.00")
    assert credits_of(database, account.id) == []  # partly paid: still nothing
    pay(database, invoice.id, "100.00", received_at=instant("2027-01-06 10:00"))
    assert credits_of(database, account.id) == [(D("10.00"), D("10.00"), D("0.00"))]
    pay(database, invoice.id, "5.00", allow_overpayment=True)  # paid again: granted once
    assert len(credits_of(database, account.id)) == 1


def test_a_reversal_reopening_an_invoice_takes_back_the_credits_its_payment_granted(database):
    account, licence = pack_on_payment_licence(database)
    invoice = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    payment = pay(database, invoice.id, "120.00")
    with database.write() as session:
        consume(session, account.id, credits=D("3"), now=instant("2027-01-07 10:00"), actor=ACTOR)

    with database.write() as session:
        reverse_payment(session, payment.id, reason="chargeback", now=instant("2027-01-08 10:00"), actor=ACTOR)

    # what was used stays used; the 7 that remained are taken back
    assert credits_of(database, account.id) == [(D("10.00"), D("0.00"), D("7.00"))]
    assert invoice_state(database, invoice.id)[:4] == ("approved", D("0.0000"), D("120.0000"), "unpaid")


def test_a_pack_granted_on_approval_is_not_touched_by_payments(database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P3M")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 1, 31))
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 1, 31))
    invoice = bill_and_approve(database, licence.id, date(2027, 1, 1), JANUARY)
    assert credits_of(database, account.id) == [(D("10.00"), D("10.00"), D("0.00"))]
    payment = pay(database, invoice.id, "120.00")
    with database.write() as session:
        reverse_payment(session, payment.id, now=instant("2027-01-08 10:00"), actor=ACTOR)
    assert credits_of(database, account.id) == [(D("10.00"), D("10.00"), D("0.00"))]


def test_only_credit_packs_grant_on_payment(database):
    with pytest.raises(ValidationFailed, match="only credit packs grant credits"), database.write() as session:
        create_product(session, kind="service", name="Desk", price=D("1"), currency="EUR", tax_rate=D(0), grant_on="payment", at=JANUARY)
    with pytest.raises(ValidationFailed, match="grant_on"), database.write() as session:
        create_product(session, kind="credit_pack", name="Pack", price=D("1"), currency="EUR", credits=D(1), grant_on="later", at=JANUARY)
