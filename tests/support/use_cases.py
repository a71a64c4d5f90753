"""One call per use case, each in its own transaction, as the API and scheduler do (the worked
examples of ``tests/test_worked_examples.py`` and the modules that build on them)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlmodel import select

from licensing.accounts.models import Account
from licensing.credits.balance import credit_summary, summary_from_ledger
from licensing.credits.consumption import Draw, consume
from licensing.credits.models import Consumption, Grant, LedgerEntry
from licensing.errors import InsufficientCredits
from licensing.invoicing.approval import approve_invoice
from licensing.invoicing.billing import run_billing
from licensing.invoicing.models import Invoice, InvoiceLine
from tests import factories

D = Decimal
ACTOR = "operator@space.test"


def instant(text: str) -> datetime:
    """An instant written in UTC: ``instant("2027-02-01 00:00")``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def bill(database, as_of: date, now: datetime):
    result = run_billing(database, as_of=as_of, now=now, actor=ACTOR)
    return result.invoices_created, result.invoices_approved


def draft_invoices(database, licence_id: int) -> list[Invoice]:
    with database.read() as session:
        return list(
            session.exec(select(Invoice).where(Invoice.licence_id == licence_id, Invoice.status == "draft").order_by(Invoice.id)).all()
        )


def approve_drafts(database, licence_id: int, at: datetime) -> list[Invoice]:
    approved = []
    for invoice in draft_invoices(database, licence_id):
        with database.write() as session:
            approved.append(approve_invoice(session, invoice.id, at=at, actor=ACTOR))
    return approved


def bill_and_approve(database, licence_id: int, as_of: date, now: datetime) -> Invoice:
    """Bill one period (exactly one new invoice) and approve it at ``now``."""
    assert bill(database, as_of, now) == (1, 0)
    (invoice,) = approve_drafts(database, licence_id, now)
    return invoice


def invoices_with_lines(database, licence_id: int) -> list[tuple[Invoice, list[InvoiceLine]]]:
    with database.read() as session:
        invoices = session.exec(select(Invoice).where(Invoice.licence_id == licence_id).order_by(Invoice.period_start, Invoice.id)).all()
        return [
            (invoice, list(session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.id)).all()))
            for invoice in invoices
        ]


def grants_of(database, account_id: int) -> list[Grant]:
    with database.read() as session:
        return list(session.exec(select(Grant).where(Grant.account_id == account_id).order_by(Grant.id)).all())


def ledger_of(database, account_id: int) -> list[LedgerEntry]:
    with database.read() as session:
        return list(session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)).all())


def use(database, account_id: int, credits: str, at: datetime, business_unit_id: int | None = None) -> list[Draw]:
    """Consume ``credits`` at ``at`` (the booking happens now) and return the draws."""
    with database.write() as session:
        _consumption, draws = consume(
            session, account_id, credits=D(credits), business_unit_id=business_unit_id, occurred_at=at, now=at, actor=ACTOR
        )
    return draws


def refused(database, account_id: int, credits: str, at: datetime, business_unit_id: int | None = None) -> InsufficientCredits:
    with pytest.raises(InsufficientCredits) as refusal:
        use(database, account_id, credits, at, business_unit_id)
    return refusal.value


def snapshot(database, account_id: int) -> tuple:
    """Everything a refused consumption must leave untouched."""
    with database.read() as session:
        account = session.get(Account, account_id)
        consumptions = session.exec(select(Consumption.id).where(Consumption.account_id == account_id)).all()
        return (
            account.balance,
            list(consumptions),
            [(e.id, e.kind, e.credits, e.balance_after, e.grant_id, e.occurred_at) for e in ledger_of(database, account_id)],
            [(g.id, g.remaining, g.used, g.expired) for g in grants_of(database, account_id)],
        )


def summary_at(database, account_id: int, at: datetime):
    with database.read() as session:
        account = session.get(Account, account_id)
        return credit_summary(session, account, at), summary_from_ledger(session, account, at)


def monthly_pack_licence(database, lifetime: str):
    """SPEC 10.1/10.2: a pack of 10 credits, a monthly service from 2027-01-01 to 2027-12-31."""
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime=lifetime)
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    factories.service(database, licence.id, pack.id, schedule="monthly", from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
    return account, licence
