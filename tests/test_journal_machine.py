"""The journal under any sequence of operations (SPEC 11), a hypothesis state machine.

It extends the reports' machine (tests/test_reports.py: sales and top-ups, bookings now, late
and ahead, reversals, adjustments, holds, credit notes strict and capped, expiries of the
licence's monthly packs) with a monthly pack whose rollover cap cuts credits, payments (in part, in full, over with the excess kept
as unapplied cash), payment reversals and voids, and checks after every step that

* every journal entry balances, per currency;
* the deferred credit revenue balance equals the liability report's value (plus the value of
  expiries due but not recorded yet, which the journal posts when they are recorded);
* the revenue accounts (credits used + breakage) per month equal the revenue report's months;
* per account, receivables equal what its invoices have due less what its credit notes owe
  back, and unapplied cash equals the account's unapplied cash.

At the end of each sequence: the beancount export passes ``bean-check`` and its balances equal
the trial balance; and the journal rebuilt from the invoices, ledger and payments alone
(``licensing journal rebuild --replace``) posts the same amounts, per event, as the live one.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from datetime import date
from decimal import Decimal
from fractions import Fraction

from beancount import loader
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule, run_state_machine_as_test
from sqlmodel import col, func, select

from licensing.books import reading
from licensing.books import settings as books_settings
from licensing.books.exports import ExportOptions, export
from licensing.books.models import JournalEntry, JournalPosting
from licensing.credits.ledger import worth
from licensing.errors import LicensingError
from licensing.invoicing.credit_notes import void_invoice
from licensing.invoicing.journal import rebuild
from licensing.invoicing.models import CreditNote, Invoice, Payment
from licensing.invoicing.payments import amount_due, record_payment, refund_due, reverse_payment, unapplied_cash
from licensing.reports import liability, revenue
from tests import factories
from tests.support.use_cases import ACTOR
from tests.test_reports import EVER, MACHINE_SETTINGS, BooksMachine

D = Decimal
ZERO = D(0)


def role_balance(session, role: str, **where) -> Decimal:
    """Debits less credits of ``role`` over the whole journal (of one account if given)."""
    return sum((balance for (name, _rate, _currency), balance in reading.role_balances(session, **where).items() if name == role), ZERO)


class JournalMachine(BooksMachine):
    def __init__(self, database) -> None:
        super().__init__(database, holds=True)
        self.tmp = None
        # A third monthly pack whose unused credits roll over up to a cap: rollover cuts.
        capped = factories.credit_pack(self.database, credits="5", lifetime="P3M", price="50.00", name="monthly 5, rolling over up to 2")
        factories.service(
            self.database, self.licence_id, capped.id, quantity=D(1), from_date=date(2027, 1, 1), to_date=date(2029, 12, 31), max_rollover=D(2)
        )

    # -- money in ---------------------------------------------------------------------------

    def open_invoices(self) -> list[Invoice]:
        with self.database.read() as session:
            return list(session.exec(select(Invoice).where(col(Invoice.status).in_(["approved", "paid"])).order_by(Invoice.id)).all())

    @precondition(lambda self: self.lines)
    @rule(
        pick=st.integers(min_value=0, max_value=10_000), how=st.sampled_from(["full", "part", "over"]),
        method=st.sampled_from(["bank_transfer", "card", "cash"]),
    )
    def pay(self, pick, how, method):
        payable = [invoice for invoice in self.open_invoices() if amount_due(invoice) > 0]
        if not payable:
            return
        invoice = payable[pick % len(payable)]
        due = amount_due(invoice)
        amount = {"full": due, "part": (due / 3).quantize(D("0.01")) or D("0.01"), "over": due + D("12.34")}[how]
        with self.database.write() as session:
            record_payment(
                session, invoice.id, amount=amount, method=method, received_at=self.now, allow_overpayment=how == "over", now=self.now, actor=ACTOR
            )

    @rule(pick=st.integers(min_value=0, max_value=10_000))
    def reverse_a_payment(self, pick):
        with self.database.read() as session:
            received = session.exec(select(Payment.id).where(Payment.status == "received").order_by(Payment.id)).all()
        if not received:
            return
        with self.database.write() as session:
            reverse_payment(session, received[pick % len(received)], reason="returned", now=self.now, actor=ACTOR)

    @rule(pick=st.integers(min_value=0, max_value=10_000), policy=st.sampled_from(["strict", "cap_to_remaining"]))
    def void(self, pick, policy):
        with self.database.read() as session:
            candidates = session.exec(
                select(Invoice.id).where(
                    Invoice.status == "approved", Invoice.amount_paid == 0, col(Invoice.id).not_in(select(CreditNote.invoice_id))
                ).order_by(Invoice.id)
            ).all()
        if not candidates:
            return
        invoice_id = candidates[pick % len(candidates)]
        try:
            with self.database.write() as session:
                void_invoice(session, invoice_id, credit_policy=policy, now=self.now, actor=ACTOR)
        except LicensingError as refusal:
            assert policy == "strict" and refusal.code == "credits_already_consumed"
            return
        self.lines = [(invoice, line) for invoice, line in self.lines if invoice != invoice_id]

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def every_entry_balances(self):
        with self.database.read() as session:
            unbalanced = session.exec(
                select(JournalPosting.entry_id)
                .group_by(JournalPosting.entry_id)
                .having(func.sum(JournalPosting.debit) != func.sum(JournalPosting.credit))
            ).all()
            empty = session.exec(select(JournalEntry.id).where(col(JournalEntry.id).not_in(select(JournalPosting.entry_id)))).all()
        assert unbalanced == [] and empty == []

    @invariant()
    def deferred_credit_revenue_is_the_liability(self):
        grants = self.grants()
        unrecorded = sum((worth(g, g.remaining + g.held) - worth(g, g.held) for g in grants if self.expired(g)), ZERO)
        with self.database.read() as session:
            outstanding = liability(session, self.now).currencies.get("EUR")
            value = outstanding[0].value if outstanding else Fraction(0)
            deferred = -role_balance(session, "deferred_credit_revenue")
        assert Fraction(deferred) == value + Fraction(unrecorded)

    @invariant()
    def revenue_accounts_are_the_revenue_report_per_month(self):
        with self.database.read() as session:
            months = revenue(session, *EVER).currencies.get("EUR", {})
            booked: dict[str, Decimal] = defaultdict(lambda: ZERO)
            for day, _role, debit, credit in session.exec(
                select(JournalEntry.date, JournalPosting.role, JournalPosting.debit, JournalPosting.credit)
                .join(JournalEntry, JournalEntry.id == JournalPosting.entry_id)
                .where(col(JournalPosting.role).in_(["credits_used_revenue", "breakage_revenue"]))
            ).all():
                booked[day.strftime("%Y-%m")] += credit - debit
        reported = {month: Fraction(figures.recognised) for month, figures in months.items() if figures.recognised}
        assert {month: Fraction(value) for month, value in booked.items() if value} == reported

    @invariant()
    def receivables_are_what_invoices_have_due(self):
        with self.database.read() as session:
            invoices = session.exec(select(Invoice).where(Invoice.account_id == self.account_id, col(Invoice.status).in_(["approved", "paid"]))).all()
            owed_back = sum((refund_due(session, note, session.get(Invoice, note.invoice_id))
                             for note in session.exec(select(CreditNote).where(CreditNote.account_id == self.account_id)).all()), ZERO)
            due = sum((amount_due(invoice) for invoice in invoices), ZERO)
            assert role_balance(session, "receivables", account_id=self.account_id) == due - owed_back
            assert -role_balance(session, "unapplied_cash", account_id=self.account_id) == unapplied_cash(session, self.account_id)

    # -- at the end ---------------------------------------------------------------------------

    def teardown(self):
        with self.database.read() as session:
            chart = books_settings.chart(session)
            views = reading.entries(session, chart, None, None)
            balances = reading.trial_balance(session, chart, None)
        if views:
            self.beancount_passes_bean_check(views, chart, balances)
        self.rebuilt_journal_is_the_live_one()

    def beancount_passes_bean_check(self, views, chart, balances):
        ledger = export("beancount", views, ExportOptions(start=views[0].date, end=max(v.date for v in views), chart=chart)).content
        path = self.tmp / "books.beancount"
        path.write_bytes(ledger)
        checked = subprocess.run([str(sys.executable.rsplit("/", 1)[0] + "/bean-check"), str(path)], capture_output=True, text=True)
        assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
        entries, errors, _options = loader.load_file(str(path))
        assert errors == []
        totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for entry in entries:
            for posting in getattr(entry, "postings", []) or []:
                code = posting.account.split(":", 1)[1].split("-", 1)[0]
                totals[code] += posting.units.number
        expected = {line.account: line.debit - line.credit for line in balances}
        assert {code: total for code, total in totals.items() if total} == expected

    def rebuilt_journal_is_the_live_one(self):
        live = self.journal_by_event()
        with self.database.write() as session:
            rebuild(session, replace=True)
        assert self.journal_by_event() == live

    def journal_by_event(self) -> dict:
        """Amounts per (day, event, source, account) and (role, rate): the journal as posted,
        whatever the grouping of events recorded at one moment into entries."""
        amounts: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
        with self.database.read() as session:
            for row in session.exec(
                select(JournalEntry.date, JournalEntry.event, JournalEntry.source_type, JournalEntry.source_id, JournalEntry.account_id,
                       JournalPosting.role, JournalPosting.tax_rate, JournalPosting.debit, JournalPosting.credit)
                .join(JournalEntry, JournalEntry.id == JournalPosting.entry_id)
            ).all():
                amounts[tuple(row[:7])] += row.debit - row.credit
        return {key: amount for key, amount in amounts.items() if amount}


def test_the_journal_balances_and_agrees_with_the_reports_under_any_sequence(database, tmp_path):
    def machine():
        made = JournalMachine(database)
        made.tmp = tmp_path
        return made

    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)


def test_bean_check_refuses_an_unbalanced_ledger(tmp_path):
    """The check above can fail: bean-check finds an entry that does not balance."""
    path = tmp_path / "broken.beancount"
    path.write_text(
        '2027-01-01 open Assets:Bank\n2027-01-01 open Income:Sales\n2027-01-02 * "x"\n  Assets:Bank 10.00 EUR\n  Income:Sales -9.00 EUR\n'
    )
    checked = subprocess.run([str(sys.executable.rsplit("/", 1)[0] + "/bean-check"), str(path)], capture_output=True, text=True)
    assert checked.returncode != 0

