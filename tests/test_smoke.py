from datetime import UTC, date, datetime
from decimal import Decimal

from sqlmodel import select

from licensing.accounts.models import Account
from licensing.credits.balance import credit_summary
from licensing.credits.consumption import consume
from licensing.invoicing.billing import run_billing
from licensing.invoicing.models import Invoice
from tests import factories


def test_licence_bills_grants_and_consumes(database):
    acct = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    lic = factories.licence(database, acct.id, date(2027, 1, 1), date(2027, 12, 31), auto_approve=True)
    factories.service(database, lic.id, pack.id, from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
    now = datetime(2027, 1, 1, 2, 0, tzinfo=UTC)
    result = run_billing(database, as_of=date(2027, 1, 1), now=now, actor="test")
    assert (result.invoices_created, result.invoices_approved) == (1, 1)
    with database.write() as session:
        _consumption, _draws = consume(session, acct.id, credits=Decimal("3"), now=now, actor="test")
    with database.read() as session:
        summary = credit_summary(session, session.get(Account, acct.id), now)
        invoice = session.exec(select(Invoice)).one()
    assert invoice.number == "INV-2027-000001"
    assert (summary.total.granted, summary.total.remaining, summary.total.used) == (Decimal("10.00"), Decimal("7.00"), Decimal("3.00"))
